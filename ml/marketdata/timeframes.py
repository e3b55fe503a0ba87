"""Timeframe arithmetic in UTC milliseconds.

All functions here work on integer milliseconds since the Unix epoch (UTC) or on timezone-aware
``datetime`` objects; naive datetimes are rejected so that a local clock never leaks in.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

#: Fixed-length timeframes in milliseconds. Calendar timeframes (1w, 1M) are handled elsewhere.
TIMEFRAME_MS: dict[str, int] = {
    "1m": MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "1h": HOUR_MS,
    "2h": 2 * HOUR_MS,
    "4h": 4 * HOUR_MS,
    "12h": 12 * HOUR_MS,
    "1d": DAY_MS,
    "3d": 3 * DAY_MS,
    "1w": 7 * DAY_MS,
}


def timeframe_ms(timeframe: str) -> int:
    """Length of a fixed timeframe in milliseconds.

    Raises
    ------
    ValueError
        For a timeframe that is not one of :data:`TIMEFRAME_MS` (calendar months included).
    """
    try:
        return TIMEFRAME_MS[timeframe]
    except KeyError:
        known = ", ".join(TIMEFRAME_MS)
        raise ValueError(f"unknown timeframe {timeframe!r}; expected one of {known}") from None


def to_ms(moment: datetime) -> int:
    """Milliseconds since the epoch for a timezone-aware datetime."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: pass a timezone-aware UTC datetime")
    return int(moment.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    """Timezone-aware UTC datetime for milliseconds since the epoch."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def floor_ms(ms: int, timeframe: str) -> int:
    """Start of the (epoch-aligned) candle containing ``ms``."""
    step = timeframe_ms(timeframe)
    return ms - ms % step


def last_closed_open_ms(now_ms: int, timeframe: str) -> int:
    """Open time of the most recent candle that has closed at ``now_ms``.

    A candle opening at ``t`` closes at ``t + step``; it counts as closed when
    ``now_ms >= t + step``.
    """
    return floor_ms(now_ms, timeframe) - timeframe_ms(timeframe)


def day_bounds(day: str) -> tuple[datetime, datetime]:
    """``[start, end)`` of a UTC calendar day given as ``YYYY-MM-DD``."""
    start = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
    return start, start + timedelta(days=1)


def expected_open_times(start_ms: int, end_ms: int, timeframe: str) -> range:
    """Every epoch-aligned candle open time in ``[start_ms, end_ms)``."""
    step = timeframe_ms(timeframe)
    first = start_ms if start_ms % step == 0 else start_ms - start_ms % step + step
    return range(first, end_ms, step)
