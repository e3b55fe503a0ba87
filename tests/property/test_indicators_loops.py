"""Vectorised indicators against per-row loops on random candles (ties, flats, zero volume)."""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.indicators import IndicatorParams, compute_indicators
from tests.ml.indicators import naive
from tests.ml.indicators.strategies import candle_frames
from tests.ml.indicators.support import arrays, column, symbols

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from pandas_ta_classic.overlap.supertrend import _supertrend_loop


@settings(max_examples=60, deadline=None)
@given(candle_frames(), st.integers(1, 6), st.integers(5, 80))
def test_order_blocks_and_gaps_equal_loops(candles: pl.DataFrame, swing: int, age: int) -> None:
    params = IndicatorParams(swing_length=swing, structure_max_age=age)
    out = compute_indicators(candles, params=params)
    for symbol, rows in symbols(candles):
        d = arrays(rows)
        mine = out.filter(pl.col("symbol") == symbol)
        for bullish, side in ((True, "bull"), (False, "bear")):
            tops, bottoms, touches = naive.order_blocks(
                d["open"], d["high"], d["low"], d["close"], swing, age, bullish=bullish
            )
            np.testing.assert_array_equal(column(mine, f"ob_{side}_top"), tops)
            np.testing.assert_array_equal(column(mine, f"ob_{side}_bottom"), bottoms)
            assert mine[f"ob_{side}_touch"].to_list() == touches
        gaps = naive.fair_value_gaps(d["high"], d["low"])
        assert mine["fvg_bull"].to_list() == gaps["bull"]
        assert mine["fvg_bear"].to_list() == gaps["bear"]
        np.testing.assert_array_equal(column(mine, "fvg_top"), gaps["top"])
        np.testing.assert_array_equal(column(mine, "fvg_bottom"), gaps["bottom"])


@settings(max_examples=60, deadline=None)
@given(candle_frames())
def test_sequential_indicators_equal_loops(candles: pl.DataFrame) -> None:
    out = compute_indicators(candles)
    for symbol, rows in symbols(candles):
        d = arrays(rows)
        mine = out.filter(pl.col("symbol") == symbol)
        up, down = naive.td_counts(d["close"])
        assert mine["td_up"].to_list() == up
        assert mine["td_down"].to_list() == down
        h, lo, c = d["high"], d["low"], d["close"]
        if c.shape[0] > 7:
            band = 3.0 * talib.ATR(h, lo, c, 7)
            hl2 = 0.5 * (h + lo)
            direction, line, _, _ = _supertrend_loop(c, hl2 + band, hl2 - band, c.shape[0])
            assert np.array_equal(column(mine, "supertrend")[7:], line[7:])
            assert np.array_equal(column(mine, "supertrend_direction")[7:], direction[7:])
        assert mine["supertrend"].head(7).is_null().all()
        expected = naive.divergence(c, column(mine, "rsi_14"), 14)
        assert mine["rsi_divergence"].to_list() == expected


@settings(max_examples=60, deadline=None)
@given(candle_frames())
def test_vwap_equals_a_per_day_loop(candles: pl.DataFrame) -> None:
    out = compute_indicators(candles)
    for symbol, rows in symbols(candles):
        d = arrays(rows)
        days = rows["ts"].dt.date().to_list()
        expected, pv, vol = [], 0.0, 0.0
        for i, day in enumerate(days):
            if i == 0 or day != days[i - 1]:
                pv = vol = 0.0
            pv += (d["high"][i] + d["low"][i] + d["close"][i]) / 3.0 * d["volume"][i]
            vol += d["volume"][i]
            expected.append(pv / vol if vol > 0 else np.nan)
        np.testing.assert_allclose(column(out.filter(pl.col("symbol") == symbol), "vwap"), expected, rtol=1e-12)
