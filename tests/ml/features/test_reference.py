"""Vectorised features against naive per-symbol loops (polars' own test style), and known answers
for the higher-timeframe as-of join (closed, complete candles only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.features import FeatureConfig, build_features
from ml.marketdata.frames import CANDLE_SCHEMA
from tests.ml.features.support import SMALL, random_market


def _naive(candles: pl.DataFrame, symbol: str) -> dict[str, list[float | None]]:
    """ret_3, volatility_5, volume_ratio_5, beta/corr to BTC over 10 rows, by explicit loops."""
    rows = candles.filter(pl.col("symbol") == symbol).sort("ts")
    btc = dict(candles.filter(pl.col("symbol") == "BTC/USDT").sort("ts").select("ts", "close").iter_rows())
    btc_prev = {}
    prev = None
    for ts, close in sorted(btc.items()):
        btc_prev[ts] = None if prev is None else np.log(close / prev)
        prev = close
    ts, close, volume = (rows.get_column(c).to_list() for c in ("ts", "close", "volume"))
    out: dict[str, list[float | None]] = {k: [] for k in ("ret_3", "volatility_5", "volume_ratio_5",
                                                          "beta_btc_10", "corr_btc_10")}
    logret = [None] + [np.log(close[i] / close[i - 1]) for i in range(1, len(close))]
    for i in range(len(close)):
        out["ret_3"].append(close[i] / close[i - 3] - 1 if i >= 3 else None)
        window = logret[i - 4:i + 1] if i >= 4 else [None]
        out["volatility_5"].append(float(np.std(window, ddof=1)) if None not in window else None)
        out["volume_ratio_5"].append(volume[i] / np.mean(volume[i - 4:i + 1]) if i >= 4 else None)
        pairs = [(logret[j], btc_prev.get(ts[j])) for j in range(i - 9, i + 1)] if i >= 9 else [(None, None)]
        if any(x is None or y is None for x, y in pairs):
            out["beta_btc_10"].append(None)
            out["corr_btc_10"].append(None)
            continue
        x, y = np.array(pairs).T
        cov = np.mean(x * y) - x.mean() * y.mean()
        out["beta_btc_10"].append(cov / y.var())
        out["corr_btc_10"].append(cov / np.sqrt(x.var() * y.var()))
    return out


@settings(max_examples=15, deadline=None, derandomize=True)
@given(st.integers(0, 2**32 - 1), st.integers(5, 120))
def test_features_match_a_per_symbol_loop(seed: int, n: int) -> None:
    candles, _ = random_market(seed, n)
    features = build_features(candles, config=SMALL)
    for symbol in ("BTC/USDT", "PEPE/USDT"):
        got = features.filter(pl.col("symbol") == symbol)
        for column, expected in _naive(candles, symbol).items():
            actual = got.get_column(column).to_list()
            assert [v is None for v in actual] == [v is None for v in expected], column
            pairs = [(a, e) for a, e in zip(actual, expected, strict=True) if e is not None]
            if pairs:
                np.testing.assert_allclose(*np.array(pairs).T, rtol=1e-7, atol=1e-12, err_msg=column)


def _hours(closes: list[float], start_hour: int = 0, drop: tuple[int, ...] = ()) -> pl.DataFrame:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    hours = [h for h in range(start_hour, start_hour + len(closes)) if h not in drop]
    return pl.DataFrame({
        "exchange": "sim", "symbol": "BTC/USDT", "timeframe": "1h",
        "ts": [start + timedelta(hours=h) for h in hours],
        "open": [closes[h - start_hour] for h in hours], "high": [closes[h - start_hour] for h in hours],
        "low": [closes[h - start_hour] for h in hours], "close": [closes[h - start_hour] for h in hours],
        "volume": 1.0,
    }).select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()])


HTF = FeatureConfig(higher_timeframes=("4h",), higher_rsi_period=2)


def test_higher_timeframe_uses_only_closed_candles() -> None:
    """Close of hour h is h + 1; the 4h bucket k closes (at 4k + 4) with close 4k + 4. The row
    opening at hour h closes at h + 1, so it sees bucket floor((h + 1) / 4) - 1, not the open one."""
    features = build_features(_hours([h + 1.0 for h in range(24)]), config=HTF)
    got = features.get_column("htf_4h_ret").to_list()
    for h, value in enumerate(got):
        k = (h + 1) // 4 - 1
        expected = (4 * k + 4) / (4 * k) - 1 if k >= 1 else None
        assert value == pytest.approx(expected) if expected is not None else value is None, h
    # prices only rise: Wilder's RSI of the closed buckets is 100 once it has 2 changes
    rsi = features.get_column("htf_4h_rsi_2").to_list()
    assert rsi[:11] == [None] * 11 and set(rsi[11:]) == {100.0}


def test_incomplete_higher_candles_are_never_used() -> None:
    """Hour 9 missing: bucket [8, 12) is incomplete, so rows after it still see bucket [4, 8)
    (closed, complete), and bucket [12, 16)'s return is null (its previous bucket is incomplete)."""
    features = build_features(_hours([h + 1.0 for h in range(24)], drop=(9,)), config=HTF)
    by_hour = dict(features.select(pl.col("ts").dt.hour(), "htf_4h_ret").iter_rows())
    expected = {h: None for h in range(7)} | {h: 8 / 4 - 1 for h in range(7, 15) if h != 9}
    expected |= {h: None for h in range(15, 19)} | {h: 20 / 16 - 1 for h in range(19, 23)} | {23: 24 / 20 - 1}
    assert by_hour.keys() == expected.keys()
    for h, value in expected.items():
        assert by_hour[h] == (pytest.approx(value) if value is not None else None), h


def test_a_ragged_start_makes_the_first_higher_candle_incomplete() -> None:
    features = build_features(_hours([h + 1.0 for h in range(2, 24)], start_hour=2), config=HTF)
    by_hour = dict(features.select(pl.col("ts").dt.hour(), "htf_4h_ret").iter_rows())
    assert all(by_hour[h] is None for h in range(2, 11))  # [0, 4) incomplete, so [4, 8) has no return
    assert all(by_hour[h] == pytest.approx(12 / 8 - 1) for h in range(11, 15))


def test_derivatives_are_joined_as_of_the_candle_close() -> None:
    candles = _hours([100.0] * 6)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    derivatives = pl.DataFrame({
        "exchange": "sim", "symbol": ["BTC/USDT:USDT", "BTC/USDT:USDT", "BTC/USDT:USDC"],
        "ts": [start + timedelta(minutes=90), start + timedelta(hours=3), start + timedelta(hours=1)],
        "funding_rate": [0.001, 0.002, 0.5], "open_interest": [100.0, 150.0, 1.0],
    })
    config = FeatureConfig(higher_timeframes=(), open_interest_periods=(1,), derivatives_max_age_hours=2)
    features = build_features(candles, config=config, derivatives=derivatives)
    # row h closes at h + 1: 01:30 is seen from row 1 (closes 02:00), 03:00 from row 2, stale after 05:00
    assert features.get_column("funding_rate").to_list() == [None, 0.001, 0.002, 0.002, 0.002, None]
    assert features.get_column("oi_change_1").to_list() == pytest.approx([None, None, 0.5, 0.0, 0.0, None])


def test_bad_input_is_named() -> None:
    candles = _hours([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="duplicate candle key"):
        build_features(pl.concat([candles, candles.head(1)]))
    with pytest.raises(ValueError, match=r"non-positive .* BTC/USDT"):
        build_features(candles.with_columns(pl.lit(0.0).alias("close")))
    with pytest.raises(ValueError, match="one timeframe"):
        build_features(pl.concat([candles, candles.with_columns(pl.lit("4h").alias("timeframe"))]))


def test_key_sorted_input_takes_no_shortcut_past_duplicates_or_order() -> None:
    """A key-sorted frame skips the duplicate search and the sort: it must give the frame a
    shuffled copy gives, and a duplicate next to its twin must still be refused."""
    candles, _ = random_market(5, 120)
    ordered = candles.sort("exchange", "symbol", "timeframe", "ts")
    shuffled = candles.sample(fraction=1.0, shuffle=True, seed=2)
    assert build_features(ordered).equals(build_features(shuffled), null_equal=True)
    doubled = pl.concat([ordered, ordered.slice(40, 1)]).sort("exchange", "symbol", "timeframe", "ts")
    with pytest.raises(ValueError, match="duplicate candle key"):
        build_features(doubled)


def test_expansion_lags_correlated_pairs_and_indicators() -> None:
    candles, _ = random_market(3, 60)
    indicators = candles.select("exchange", "symbol", "timeframe", "ts",
                                (pl.col("close") * 2).alias("rsi_14"), (pl.col("close") > pl.col("open")).alias("fvg_bull"),
                                pl.lit(1.0).alias("unused")).sample(fraction=0.8, seed=1, shuffle=True)
    config = SMALL.model_copy(update={"indicator_columns": ("rsi_14", "fvg_bull")})
    features = build_features(candles, config=config, indicators=indicators)
    assert "unused" not in features.columns and features.schema["fvg_bull"] == pl.Int8
    joined = features.join(indicators, on=["exchange", "symbol", "timeframe", "ts"], how="left", suffix="_ind")
    assert joined.get_column("rsi_14").equals(joined.get_column("rsi_14_ind"))
    assert joined.get_column("fvg_bull").equals(joined.get_column("fvg_bull_ind").cast(pl.Int8))
    for symbol in ("BTC/USDT", "PEPE/USDT"):
        rows = features.filter(pl.col("symbol") == symbol)
        assert rows.get_column("ret_1_lag2").equals(rows.get_column("ret_1").shift(2))
        assert rows.get_column("htf_4h_ret_lag1").equals(rows.get_column("htf_4h_ret").shift(1))
    eth = features.filter(pl.col("symbol") == "ETH/USDT").select("ts", "ret_3", "volatility_5")
    pepe = features.filter(pl.col("symbol") == "PEPE/USDT").join(eth, on="ts", how="left", suffix="_eth")
    assert pepe.get_column("eth_ret_3").equals(pepe.get_column("ret_3_eth"))
    assert pepe.get_column("eth_volatility_5").equals(pepe.get_column("volatility_5_eth"))
    with pytest.raises(ValueError, match="clash"):
        build_features(candles, indicators=indicators.rename({"rsi_14": "ret_1"}),
                       config=SMALL.model_copy(update={"indicator_columns": ("ret_1",)}))
