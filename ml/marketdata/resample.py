"""Multi-timeframe candles built from 1h candles, and sub-hour candles built from 1m candles.

Bucket alignment, all in UTC:

* ``5m``, ``15m`` (from 1m candles) and ``1h`` (from 1m candles, for the live path's latest hour):
  aligned to the Unix epoch.

* ``2h``, ``4h``, ``12h``, ``1d``: aligned to the Unix epoch (so ``4h`` buckets open at 00, 04, ...).
* ``3d``: aligned to the Unix epoch, 1970-01-01 00:00 UTC, as Binance's 3d klines are
  (e.g. a bucket opens on 2024-01-01 ... and every third day from it).
* ``1w``: Monday 00:00 UTC.
* ``1M``: the first of the month, 00:00 UTC.

A bucket is *complete* when every one of its source candles (1h, or 1m for :data:`SUBHOUR_TIMEFRAMES`)
is present and its end has passed.
Only complete buckets are candles; incomplete ones are returned separately with how many hours
they lack, so the caller reports them instead of building a candle from fewer hours.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import polars as pl

from ml.marketdata.frames import CANDLE_SCHEMA, TS
from ml.marketdata.timeframes import DAY_MS, HOUR_MS, MINUTE_MS, timeframe_ms, to_ms

MTF_TIMEFRAMES: tuple[str, ...] = ("2h", "4h", "12h", "1d", "3d", "1w", "1M")
#: Built from 1m candles by the same rules (complete buckets only).
SUBHOUR_TIMEFRAMES: tuple[str, ...] = ("5m", "15m")
_FIXED_MS = {"5m": 5 * MINUTE_MS, "15m": 15 * MINUTE_MS, "1h": HOUR_MS, "2h": 2 * HOUR_MS, "4h": 4 * HOUR_MS,
             "12h": 12 * HOUR_MS, "1d": DAY_MS, "3d": 3 * DAY_MS}
_MONDAY_OFFSET_MS = 4 * DAY_MS  # 1970-01-01 was a Thursday; the first Monday is 1970-01-05

INCOMPLETE_SCHEMA: dict[str, pl.DataType] = {
    "exchange": pl.String(), "symbol": pl.String(), "timeframe": pl.String(), "ts": TS,
    "hours_present": pl.Int64(), "hours_expected": pl.Int64(),
}


def bucket_start(ts: pl.Expr, timeframe: str) -> pl.Expr:
    """Open time (``Datetime("ms","UTC")``) of the ``timeframe`` bucket containing ``ts``."""
    ms = ts.dt.epoch("ms")
    if timeframe in _FIXED_MS:
        step = _FIXED_MS[timeframe]
        return (ms - ms % step).cast(TS)
    if timeframe == "1w":
        week = 7 * DAY_MS
        shifted = ms - _MONDAY_OFFSET_MS
        return (shifted - shifted % week + _MONDAY_OFFSET_MS).cast(TS)
    if timeframe == "1M":
        return ts.dt.truncate("1mo").cast(TS)
    raise ValueError(f"unknown multi-timeframe {timeframe!r}; expected one of {', '.join(MTF_TIMEFRAMES)}")


def bucket_end(start: pl.Expr, timeframe: str) -> pl.Expr:
    if timeframe == "1M":
        return start.dt.offset_by("1mo")
    step = 7 * DAY_MS if timeframe == "1w" else _FIXED_MS[timeframe]
    return (start.dt.epoch("ms") + step).cast(TS)


def bucket_bounds(moment: datetime, timeframe: str) -> tuple[datetime, datetime]:
    """``[start, end)`` of the bucket containing ``moment`` (tz-aware UTC)."""
    frame = pl.DataFrame({"ts": [moment]}, schema={"ts": TS})
    row = frame.select(bucket_start(pl.col("ts"), timeframe).alias("s")).with_columns(
        bucket_end(pl.col("s"), timeframe).alias("e")).row(0)
    return row[0].astimezone(UTC), row[1].astimezone(UTC)


def span_for_day(day_start: datetime, timeframes: Sequence[str] = MTF_TIMEFRAMES) -> tuple[datetime, datetime]:
    """The 1h range to read so that every bucket of ``timeframes`` touching the UTC day starting
    at ``day_start`` can be built: from the earliest such bucket's start to the latest one's end."""
    day_end = day_start + timedelta(days=1)
    starts, ends = [], []
    for timeframe in timeframes:
        first, _ = bucket_bounds(day_start, timeframe)
        _, last = bucket_bounds(day_end - timedelta(milliseconds=1), timeframe)
        starts.append(first)
        ends.append(last)
    return min(starts), max(ends)


def resample(candles_1h: pl.DataFrame, timeframe: str, *, now: datetime,
             source: str = "1h") -> tuple[pl.DataFrame, pl.DataFrame]:
    """Aggregate ``source`` candles (1h by default) into ``timeframe`` buckets.

    Parameters
    ----------
    candles_1h
        CANDLE_SCHEMA rows with ``timeframe == source`` (any exchanges and symbols).
    source
        Timeframe of the input: ``"1h"``, or ``"1m"`` for the 5m, 15m and 1h buckets (the
        ``hours_*`` columns of ``incomplete`` then count source candles, minutes).
    now
        The clock: a bucket whose end is after ``now`` is not complete yet.

    Returns
    -------
    (complete, incomplete)
        ``complete``: CANDLE_SCHEMA candles (open = first open, high = max, low = min,
        close = last close, volume = sum), sorted by (exchange, symbol, ts).
        ``incomplete``: INCOMPLETE_SCHEMA rows for buckets lacking hours or not yet closed.
    """
    if candles_1h.is_empty():
        return pl.DataFrame(schema=CANDLE_SCHEMA), pl.DataFrame(schema=INCOMPLETE_SCHEMA)
    now_ms = to_ms(now)
    source_ms = timeframe_ms(source)
    grouped = (
        candles_1h.sort("exchange", "symbol", "ts")
        .with_columns(bucket_start(pl.col("ts"), timeframe).alias("bucket"))
        .group_by("exchange", "symbol", "bucket", maintain_order=True)
        .agg(
            pl.col("open").first(), pl.col("high").max(), pl.col("low").min(),
            pl.col("close").last(), pl.col("volume").sum(),
            pl.col("ts").n_unique().cast(pl.Int64).alias("hours_present"),
        )
        .with_columns(bucket_end(pl.col("bucket"), timeframe).alias("end"))
        .with_columns(
            ((pl.col("end").dt.epoch("ms") - pl.col("bucket").dt.epoch("ms")) // source_ms).alias("hours_expected"),
            pl.lit(timeframe).alias("timeframe"),
        )
    )
    is_complete = (pl.col("hours_present") == pl.col("hours_expected")) & (pl.col("end").dt.epoch("ms") <= now_ms)
    complete = grouped.filter(is_complete).rename({"bucket": "ts"}).select(list(CANDLE_SCHEMA))
    incomplete = grouped.filter(~is_complete).rename({"bucket": "ts"}).select(list(INCOMPLETE_SCHEMA))
    return complete.sort("exchange", "symbol", "ts"), incomplete.sort("exchange", "symbol", "ts")

