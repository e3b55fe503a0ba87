"""Derived columns, USD(T) volume and the multi-timeframe RSI divergence."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from ml.indicators import compute_indicators
from tests.ml.indicators import naive
from tests.ml.indicators.support import aggregate, arrays, column, sim_candles, symbols


@pytest.fixture(scope="module")
def candles() -> pl.DataFrame:
    return sim_candles(("BTC", "ETH", "DOGE"), "1h", days=60).sort("symbol", "ts")


@pytest.fixture(scope="module")
def out(candles: pl.DataFrame) -> pl.DataFrame:
    return compute_indicators(candles)


def test_percent_columns(candles: pl.DataFrame, out: pl.DataFrame) -> None:
    c, o = column(candles, "close"), column(candles, "open")
    h, lo = column(candles, "high"), column(candles, "low")
    np.testing.assert_allclose(column(out, "range_pct"), (c - o) / o * 100, rtol=1e-12)
    np.testing.assert_allclose(column(out, "high_low_range_pct"), (h - lo) / lo * 100, rtol=1e-12)
    e = column(out, "ema_200")
    np.testing.assert_allclose(column(out, "diff_ema200_pct"), (c - e) / e * 100, rtol=1e-12)


def test_crosses_and_divergence_equal_the_per_row_loops(candles: pl.DataFrame, out: pl.DataFrame) -> None:
    for symbol, rows in symbols(candles):
        mine = out.filter(pl.col("symbol") == symbol)
        for fast, slow in ((9, 21), (10, 36)):
            up, down = naive.crosses(column(mine, f"ema_{fast}"), column(mine, f"ema_{slow}"), slow)
            assert mine[f"ema_{fast}_{slow}_cross_up"].to_list() == up
            assert mine[f"ema_{fast}_{slow}_cross_down"].to_list() == down
            assert any(up[slow:]) and any(down[slow:])
        expected = naive.divergence(arrays(rows)["close"], column(mine, "rsi_14"), 14)
        assert mine["rsi_divergence"].to_list() == expected
        assert {1, -1} <= set(expected)


def test_volume_usd_converts_non_usdt_quotes_with_closed_quote_candles() -> None:
    usdt = sim_candles(("ETH", "BTC"), "1h", days=5)
    eth_btc = (
        usdt.filter(pl.col("symbol") == "ETH/USDT")
        .join(usdt.filter(pl.col("symbol") == "BTC/USDT").select("ts", pl.col("close").alias("btc")), on="ts")
        .with_columns(
            pl.lit("ETH/BTC").alias("symbol"),
            *(pl.col(c) / pl.col("btc") for c in ("open", "high", "low", "close")),
        )
        .drop("btc")
    )
    btc = usdt.filter(pl.col("symbol") == "BTC/USDT")
    frame = pl.concat([eth_btc, usdt.filter(pl.col("symbol") == "ETH/USDT")])
    out = compute_indicators(frame, quote_to_usdt={"BTC": btc.select("ts", "close")})
    converted = column(out.filter(pl.col("symbol") == "ETH/BTC"), "volume_usd")
    direct = column(out.filter(pl.col("symbol") == "ETH/USDT"), "volume_usd")
    np.testing.assert_allclose(converted, direct, rtol=1e-12)
    # a quote series of 4h candles: each 1h candle uses the last 4h candle closed by its close
    btc4h = aggregate(btc, "4h")
    out4 = compute_indicators(eth_btc, quote_to_usdt={"BTC": btc4h})
    rate = column(out4, "volume_usd") / (column(eth_btc, "volume") * column(eth_btc, "close"))
    ends = btc4h["ts"].dt.epoch("ms").to_numpy() + 4 * 3_600_000
    closes = eth_btc["ts"].dt.epoch("ms").to_numpy() + 3_600_000
    at = np.searchsorted(ends, closes, side="right") - 1
    expected = np.where(at >= 0, btc4h["close"].to_numpy()[np.maximum(at, 0)], np.nan)
    np.testing.assert_allclose(rate, expected, rtol=1e-12)
    assert np.isnan(rate[:3]).all() and not np.isnan(rate[3])  # first 4h candle closes at 04:00
    # no quote series: null, never a guess
    assert compute_indicators(eth_btc)["volume_usd"].is_null().all()


def test_higher_timeframe_divergence_uses_only_closed_candles(candles: pl.DataFrame) -> None:
    higher = compute_indicators(aggregate(candles, "4h"))
    out = compute_indicators(candles, higher_timeframe_rsi=higher.select("exchange", "symbol", "timeframe", "ts", "rsi_14"))
    for symbol, rows in symbols(candles):
        mine = out.filter(pl.col("symbol") == symbol)
        h = higher.filter(pl.col("symbol") == symbol)
        ends = h["ts"].dt.epoch("ms").to_numpy() + 4 * 3_600_000
        closes = rows["ts"].dt.epoch("ms").to_numpy() + 3_600_000
        at = np.searchsorted(ends, closes, side="right") - 1
        as_of = np.where(at >= 0, column(h, "rsi_14")[np.maximum(at, 0)], np.nan)
        expected = naive.divergence(arrays(rows)["close"], as_of, 14)
        assert mine["rsi_divergence_htf"].to_list() == expected
        assert {1, -1} <= set(expected)
    assert compute_indicators(candles)["rsi_divergence_htf"].is_null().all()


def test_higher_timeframe_rows_match_by_exchange_and_symbol_in_any_order(candles: pl.DataFrame) -> None:
    """Higher-timeframe rows in any order, for symbols the candles lack and lacking some the
    candles have, with the same symbol on two exchanges: each candle sees its own series only."""
    keys = ["exchange", "symbol", "timeframe", "ts", "rsi_14"]
    higher = compute_indicators(aggregate(candles, "4h")).select(keys)
    other = candles.with_columns(pl.lit("other").alias("exchange"))
    higher_other = higher.with_columns(pl.lit("other").alias("exchange"), (100 - pl.col("rsi_14")).alias("rsi_14"))
    dropped = candles.get_column("symbol").unique().sort()[0]
    stranger = higher.filter(pl.col("symbol") == dropped).with_columns(pl.lit("XRP/USDT").alias("symbol"))
    given = pl.concat([higher, higher_other.filter(pl.col("symbol") != dropped), stranger]).sample(
        fraction=1.0, shuffle=True, seed=7
    )
    out = compute_indicators(pl.concat([candles, other]), higher_timeframe_rsi=given)

    def htf(frame: pl.DataFrame) -> list[int | None]:
        return frame.sort("symbol", "ts")["rsi_divergence_htf"].to_list()

    own = compute_indicators(candles, higher_timeframe_rsi=higher)
    assert htf(out.filter(pl.col("exchange") == "sim")) == htf(own)
    theirs = compute_indicators(other.filter(pl.col("symbol") != dropped), higher_timeframe_rsi=higher_other)
    mine = out.filter(pl.col("exchange") == "other")
    assert htf(mine.filter(pl.col("symbol") != dropped)) == htf(theirs)
    assert htf(mine.filter(pl.col("symbol") != dropped)) != htf(own.filter(pl.col("symbol") != dropped))
    assert mine.filter(pl.col("symbol") == dropped)["rsi_divergence_htf"].is_null().all()


def test_higher_timeframe_frame_must_carry_the_rsi(candles: pl.DataFrame) -> None:
    with pytest.raises(ValueError, match="rsi_14"):
        compute_indicators(candles, higher_timeframe_rsi=candles.select("exchange", "symbol", "timeframe", "ts"))


def test_vwap_resets_at_each_utc_day(candles: pl.DataFrame, out: pl.DataFrame) -> None:
    first_of_day = out.filter(pl.col("ts").dt.hour() == 0)
    src = candles.filter(pl.col("ts").dt.hour() == 0)
    typical = (column(src, "high") + column(src, "low") + column(src, "close")) / 3
    np.testing.assert_allclose(column(first_of_day, "vwap"), typical, rtol=1e-12)


@pytest.mark.parametrize(
    ("timeframe", "anchor"), [("1m", "day"), ("4h", "day"), ("1d", "week"), ("3d", "week"), ("1w", "month")]
)
def test_vwap_anchor_follows_the_timeframe(timeframe: str, anchor: str) -> None:
    from ml.indicators.volume import resolve_anchor
    from ml.marketdata.timeframes import timeframe_ms

    assert resolve_anchor("auto", timeframe_ms(timeframe)) == anchor


def test_anchor_periods_start_on_utc_day_monday_and_month() -> None:
    from datetime import UTC, datetime

    from ml.indicators.volume import anchor_periods
    from ml.marketdata.timeframes import to_ms

    moment = to_ms(datetime(2024, 5, 16, 13, 30, tzinfo=UTC))  # a Thursday
    ts = np.array([moment], dtype=np.int64)
    for anchor, start in (
        ("day", datetime(2024, 5, 16, tzinfo=UTC)),
        ("week", datetime(2024, 5, 13, tzinfo=UTC)),
        ("month", datetime(2024, 5, 1, tzinfo=UTC)),
    ):
        assert anchor_periods(ts, anchor)[1][0] == to_ms(start), anchor
