"""Short histories, flat prices, zero volume, single candles, unsorted and invalid input."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from ml.indicators import INDICATOR_COLUMNS, IndicatorParams, compute_indicators, warmup_bars
from ml.marketdata.frames import CANDLE_SCHEMA
from tests.ml.indicators.support import START, column, sim_candles
from tests.support.builders import make_candles

WARMUP = warmup_bars(IndicatorParams())
VALUES = [c for c in INDICATOR_COLUMNS if c not in ("exchange", "symbol", "timeframe", "ts")]


def _no_nan_or_inf(out: pl.DataFrame) -> None:
    floats = [c for c, t in out.schema.items() if t == pl.Float64]
    bad = out.select(pl.sum_horizontal((pl.col(c).is_nan() | pl.col(c).is_infinite()).sum() for c in floats)).item()
    assert bad == 0


def _flat(n: int, price: float = 100.0, volume: float = 0.0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "exchange": "sim",
            "symbol": "FLAT/USDT",
            "timeframe": "1h",
            "ts": [START + timedelta(hours=i) for i in range(n)],
            "open": price,
            "high": price,
            "low": price,
            "close": price,
            "volume": volume,
        }
    ).select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()])


@pytest.mark.parametrize("n", [1, 2, 5, 19, 33, 150, 250])
def test_short_histories_give_nulls_before_each_warmup(n: int) -> None:
    out = compute_indicators(make_candles(n, symbols=("A/USDT", "B/USDT"), seed=n))
    assert out.schema == pl.Schema(INDICATOR_COLUMNS)
    assert out.height == 2 * n
    _no_nan_or_inf(out)
    for name, first in WARMUP.items():
        if name == "rsi_divergence_htf":
            continue
        values = out.filter(pl.col("symbol") == "A/USDT").get_column(name)
        assert values.head(min(first, n)).is_null().all(), name
        if first < n and not name.startswith(("ob_", "fvg_top", "fvg_bottom", "fvg_size")):
            assert values[first] is not None, name


def test_single_candle() -> None:
    out = compute_indicators(make_candles(1))
    assert out.height == 1
    row = out.row(0, named=True)
    assert row["obv"] == pytest.approx(make_candles(1)["volume"][0])
    assert row["ema_9"] is None and row["td_up"] is None and row["supertrend"] is None
    assert row["range_pct"] is not None and row["vwap"] is not None


def test_flat_prices_and_zero_volume() -> None:
    out = compute_indicators(_flat(300))
    _no_nan_or_inf(out)
    assert out["ema_200"].drop_nulls().eq(100.0).all()
    assert out["bb_width"].drop_nulls().eq(0.0).all() and out["bb_width"].drop_nulls().len() > 0
    for undefined in ("rsi_14", "rsi_7", "adx_14", "bb_position", "vwap", "volume_sma_ratio"):
        assert out[undefined].is_null().all(), undefined
    assert out["td_up"].drop_nulls().eq(0).all() and out["td_down"].drop_nulls().eq(0).all()
    assert out["supertrend_direction"].drop_nulls().eq(1).all()
    assert out["obv"].eq(0.0).all()
    assert out["rsi_divergence"].is_null().all()


def test_zero_volume_stretch_in_a_moving_market() -> None:
    candles = make_candles(200, seed=5).with_columns(
        pl.when(pl.int_range(pl.len()).is_between(50, 120)).then(0.0).otherwise(pl.col("volume")).alias("volume")
    )
    out = compute_indicators(candles)
    ratio = out.get_column("volume_sma_ratio")
    assert ratio.slice(70, 51).is_null().all()  # 20 zero volumes in the window
    assert ratio.slice(60, 10).drop_nulls().eq(0.0).all()  # zero volume, positive mean
    assert ratio.slice(125, 10).is_not_null().all()
    _no_nan_or_inf(out)


def test_first_move_after_flat_start_defines_rsi() -> None:
    candles = pl.concat([_flat(40), _flat(40, price=101.0).with_columns(pl.col("ts").dt.offset_by("40h"))])
    rsi = compute_indicators(candles).get_column("rsi_14")
    assert rsi.head(40).is_null().all()
    assert rsi[40] == pytest.approx(100.0)


def test_unsorted_input_gives_the_sorted_result() -> None:
    candles = sim_candles(("BTC", "ETH", "SOL"), "1h", days=20)
    shuffled = candles.sample(fraction=1.0, shuffle=True, seed=1)
    assert compute_indicators(shuffled).equals(compute_indicators(candles))


def test_output_is_sorted_by_exchange_symbol_ts() -> None:
    a = sim_candles(("ETH", "BTC"), "1h", days=5)
    b = a.with_columns(pl.lit("alt").alias("exchange"))
    out = compute_indicators(pl.concat([b, a]))
    assert out.select("exchange", "symbol", "ts").equals(out.select("exchange", "symbol", "ts").sort("exchange", "symbol", "ts"))
    assert out.get_column("exchange").unique(maintain_order=True).to_list() == ["alt", "sim"]


def test_same_symbol_on_two_exchanges_is_two_series() -> None:
    a = sim_candles(("BTC",), "1h", days=20)
    b = a.with_columns(pl.lit("other").alias("exchange"), pl.col("close") * 1.01)
    both = compute_indicators(pl.concat([a, b]))
    alone = compute_indicators(a)
    assert both.filter(pl.col("exchange") == "sim").equals(alone)


def test_empty_frame() -> None:
    out = compute_indicators(pl.DataFrame(schema=CANDLE_SCHEMA))
    assert out.height == 0 and out.schema == pl.Schema(INDICATOR_COLUMNS)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: pl.concat([f, f.head(1)]), "duplicate"),
        (lambda f: f.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(float("nan")).otherwise("close").alias("close")), "non-finite"),
        (lambda f: f.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(None).otherwise("close").alias("close")), "null"),
        (lambda f: f.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("4h")).otherwise("timeframe").alias("timeframe")), "timeframes"),
        (lambda f: f.drop("volume"), "lack"),
    ],
)
def test_invalid_input_is_rejected(mutate, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compute_indicators(mutate(make_candles(30)))


def test_no_nan_or_inf_on_real_market_data() -> None:
    out = compute_indicators(sim_candles(("BTC", "ETH", "DOGE", "PEPE"), "1h", days=90))
    _no_nan_or_inf(out)
    for symbol in ("BTC/USDT", "PEPE/USDT"):
        rows = out.filter(pl.col("symbol") == symbol)
        assert np.isfinite(column(rows, "supertrend")[7:]).all()
        assert np.isfinite(column(rows, "ehma_180")[191:]).all()


def test_zero_prices_give_nulls_not_infinities() -> None:
    candles = make_candles(60, seed=9).with_columns(
        pl.when(pl.int_range(pl.len()) == 30).then(0.0).otherwise(pl.col(c)).alias(c) for c in ("open", "low")
    )
    out = compute_indicators(candles)
    _no_nan_or_inf(out)
    assert out["range_pct"][30] is None and out["high_low_range_pct"][30] is None


def test_each_symbol_alone_equals_it_among_many_blocks() -> None:
    """A frame of several blocks (threads, lanes across symbols) gives every symbol the bits it
    gets alone."""
    names = tuple(f"S{i:02d}/USDT" for i in range(24))
    candles = make_candles(6000, symbols=names, seed=21)  # 144,000 rows: more than one block
    together = compute_indicators(candles)
    for name in names[::7]:
        alone = compute_indicators(candles.filter(pl.col("symbol") == name))
        assert together.filter(pl.col("symbol") == name).equals(alone)


def test_output_memory_is_not_reused_while_a_column_is_alive() -> None:
    """The output lives in memory from Arrow's pool, which hands freed pages to the next
    computation: a column kept from an earlier result (its frame dropped) must keep its values
    through later computations that reuse the pool."""
    first = compute_indicators(make_candles(3000, symbols=("A/USDT", "B/USDT"), seed=3))
    kept = first.get_column("ema_21")
    expected = kept.to_numpy().copy()
    del first
    for seed in (4, 5, 6):
        compute_indicators(make_candles(3000, symbols=("A/USDT", "B/USDT"), seed=seed))
    assert np.array_equal(kept.to_numpy(), expected, equal_nan=True)
