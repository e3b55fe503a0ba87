"""A daily partition computed with ``lookback_bars`` of look-back equals the full history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from ml.indicators import IndicatorParams, compute_indicators, lookback_bars
from ml.marketdata.timeframes import timeframe_ms
from tests.ml.indicators.support import column, sim_candles

#: Columns that cross zero: compared with an absolute tolerance of 1e-9 of the price level, or of
#: their own unit (percent, band widths), since a relative error is undefined at zero.
PRICE_DIFFERENCES = ("macd", "macd_signal", "macd_hist")
PERCENT_DIFFERENCES = ("diff_ema200_pct", "bb_position")


def _partition(candles: pl.DataFrame, day: datetime, lookback: int) -> pl.DataFrame:
    step = timeframe_ms(str(candles["timeframe"][0]))
    start = day - timedelta(milliseconds=lookback * step)
    window = candles.filter(pl.col("ts").is_between(start, day + timedelta(days=1), closed="left"))
    return compute_indicators(window).filter(pl.col("ts") >= day)


def _compare(part: pl.DataFrame, full: pl.DataFrame) -> None:
    assert part.height == full.height > 0
    close = column(full, "vwap")  # a price level of the same symbol and day
    for name, dtype in part.schema.items():
        if name in ("exchange", "symbol", "timeframe", "ts"):
            assert part[name].equals(full[name])
        elif name == "obv":  # a running total from the first candle given: compare increments
            for symbol in full["symbol"].unique():
                p = column(part.filter(pl.col("symbol") == symbol), name)
                f = column(full.filter(pl.col("symbol") == symbol), name)
                np.testing.assert_allclose(np.diff(p), np.diff(f), rtol=1e-9, atol=1e-9 * np.abs(f).max())
        elif dtype == pl.Float64:
            p, f = column(part, name), column(full, name)
            assert np.array_equal(np.isnan(p), np.isnan(f)), name
            atol = 0.0
            if name in PRICE_DIFFERENCES:
                atol = 1e-9 * np.nanmax(close)
            elif name in PERCENT_DIFFERENCES:
                atol = 1e-9
            np.testing.assert_allclose(p, f, rtol=1e-9, atol=atol, err_msg=name)
        else:
            assert part[name].equals(full[name]), name


@pytest.mark.parametrize(("timeframe", "days"), [("1h", 150), ("5m", 32)])
def test_partitions_with_lookback_equal_the_full_history(timeframe: str, days: int) -> None:
    start = datetime(2023, 6, 1, tzinfo=UTC)
    candles = sim_candles(("BTC", "DOGE"), timeframe, days=days, start=start)
    full = compute_indicators(candles)
    lookback = lookback_bars(IndicatorParams())
    last = start + timedelta(days=days)
    for offset in (21, 14, 8, 3, 1):  # partitions spread over the last three weeks
        day = last - timedelta(days=offset)
        part = _partition(candles, day, lookback)
        _compare(part, full.filter(pl.col("ts").is_between(day, day + timedelta(days=1), closed="left")))


def test_a_short_lookback_is_not_enough() -> None:
    """The test above is sensitive: 300 bars of look-back leave EMA 200 visibly off."""
    start = datetime(2023, 6, 1, tzinfo=UTC)
    candles = sim_candles(("BTC",), "1h", days=150, start=start)
    day = start + timedelta(days=140)
    full = compute_indicators(candles).filter(pl.col("ts").is_between(day, day + timedelta(days=1), closed="left"))
    part = _partition(candles, day, 300)
    gap = np.max(np.abs(column(part, "ema_200") / column(full, "ema_200") - 1))
    assert gap > 1e-9
