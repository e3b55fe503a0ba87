"""Candle write and read throughput of the warehouse, beside reference paths in the same run.

Writes: ``Warehouse.replace_candles`` of one UTC day of 1m candles for N symbols (150 -> 216,000
rows), on SQLite (the embedded default: WAL, ``synchronous=NORMAL``) and on a throwaway
PostgreSQL 15 server. Three cases: a *new day* (each repetition writes a day the table does not
hold yet, as a backfill does), a *rewrite* (the same day again, as a repeated backfill or the
hourly re-materialisation of closed candles does: the writer finds every bar unchanged) and, with
no target, *every value changed* (DELETE the slice, then COPY every row). References on the same
server, same rows: ADBC ``adbc_ingest`` and psycopg binary ``COPY ... write_row`` into an
unindexed plain table (the faster is "raw COPY"), and pandas ``DataFrame.to_sql`` into a table
keyed on the natural candle key (exchange, symbol, timeframe, ts).

Reads: ``Warehouse.read_candles`` of one day beside the same SQL through a plain ADBC
``fetch_arrow_table`` + ``pl.from_arrow`` and through ``pl.read_database`` on a psycopg (or sqlite3)
connection. References run on an already open connection (the warehouse reuses pooled ones).
"""

from __future__ import annotations

import contextlib
import random
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from benchmarks.profile_write import POSTGRES_PHASES, SQLITE_PHASES, phase_lines, profile_phases
from benchmarks.report import TIMING_HEADER, Section, Target, Timing, measure, table, timing_rows
from resources.warehouse import bulk
from resources.warehouse.candles import to_bars
from resources.warehouse.store import Warehouse
from tests.support.builders import make_candles

DAY0 = datetime(2024, 3, 1, tzinfo=UTC)
MINUTES = 1440
CANDLE_COLUMNS = "exchange, symbol, timeframe, ts, open, high, low, close, volume"
COLUMN_DDL = ("exchange varchar(32) NOT NULL, symbol varchar(64) NOT NULL, timeframe varchar(8) NOT NULL, "
              "ts timestamptz NOT NULL, open float8 NOT NULL, high float8 NOT NULL, low float8 NOT NULL, "
              "close float8 NOT NULL, volume float8 NOT NULL")
RAW_TABLE_DDL = f"CREATE TABLE bench_raw_copy ({COLUMN_DDL})"
TO_SQL_TABLE_DDL = (f"CREATE TABLE bench_to_sql ({COLUMN_DDL}, "
                    "PRIMARY KEY (exchange, symbol, timeframe, ts))")
COPY_SQL = "COPY bench_raw_copy (" + CANDLE_COLUMNS + ") FROM STDIN (FORMAT BINARY)"
COPY_TYPES = ["varchar", "varchar", "varchar", "timestamptz", "float8", "float8", "float8", "float8", "float8"]
FLOOR_EXCHANGE = "floor"
FLOOR_DELETE = "DELETE FROM candle_bars WHERE series_id = ANY($1::int4[]) AND ts >= $2 AND ts < $3"
FLOOR_SERIES = ("INSERT INTO candle_series (exchange, symbol, timeframe) SELECT %s, unnest(%s::text[]), '1m' "
                "RETURNING symbol, series_id")
# The statement Warehouse.read_candles issues for one exchange, timeframe and day.
READ_SQL = (f"SELECT {CANDLE_COLUMNS} FROM candles WHERE timeframe = {{0}} AND exchange = {{1}} "
            "AND ts >= {2} AND ts < {3} ORDER BY exchange, symbol, ts")
READ_ADBC = READ_SQL.format("$1", "$2", "$3", "$4")
READ_PSYCOPG = READ_SQL.format("%s", "%s", "%s", "%s")
READ_SQLITE = READ_SQL.format("?", "?", "?", "?")

# Targets (benchmarks/README.md).
PG_VS_RAW_COPY = 0.4
PG_VS_TO_SQL = 10.0
SQLITE_WRITE_M_ROWS = 0.2
PG_READ_VS_ADBC = 0.8


@dataclass(frozen=True)
class Sizes:
    symbols: int
    write_reps: int
    to_sql_reps: int
    read_reps: int


FULL = Sizes(symbols=150, write_reps=5, to_sql_reps=2, read_reps=5)
QUICK = Sizes(symbols=20, write_reps=2, to_sql_reps=1, read_reps=2)


def symbol_names(n: int, seed: int = 7) -> list[str]:
    """``n`` spot and perpetual symbols in a shuffled (liquidity-like, not alphabetical) order."""
    names = [f"C{i // 2:03d}/USDT" + (":USDT" if i % 2 else "") for i in range(n)]
    random.Random(seed).shuffle(names)
    return names


def day_frame(day: int, symbols: list[str]) -> pl.DataFrame:
    """Day ``day`` after DAY0 of 1m candles, symbol after symbol (as ``ingest_candles`` builds it)."""
    return make_candles(MINUTES, "1m", symbols=tuple(symbols), start=DAY0 + timedelta(days=day), seed=day + 1)


class Fixture:
    """Frames for the run: one new day per write repetition (day 0 is also the rewrite day)."""

    def __init__(self, sizes: Sizes) -> None:
        self.sizes = sizes
        self.symbols = symbol_names(sizes.symbols)
        self.frames = [day_frame(day, self.symbols) for day in range(sizes.write_reps + 1)]
        self.rows = self.frames[0].height

    def write(self, warehouse: Warehouse, day: int, frame: pl.DataFrame | None = None) -> int:
        start = DAY0 + timedelta(days=day)
        return warehouse.replace_candles(self.frames[day] if frame is None else frame, exchange="sim",
                                         timeframe="1m", start=start, end=start + timedelta(days=1),
                                         symbols=self.symbols)

    def read(self, warehouse: Warehouse) -> pl.DataFrame:
        return warehouse.read_candles(timeframe="1m", exchange="sim", start=DAY0, end=DAY0 + timedelta(days=1))


def changed_day(fx: Fixture) -> pl.DataFrame:
    """Day 0 with every OHLCV value different (scaled by 1.001)."""
    return fx.frames[0].with_columns([pl.col(c) * 1.001 for c in ("open", "high", "low", "close", "volume")])


def write_timings(warehouse: Warehouse, fx: Fixture, engine: str) -> tuple[Timing, Timing, Timing]:
    """New-day writes (days 0 .. reps-1), rewrites of day 0, then day 0 with every value changed."""
    warmup = fx.frames[0].head(MINUTES).with_columns(pl.lit("warmup").alias("exchange"))
    warehouse.replace_candles(warmup, exchange="warmup", timeframe="1m", start=DAY0,
                              end=DAY0 + timedelta(days=1), symbols=fx.symbols[:1])
    reps = fx.sizes.write_reps
    new_day = measure(f"{engine} replace_candles, new day", fx.rows, lambda i: fx.write(warehouse, i), reps)
    rewrite = measure(f"{engine} replace_candles, rewrite day", fx.rows, lambda _i: fx.write(warehouse, 0), reps)
    versions = (changed_day(fx), fx.frames[0])  # alternate, so every call changes every value
    changed = measure(f"{engine} replace_candles, every value changed", fx.rows,
                      lambda i: fx.write(warehouse, 0, versions[i % 2]), reps)
    fx.write(warehouse, 0)
    return new_day, rewrite, changed


def breakdown(warehouse: Warehouse, fx: Fixture, phases: list, engine: str) -> list[str]:
    """cProfile phases of one new-day write (the spare last day) and one rewrite (day 0)."""
    spare = fx.sizes.write_reps
    lines = [f"Where a {engine} write spends its time ({fx.rows:,} rows, one call each):"]
    total, found = profile_phases(lambda: fx.write(warehouse, spare), phases)
    lines += phase_lines("new day", total, found)
    total, found = profile_phases(lambda: fx.write(warehouse, 0), phases)
    lines += phase_lines("rewrite day", total, found)
    total, found = profile_phases(lambda: fx.write(warehouse, 0, changed_day(fx)), phases)
    lines += phase_lines("rewrite day, every value changed", total, found)
    return lines


# -- SQLite ---------------------------------------------------------------------------------------
def run_sqlite(fx: Fixture, section: Section) -> None:
    home = Path(tempfile.mkdtemp(prefix="signalworks-bench-sqlite-"))
    try:
        warehouse = Warehouse.from_url(f"sqlite:///{home / 'warehouse.db'}")
        new_day, rewrite, changed = write_timings(warehouse, fx, "SQLite")
        read = measure("SQLite read_candles -> polars", fx.rows, lambda _i: fx.read(warehouse), fx.sizes.read_reps)
        read_db = _sqlite_read_database(warehouse, fx)
        section.add("Write (one UTC day of 1m candles per call):")
        section.add(*table(TIMING_HEADER, timing_rows([new_day, rewrite, changed])))
        section.add("", "Read one day into polars:")
        section.add(*table(TIMING_HEADER, timing_rows([read, read_db], read_db, "read_database")))
        section.add("", *breakdown(warehouse, fx, SQLITE_PHASES, "SQLite"))
        section.targets += [
            Target("SQLite write, new day (best)", new_day.best_rate / 1e6, SQLITE_WRITE_M_ROWS, "M rows/s"),
            Target("SQLite write, rewrite day (best)", rewrite.best_rate / 1e6, SQLITE_WRITE_M_ROWS, "M rows/s"),
        ]
        warehouse.engine.dispose()
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _sqlite_read_database(warehouse: Warehouse, fx: Fixture) -> Timing:
    params = ["1m", "sim", int(DAY0.timestamp() * 1000), int((DAY0 + timedelta(days=1)).timestamp() * 1000)]
    with warehouse.engine.connect() as connection:
        raw = connection.connection.driver_connection

        def run(_i: int) -> pl.DataFrame:
            frame = pl.read_database(READ_SQLITE, raw, execute_options={"parameters": params})
            return frame.with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")))

        frame = run(0)
        if frame.height != fx.rows:
            raise RuntimeError(f"pl.read_database returned {frame.height} rows, expected {fx.rows}")
        return measure("pl.read_database(sqlite3)", fx.rows, run, fx.sizes.read_reps)


# -- PostgreSQL -----------------------------------------------------------------------------------
def run_postgres(fx: Fixture, section: Section) -> None:
    from tests.support.postgres import PostgresUnavailableError, throwaway_postgres

    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(throwaway_postgres("signalworks_bench"))
        except PostgresUnavailableError as error:
            section.add(f"PostgreSQL skipped: {error}")
            section.targets += [Target(name, None, t) for name, t in (
                ("PostgreSQL write vs raw COPY", PG_VS_RAW_COPY), ("PostgreSQL write vs to_sql", PG_VS_TO_SQL),
                ("PostgreSQL read vs ADBC", PG_READ_VS_ADBC))]
            return
        _run_postgres(url, fx, section)


def _run_postgres(url: str, fx: Fixture, section: Section) -> None:
    import adbc_driver_postgresql.dbapi as adbc
    import psycopg
    from sqlalchemy import create_engine

    libpq = url.replace("postgresql+psycopg://", "postgresql://")
    warehouse = Warehouse.from_url(url)
    with psycopg.connect(libpq, autocommit=True) as admin:
        version = admin.execute("SHOW server_version").fetchone()
        admin.execute(RAW_TABLE_DDL)
        admin.execute(TO_SQL_TABLE_DDL)
    section.add(f"PostgreSQL {version[0] if version else '?'} on loopback (throwaway server: fsync=off, "
                "synchronous_commit=off, shared_buffers=256MB)", "")
    reps = fx.sizes.write_reps

    new_day, rewrite, changed = write_timings(warehouse, fx, "PostgreSQL")
    with contextlib.closing(adbc.connect(libpq)) as connection, psycopg.connect(libpq) as conn:
        truncate = _truncator(conn)
        adbc_raw = measure("raw COPY: ADBC adbc_ingest, no index", fx.rows,
                           lambda i: _adbc_ingest(connection, fx.frames[i]), reps, setup=truncate)
        psycopg_raw = measure("raw COPY: psycopg binary write_row, no index", fx.rows,
                              lambda i: _psycopg_copy(conn, fx.frames[i]), reps, setup=truncate)
        series = _floor_series(conn, fx.symbols)
        floors = [to_bars(f, series) for f in fx.frames[:reps]]
        floor = measure("floor: DELETE + COPY into candle_bars, open conn", fx.rows,
                        lambda i: _floor_write(connection, floors[i], list(series.values()), i), reps)
        engine = create_engine(url)
        pandas_frames = [f.to_pandas() for f in fx.frames[: fx.sizes.to_sql_reps]]
        to_sql = measure("pandas to_sql (chunksize 10,000), PK", fx.rows,
                         lambda i: pandas_frames[i].to_sql("bench_to_sql", engine, if_exists="append",
                                                           index=False, chunksize=10_000),
                         fx.sizes.to_sql_reps, setup=_truncator(conn, "bench_to_sql"))
        engine.dispose()
        truncate(0)
        raw = max(adbc_raw, psycopg_raw, key=lambda t: t.best_rate)

        read = measure("PostgreSQL read_candles -> polars", fx.rows, lambda _i: fx.read(warehouse),
                       fx.sizes.read_reps)
        adbc_read = measure("ADBC fetch_arrow_table + pl.from_arrow", fx.rows,
                            lambda _i: _adbc_read(connection), fx.sizes.read_reps)
        psycopg_read = measure("pl.read_database(psycopg)", fx.rows,
                               lambda _i: _psycopg_read(conn), fx.sizes.read_reps)
        same = fx.read(warehouse).equals(_adbc_read(connection))

    section.add("Write (one UTC day of 1m candles per call; raw COPY rows = the faster of the two):")
    section.add(*table(TIMING_HEADER, timing_rows([new_day, rewrite, changed, floor, adbc_raw, psycopg_raw], raw,
                                                  "raw COPY")))
    section.add("  rewrite day = the same rows again: replace_candles reads the slice, finds every bar unchanged",
                "  and writes nothing. every value changed = DELETE the slice + COPY every row (no target).",
                "  floor = DELETE + COPY of pre-built storage rows (series_id, ts, OHLCV) into the partitioned,",
                "  primary-keyed candle_bars on an open connection (new days, exchange 'floor'; same batched",
                "  adbc_ingest as replace_candles): writing every row of a day with this schema and no",
                "  client-side work at all.")
    section.add("", "  vs pandas to_sql:")
    section.add(*table(TIMING_HEADER, timing_rows([new_day, rewrite, changed, to_sql], to_sql, "to_sql")))
    section.add("", "Read one day into polars (same SQL, ORDER BY exchange, symbol, ts):")
    section.add(*table(TIMING_HEADER, timing_rows([read, adbc_read, psycopg_read], adbc_read, "ADBC")))
    section.add(f"  read_candles and the ADBC reference return identical frames: {'yes' if same else 'NO'}")
    section.add("", *breakdown(warehouse, fx, POSTGRES_PHASES, "PostgreSQL"))
    section.targets += [
        Target("PostgreSQL write, new day vs raw COPY", new_day.best_rate / raw.best_rate, PG_VS_RAW_COPY),
        Target("PostgreSQL write, rewrite day vs raw COPY", rewrite.best_rate / raw.best_rate, PG_VS_RAW_COPY),
        Target("PostgreSQL write, new day vs to_sql", new_day.best_rate / to_sql.best_rate, PG_VS_TO_SQL),
        Target("PostgreSQL write, rewrite day vs to_sql", rewrite.best_rate / to_sql.best_rate, PG_VS_TO_SQL),
        Target("PostgreSQL read vs ADBC", read.best_rate / adbc_read.best_rate, PG_READ_VS_ADBC),
    ]
    warehouse.engine.dispose()


def _truncator(conn: Any, table_name: str = "bench_raw_copy") -> Any:
    from psycopg import sql

    def truncate(_i: int) -> None:
        conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(table_name)))
        conn.commit()

    return truncate


def _adbc_ingest(connection: Any, frame: pl.DataFrame) -> None:
    with connection.cursor() as cursor:
        cursor.adbc_ingest("bench_raw_copy", frame.to_arrow(), mode="append")
    connection.commit()


def _floor_series(conn: Any, symbols: list[str]) -> dict[str, int]:
    """Series ids of the 'floor' exchange (created here, so the floor pays no lookup)."""
    rows = conn.execute(FLOOR_SERIES, [FLOOR_EXCHANGE, symbols]).fetchall()
    conn.commit()
    return dict(rows)


def _floor_write(connection: Any, bars: pl.DataFrame, series_ids: list[int], day: int) -> None:
    start = DAY0 + timedelta(days=day)
    with connection.cursor() as cursor:
        cursor.execute(FLOOR_DELETE, [series_ids, start, start + timedelta(days=1)])
        bulk.ingest(cursor, "candle_bars", bars)
    connection.commit()


def _psycopg_copy(conn: Any, frame: pl.DataFrame) -> None:
    with conn.cursor() as cursor, cursor.copy(COPY_SQL) as copy:
        copy.set_types(COPY_TYPES)
        for row in frame.iter_rows():
            copy.write_row(row)
    conn.commit()


def _read_params() -> list[Any]:
    return ["1m", "sim", DAY0, DAY0 + timedelta(days=1)]


def _adbc_read(connection: Any) -> pl.DataFrame:
    with connection.cursor() as cursor:
        cursor.execute(READ_ADBC, _read_params())
        arrow = cursor.fetch_arrow_table()
    connection.commit()
    frame = pl.from_arrow(arrow)
    assert isinstance(frame, pl.DataFrame)
    return frame.with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")))


def _psycopg_read(conn: Any) -> pl.DataFrame:
    frame = pl.read_database(READ_PSYCOPG, conn, execute_options={"params": _read_params()})
    conn.commit()
    return frame


def run(quick: bool = False) -> list[Section]:
    """Both engines; one section each."""
    fx = Fixture(QUICK if quick else FULL)
    size = f"{fx.sizes.symbols} symbols x {MINUTES} minutes = {fx.rows:,} rows per call"
    sqlite = Section(f"Warehouse I/O on SQLite ({size})")
    run_sqlite(fx, sqlite)
    postgres = Section(f"Warehouse I/O on PostgreSQL ({size})")
    run_postgres(fx, postgres)
    return [sqlite, postgres]
