"""Validation of candles read from a file before they reach the warehouse (pure, no I/O).

The rules, in the order a reader meets them:

* every timestamp is a UTC open time aligned to the timeframe (``ts % step == 0``, epoch-aligned);
* no timestamp appears twice (which of two rows is right cannot be decided, so neither is taken);
* every price and the volume is finite, ``low <= min(open, close)``, ``max(open, close) <= high``
  and ``volume >= 0``;
* no candle opens after ``now`` (a file from the future is wrong, not early), and the one candle
  still open at ``now`` (``ts <= now < ts + step``) is dropped: only closed candles are stored.

Rows out of order are accepted and sorted: a file's row order carries no information once the
timestamps are unique, and freqtrade itself sorts on load.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from ml.marketdata.frames import OHLCV_SCHEMA, TS
from ml.marketdata.timeframes import from_ms, timeframe_ms

#: Columns a reader hands over: ``row`` is the 1-based position named in error messages.
RAW_SCHEMA: dict[str, pl.DataType] = {
    "row": pl.Int64(),
    "ts_ms": pl.Int64(),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
}
PRICES = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class CheckedCandles:
    """The outcome of :func:`check_candles`.

    ``frame`` is empty whenever ``problems`` is not: a file is taken whole or not at all.
    """

    frame: pl.DataFrame
    problems: tuple[str, ...]
    dropped_open: int

    @property
    def ok(self) -> bool:
        return not self.problems


def _instant(ms: int) -> str:
    return from_ms(ms).strftime("%Y-%m-%dT%H:%M:%SZ")


def _values(record: dict[str, object]) -> str:
    return " ".join(f"{c}={record[c]}" for c in PRICES)


def _at(record: dict[str, object]) -> str:
    ts = record["ts_ms"]
    return "missing" if ts is None else _instant(int(ts))  # type: ignore[call-overload]


def check_candles(raw: pl.DataFrame, *, timeframe: str, now_ms: int, row_label: str = "row") -> CheckedCandles:
    """Validate raw candle rows and return them as a sorted OHLCV frame.

    Parameters
    ----------
    raw
        Columns of :data:`RAW_SCHEMA`; ``ts_ms`` is the candle's open time in UTC epoch
        milliseconds, ``row`` the position a person finds the row at (row or line number).
    timeframe
        A fixed timeframe of :data:`ml.marketdata.timeframes.TIMEFRAME_MS`.
    now_ms
        The current time (UTC epoch ms), injected so tests are independent of the wall clock.
    row_label
        The word naming positions in messages (``"row"``, or ``"line"`` for CSV).

    Returns
    -------
    CheckedCandles
        Every problem found (one message per offending row and rule, naming the row and its
        values), or, when there is none, the closed candles sorted by ``ts`` with
        ``ts`` as ``Datetime("ms", "UTC")`` and the number of still-open candles dropped (0 or 1).
    """
    step = timeframe_ms(timeframe)
    frame = raw.select([pl.col(c).cast(t) for c, t in RAW_SCHEMA.items()])
    problems: list[str] = []

    def report(condition: pl.Expr, describe: str) -> None:
        for record in frame.filter(condition).iter_rows(named=True):
            problems.append(f"{row_label} {record['row']}: {describe.format(at=_at(record))} ({_values(record)})")

    report(pl.col("ts_ms").is_null(), "timestamp missing")
    report(pl.col("ts_ms") % step != 0, "timestamp {at} is not aligned to " + timeframe)
    for column in PRICES:
        report(pl.col(column).is_null() | ~pl.col(column).is_finite(), f"{column} is not a finite number at {{at}}")
    finite = pl.all_horizontal(pl.col(c).is_finite() for c in PRICES)
    ordered = finite & (pl.col("high") >= pl.col("low"))
    report(finite & (pl.col("high") < pl.col("low")), "high < low at {at}")
    report(ordered & (pl.col("low") > pl.min_horizontal("open", "close")), "low above open or close at {at}")
    report(ordered & (pl.col("high") < pl.max_horizontal("open", "close")), "high below open or close at {at}")
    report(finite & (pl.col("volume") < 0), "negative volume at {at}")
    report(pl.col("ts_ms") > now_ms, "candle opens at {at}, after now (" + _instant(now_ms) + ")")

    duplicated = frame.filter(pl.col("ts_ms").is_not_null() & pl.col("ts_ms").is_duplicated())
    for (ts,), group in duplicated.group_by(["ts_ms"], maintain_order=True):
        rows = ", ".join(str(r) for r in group.get_column("row").to_list())
        values = "; ".join(f"({_values(record)})" for record in group.iter_rows(named=True))
        problems.append(f"{row_label}s {rows}: duplicate timestamp {_instant(int(ts))} "  # type: ignore[call-overload]
                        f"{values}")

    if problems:
        return CheckedCandles(pl.DataFrame(schema=OHLCV_SCHEMA), tuple(problems), 0)
    still_open = (pl.col("ts_ms") <= now_ms) & (pl.col("ts_ms") + step > now_ms)
    dropped = frame.filter(still_open).height
    closed = (
        frame.filter(~still_open)
        .sort("ts_ms")
        .select(pl.col("ts_ms").cast(TS).alias("ts"), *PRICES)
        .select([pl.col(c).cast(t) for c, t in OHLCV_SCHEMA.items()])
    )
    return CheckedCandles(closed, (), dropped)
