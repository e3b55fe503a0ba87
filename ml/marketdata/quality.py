"""Data-quality rules for candle frames: unique keys, gaps, OHLC sanity, freshness.

Each rule returns the offending rows (empty when the data is clean) so that a check can both
pass/fail and show exactly what is wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import polars as pl

from ml.marketdata.frames import TS
from ml.marketdata.timeframes import timeframe_ms, to_ms


def duplicate_keys(frame: pl.DataFrame, key: Sequence[str]) -> pl.DataFrame:
    """Key values that occur more than once, with their count (column ``n``)."""
    return frame.group_by(list(key)).len(name="n").filter(pl.col("n") > 1).sort(list(key))


def ohlc_violations(frame: pl.DataFrame) -> pl.DataFrame:
    """Candles breaking ``low <= min(open, close)``, ``max(open, close) <= high``, ``volume >= 0``,
    or holding a non-finite price."""
    prices = ("open", "high", "low", "close")
    bad = (
        (pl.col("low") > pl.min_horizontal("open", "close"))
        | (pl.col("high") < pl.max_horizontal("open", "close"))
        | (pl.col("low") > pl.col("high"))
        | (pl.col("volume") < 0)
        | pl.any_horizontal([~pl.col(c).is_finite() for c in (*prices, "volume")])
        | pl.any_horizontal([pl.col(c).is_null() for c in (*prices, "volume")])
    )
    return frame.filter(bad)


def find_gaps(
    frame: pl.DataFrame,
    *,
    timeframe: str,
    start: datetime,
    end: datetime,
    symbols: Sequence[str],
) -> pl.DataFrame:
    """Missing candles of ``symbols`` in ``[start, end)``, as runs.

    Returns one row per run of consecutive missing candles: ``symbol``, ``gap_start`` (first
    missing open time), ``missing`` (number of candles). A symbol with no candle at all in the
    window is one run covering the whole window. ``frame`` needs ``symbol`` and ``ts``; candles
    outside the window are ignored.
    """
    step = timeframe_ms(timeframe)
    start_ms, end_ms = to_ms(start), to_ms(end)
    first = start_ms + (-start_ms) % step
    expected = pl.DataFrame(
        {"ts": pl.int_range(first, end_ms, step, eager=True).cast(pl.Int64)}
    )
    if expected.is_empty() or not symbols:
        return pl.DataFrame(schema={"symbol": pl.String, "gap_start": TS, "missing": pl.Int64})
    grid = pl.DataFrame({"symbol": list(symbols)}).join(expected, how="cross")
    present = frame.select(
        pl.col("symbol"), pl.col("ts").dt.epoch("ms").cast(pl.Int64).alias("ts")
    ).unique()
    missing = grid.join(present, on=["symbol", "ts"], how="anti").sort(["symbol", "ts"])
    runs = (
        missing.with_columns(
            ((pl.col("ts") - pl.col("ts").shift(1).over("symbol")) != step)
            .fill_null(True)
            .cum_sum()
            .over("symbol")
            .alias("run")
        )
        .group_by(["symbol", "run"])
        .agg(pl.col("ts").min().alias("gap_start"), pl.len().cast(pl.Int64).alias("missing"))
        .select("symbol", pl.col("gap_start").cast(TS), "missing")
        .sort(["symbol", "gap_start"])
    )
    return runs


def staleness_hours(latest: datetime | None, now: datetime) -> float | None:
    """Hours between ``latest`` and ``now`` (None when there is no data at all)."""
    if latest is None:
        return None
    return (now - latest).total_seconds() / 3600.0
