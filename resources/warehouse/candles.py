"""Candle storage: integer series keys in ``candle_bars``, the natural key in the ``candles`` view.

``candle_series`` maps (exchange, symbol, timeframe) to a ``series_id``; ``candle_bars`` holds
(series_id, ts, open, high, low, close, volume) keyed on (series_id, ts). A write replaces one
slice (exchange x timeframe x symbols x ``[start, end)``) in ONE transaction and writes only what
changed: it reads the slice's stored bars first, then

* inserts only the new keys when every stored bar is still in the frame with the same values
  (a new day, the hourly re-materialisation that appends the last hour, a repeated backfill);
* otherwise deletes the whole slice and inserts the whole frame, as a plain replace would. One
  series is compared first, so a slice whose first series changed skips reading the rest.

Either way the slice ends up holding exactly the frame, and a crash before the commit leaves
the previous slice intact.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import polars as pl
from sqlalchemy import Engine

from ml.marketdata.frames import TS
from resources.warehouse import bulk

BAR_KEY = ("series_id", "ts")
BAR_VALUES = ("open", "high", "low", "close", "volume")
BAR_SCHEMA: dict[str, pl.DataType] = {
    "series_id": pl.Int32(), "ts": TS, **{name: pl.Float64() for name in BAR_VALUES}}
_BAR_COLUMNS = ", ".join(BAR_SCHEMA)
_SERIES_LOCK = 7_236_113  # advisory-lock namespace: one lock per (exchange, timeframe)


@dataclass(frozen=True)
class CandleSlice:
    """The candles one write replaces."""

    exchange: str
    timeframe: str
    symbols: tuple[str, ...]
    start: datetime
    end: datetime


@dataclass(frozen=True)
class WritePlan:
    """What a slice write does: optionally delete the slice, then insert ``insert``."""

    delete_slice: bool
    insert: pl.DataFrame


class BarSession(Protocol):
    """The storage primitives of one engine, inside one open write transaction."""

    def lock(self, exchange: str, timeframe: str) -> None: ...
    def series_ids(self, exchange: str, timeframe: str, symbols: Sequence[str],
                   create: Sequence[str]) -> dict[str, int]: ...
    def read_bars(self, ids: Sequence[int], start: datetime, end: datetime) -> pl.DataFrame: ...
    def delete_bars(self, ids: Sequence[int], start: datetime, end: datetime) -> None: ...
    def insert_bars(self, bars: pl.DataFrame) -> None: ...


def sorted_last_wins(frame: pl.DataFrame, key: Sequence[str]) -> pl.DataFrame:
    """``frame`` sorted by ``key`` with one row per key, the last occurrence winning.

    A stable sort keeps duplicates in arrival order, so dropping every row whose successor has
    the same key keeps the last one; about 10x cheaper than ``unique(keep="last")`` followed by a
    sort of the hash-shuffled result.
    """
    ordered = frame.sort(list(key), maintain_order=True)
    if ordered.height < 2:
        return ordered
    same_as_next = pl.all_horizontal([pl.col(c) == pl.col(c).shift(-1) for c in key]).fill_null(False)
    return ordered.filter(~same_as_next)


def to_bars(frame: pl.DataFrame, series_ids: dict[str, int]) -> pl.DataFrame:
    """Candles of one exchange and timeframe as storage rows: sorted by key, last duplicate wins."""
    bars = frame.select(
        pl.col("symbol").replace_strict(series_ids, return_dtype=pl.Int32()).alias("series_id"),
        pl.col("ts").cast(TS), *(pl.col(name).cast(pl.Float64()) for name in BAR_VALUES))
    return sorted_last_wins(bars, BAR_KEY)


def plan_write(stored: pl.DataFrame, bars: pl.DataFrame) -> WritePlan:
    """Compare the slice's ``stored`` bars with the new ``bars`` (both sorted by key)."""
    if stored.is_empty():
        return WritePlan(delete_slice=False, insert=bars)
    if stored.height == bars.height and stored.equals(bars):
        return WritePlan(delete_slice=False, insert=bars.clear())
    matched = stored.join(bars, on=BAR_KEY, how="left", suffix="_new", maintain_order="left")
    changed = pl.any_horizontal(
        [pl.col(f"{name}_new").is_null() | (pl.col(name) != pl.col(f"{name}_new")) for name in BAR_VALUES])
    if matched.select(changed.any()).item():
        return WritePlan(delete_slice=True, insert=bars)
    return WritePlan(delete_slice=False, insert=bars.join(stored.select(BAR_KEY), on=BAR_KEY, how="anti",
                                                          maintain_order="left"))


def replace_slice(session: BarSession, frame: pl.DataFrame, where: CandleSlice) -> int:
    """Make the slice ``where`` hold exactly ``frame``; returns the number of distinct candles."""
    session.lock(where.exchange, where.timeframe)
    present = frame.get_column("symbol").unique().sort().to_list()
    ids = session.series_ids(where.exchange, where.timeframe, where.symbols, create=present)
    bars = to_bars(frame, ids)
    slice_ids = sorted(ids.values())
    if not slice_ids:  # no series of the slice was ever written, and there is nothing to write
        return 0
    plan = _probe(session, bars, slice_ids, where) or plan_write(
        session.read_bars(slice_ids, where.start, where.end), bars)
    if plan.delete_slice:
        session.delete_bars(slice_ids, where.start, where.end)
    if plan.insert.height:
        session.insert_bars(plan.insert)
    return bars.height


def _probe(session: BarSession, bars: pl.DataFrame, slice_ids: list[int], where: CandleSlice) -> WritePlan | None:
    """Compare one series first: if it changed, the slice is rewritten without reading the rest."""
    probe = int(bars.item(0, "series_id")) if bars.height else slice_ids[0]
    plan = plan_write(session.read_bars([probe], where.start, where.end),
                      bars.filter(pl.col("series_id") == probe))
    return WritePlan(delete_slice=True, insert=bars) if plan.delete_slice else None


@contextlib.contextmanager
def bar_session(engine: Engine, span: tuple[datetime, datetime] | None = None) -> Iterator[BarSession]:
    """A :class:`BarSession` in a write transaction, committed when the block exits cleanly.

    ``span``: the first and last open time the session will insert; on PostgreSQL their monthly
    partitions are created first, in a transaction of their own (never inside the write).
    """
    if bulk.is_postgres(engine):
        if span is not None:
            bulk.ensure_month_partitions(engine, "candle_bars", *span)
        with bulk.adbc_connection(engine) as connection, connection.cursor() as cursor:
            yield PostgresBars(cursor)
            connection.commit()
    else:
        with engine.begin() as connection:  # BEGIN IMMEDIATE (engine.py)
            yield SqliteBars(connection.connection.driver_connection)


class PostgresBars:
    """Storage primitives over one ADBC cursor (binary COPY in, Arrow out)."""

    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor

    def lock(self, exchange: str, timeframe: str) -> None:
        """Serialise writers of the same exchange and timeframe until the commit."""
        self.cursor.execute("SELECT pg_advisory_xact_lock($1::int4, hashtext($2::text))",
                            [_SERIES_LOCK, f"{exchange}|{timeframe}"])
        self.cursor.fetchall()

    def series_ids(self, exchange: str, timeframe: str, symbols: Sequence[str],
                   create: Sequence[str]) -> dict[str, int]:
        ids = self._lookup(exchange, timeframe, sorted({*symbols, *create}))
        missing = [s for s in create if s not in ids]
        if missing:
            self.cursor.execute(
                "INSERT INTO candle_series (exchange, symbol, timeframe) SELECT $1::text, unnest($3::text[]), "
                "$2::text ON CONFLICT DO NOTHING", [exchange, timeframe, missing])
            ids.update(self._lookup(exchange, timeframe, missing))
        return ids

    def _lookup(self, exchange: str, timeframe: str, symbols: Sequence[str]) -> dict[str, int]:
        self.cursor.execute("SELECT symbol, series_id FROM candle_series WHERE exchange = $1::text "
                            "AND timeframe = $2::text AND symbol = ANY($3::text[])",
                            [exchange, timeframe, list(symbols)])
        return dict(self.cursor.fetchall())

    def read_bars(self, ids: Sequence[int], start: datetime, end: datetime) -> pl.DataFrame:
        self.cursor.execute(f"SELECT {_BAR_COLUMNS} FROM candle_bars WHERE series_id = ANY($1::int4[]) "
                            "AND ts >= $2 AND ts < $3 ORDER BY series_id, ts", [list(ids), start, end])
        frame = bulk.arrow_to_polars(self.cursor.fetch_arrow_table(), BAR_SCHEMA)
        return frame if frame.columns else pl.DataFrame(schema=BAR_SCHEMA)

    def delete_bars(self, ids: Sequence[int], start: datetime, end: datetime) -> None:
        self.cursor.execute("DELETE FROM candle_bars WHERE series_id = ANY($1::int4[]) AND ts >= $2 AND ts < $3",
                            [list(ids), start, end])

    def insert_bars(self, bars: pl.DataFrame) -> None:
        bulk.ingest(self.cursor, "candle_bars", bars)  # partitions: bar_session's span


class SqliteBars:
    """Storage primitives over one sqlite3 connection that already holds the write lock."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def lock(self, exchange: str, timeframe: str) -> None:
        """Nothing to do: the transaction began with BEGIN IMMEDIATE, which took the write lock."""

    def series_ids(self, exchange: str, timeframe: str, symbols: Sequence[str],
                   create: Sequence[str]) -> dict[str, int]:
        ids = self._lookup(exchange, timeframe, sorted({*symbols, *create}))
        missing = [s for s in create if s not in ids]
        if missing:
            self.connection.executemany(
                "INSERT INTO candle_series (exchange, symbol, timeframe) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                [(exchange, symbol, timeframe) for symbol in missing])
            ids.update(self._lookup(exchange, timeframe, missing))
        return ids

    def _lookup(self, exchange: str, timeframe: str, symbols: Sequence[str]) -> dict[str, int]:
        marks = ", ".join("?" for _ in symbols)
        rows = self.connection.execute(
            f"SELECT symbol, series_id FROM candle_series WHERE exchange = ? AND timeframe = ? "
            f"AND symbol IN ({marks})", [exchange, timeframe, *symbols]).fetchall()
        return dict(rows)

    def read_bars(self, ids: Sequence[int], start: datetime, end: datetime) -> pl.DataFrame:
        sql = (f"SELECT {_BAR_COLUMNS} FROM candle_bars WHERE series_id IN ({', '.join('?' for _ in ids)}) "
               "AND ts >= ? AND ts < ? ORDER BY series_id, ts")
        return bulk.sqlite_read(self.connection, sql, [*ids, _ms(start), _ms(end)], BAR_SCHEMA)

    def delete_bars(self, ids: Sequence[int], start: datetime, end: datetime) -> None:
        self.connection.execute(
            f"DELETE FROM candle_bars WHERE series_id IN ({', '.join('?' for _ in ids)}) AND ts >= ? AND ts < ?",
            [*ids, _ms(start), _ms(end)])

    def insert_bars(self, bars: pl.DataFrame) -> None:
        bulk.sqlite_insert(self.connection, "candle_bars", bars)


def _ms(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)
