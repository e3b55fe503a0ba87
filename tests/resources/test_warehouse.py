"""The warehouse on SQLite and on a real PostgreSQL 15: idempotent slices, crash safety,
concurrent writers, columnar reads."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from sqlalchemy import inspect, text

from ml.marketdata.frames import TS
from ml.marketdata.timeframes import day_bounds
from resources.warehouse.engine import make_engine
from resources.warehouse.store import Warehouse
from tests.support.builders import make_candles

DAY = "2024-01-31"
START, END = day_bounds(DAY)


def _write(warehouse: Warehouse, frame: pl.DataFrame, start: datetime = START, end: datetime = END) -> int:
    return warehouse.replace_candles(frame, exchange="sim", timeframe="1m", start=start, end=end,
                                     symbols=frame.get_column("symbol").unique().to_list())


def test_migrations_create_every_table(warehouse: Warehouse) -> None:
    inspector = inspect(warehouse.engine)
    tables = set(inspector.get_table_names())
    assert {"candle_series", "candle_bars", "markets", "market_declarations", "coingecko_markets",
            "derivatives"} <= tables
    assert "candles" in inspector.get_view_names()


def test_rewriting_a_partition_leaves_identical_data(warehouse: Warehouse) -> None:
    frame = make_candles(1440, "1m", symbols=("BTC/USDT", "ETH/USDT"), start=START)
    assert _write(warehouse, frame) == 2880
    first = warehouse.read_candles(timeframe="1m", exchange="sim")
    _write(warehouse, frame)
    second = warehouse.read_candles(timeframe="1m", exchange="sim")
    assert first.equals(second)
    assert second.equals(frame.sort(["exchange", "symbol", "ts"]))
    assert second.schema["ts"] == pl.Datetime("ms", "UTC")


def test_replace_touches_only_its_slice(warehouse: Warehouse) -> None:
    """Other days, other timeframes and symbols not listed keep their rows."""
    day_before = make_candles(1440, "1m", symbols=("BTC/USDT",), start=START - timedelta(days=1), seed=1)
    today = make_candles(1440, "1m", symbols=("BTC/USDT", "ETH/USDT"), start=START, seed=2)
    _write(warehouse, day_before, START - timedelta(days=1), START)
    _write(warehouse, today)
    replacement = make_candles(600, "1m", symbols=("BTC/USDT",), start=START, seed=3)
    warehouse.replace_candles(replacement, exchange="sim", timeframe="1m", start=START, end=END,
                              symbols=["BTC/USDT"])
    stored = warehouse.read_candles(timeframe="1m", exchange="sim")
    assert stored.filter(pl.col("ts") < START).equals(day_before)
    assert stored.filter(pl.col("symbol") == "ETH/USDT").equals(today.filter(pl.col("symbol") == "ETH/USDT"))
    assert stored.filter((pl.col("symbol") == "BTC/USDT") & (pl.col("ts") >= START)).equals(replacement)


def test_rows_outside_the_slice_are_refused(warehouse: Warehouse) -> None:
    frame = make_candles(1500, "1m", start=START)  # runs past the end of the day
    with pytest.raises(ValueError, match="outside"):
        _write(warehouse, frame)
    assert warehouse.read_candles(timeframe="1m").is_empty()


def test_read_filters(warehouse: Warehouse) -> None:
    frame = make_candles(48, "1h", symbols=("A/USDT", "B/USDT", "C/USDT"), start=START - timedelta(days=1))
    warehouse.replace_candles(frame, exchange="sim", timeframe="1h", start=START - timedelta(days=1),
                              end=END, symbols=["A/USDT", "B/USDT", "C/USDT"])
    window = warehouse.read_candles(timeframe="1h", exchange="sim", symbols=["B/USDT"], start=START, end=END)
    assert window.height == 24
    assert window.get_column("symbol").unique().to_list() == ["B/USDT"]
    assert window.get_column("ts").min() == START
    assert warehouse.read_candles(timeframe="1m").is_empty()
    assert warehouse.latest_candle_ts(exchange="sim", timeframe="1h") == END - timedelta(hours=1)
    assert warehouse.latest_candle_ts(exchange="nope", timeframe="1h") is None


def test_postgres_partitions_by_month(postgres_url: str) -> None:
    warehouse = Warehouse(make_engine(postgres_url))
    start = datetime(2024, 2, 28, tzinfo=UTC)
    frame = make_candles(24 * 3, "1h", start=start)  # 28 Feb .. 1 Mar (leap year)
    warehouse.replace_candles(frame, exchange="sim", timeframe="1h", start=start,
                              end=start + timedelta(days=3), symbols=["BTC/USDT"])
    with warehouse.engine.connect() as connection:
        children = connection.execute(text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'candle_bars' ORDER BY 1")).scalars().all()
        counts = connection.execute(text(
            "SELECT tableoid::regclass::text, count(*) FROM candle_bars GROUP BY 1 ORDER BY 1")).all()
    assert children == ["candle_bars_2024_02", "candle_bars_2024_03"]
    assert counts == [("candle_bars_2024_02", 48), ("candle_bars_2024_03", 24)]


def _child(url: str, exchange: str, n_symbols: int, day: str, seed: int, repeat: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.writer_child", url, exchange, str(n_symbols), day,
         str(seed), str(repeat)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )


def _writer_transaction_open(url: str) -> bool:
    if url.startswith("sqlite"):
        connection = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=0, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError as error:
            return "locked" in str(error)
        finally:
            connection.close()
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() "
            "AND (query ILIKE 'COPY%' OR query ILIKE 'DELETE%')").fetchone()
        return bool(row and row[0])


@pytest.mark.parametrize("target", ["the same day (delete + insert)", "a new day (insert only)"])
def test_writer_killed_mid_transaction_leaves_the_old_slice(warehouse_url: str, target: str) -> None:
    warehouse = Warehouse(make_engine(warehouse_url))
    n_symbols = 600  # ~0.9 M rows: the child's write takes long enough to be caught mid-way
    symbols = tuple(f"S{i:04d}/USDT" for i in range(n_symbols))
    old = make_candles(1440, "1m", symbols=symbols, exchange="sim", start=START, seed=7)
    _write(warehouse, old)
    day = DAY if target.startswith("the same") else "2024-02-01"
    child = _child(warehouse_url, "sim", n_symbols, day, seed=8, repeat=1)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "starting"
    deadline = time.monotonic() + 60
    while not _writer_transaction_open(warehouse_url):
        assert child.poll() is None, f"writer finished before it could be killed: {child.stderr.read() if child.stderr else ''}"
        assert time.monotonic() < deadline, "the writer never opened its transaction"
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert "done" not in (child.stdout.read() or "")
    survivor = Warehouse(make_engine(warehouse_url)).read_candles(timeframe="1m", exchange="sim")
    assert survivor.equals(old.sort(["exchange", "symbol", "ts"]))


def test_two_processes_writing_different_partitions_lose_nothing(warehouse_url: str) -> None:
    make_engine(warehouse_url)  # migrate once up front, as the code location does
    writers = [_child(warehouse_url, exchange, 40, day, seed, 4)
               for exchange, day, seed in (("sim", "2024-01-30", 1), ("sim_b", "2024-01-31", 2))]
    for writer in writers:
        _, err = writer.communicate(timeout=180)
        assert writer.returncode == 0, err
    warehouse = Warehouse(make_engine(warehouse_url))
    for exchange, day, seed in (("sim", "2024-01-30", 1), ("sim_b", "2024-01-31", 2)):
        start, _ = day_bounds(day)
        expected = make_candles(1440, "1m", symbols=tuple(f"S{i:04d}/USDT" for i in range(40)),
                                exchange=exchange, start=start, seed=seed)
        assert warehouse.read_candles(timeframe="1m", exchange=exchange).equals(
            expected.sort(["exchange", "symbol", "ts"]))


def test_other_tables_round_trip(warehouse: Warehouse) -> None:
    now = datetime(2024, 5, 1, 12, tzinfo=UTC)
    markets = pl.DataFrame({
        "exchange": ["sim", "sim"], "symbol": ["BTC/USDT", "BTC/USDT:USDT"], "base": ["BTC", "BTC"],
        "quote": ["USDT", "USDT"], "settle": [None, "USDT"], "market_type": ["spot", "swap"],
        "is_spot": [True, False], "contract": [False, True], "active": [True, True],
        "quote_volume_24h": [1e9, None], "liquidity_rank": [1, 2], "updated_at": [now, now],
    }).with_columns(pl.col("updated_at").cast(TS))
    warehouse.replace_markets(markets, exchange="sim")
    warehouse.replace_markets(markets, exchange="sim")
    assert warehouse.read_markets("sim").equals(markets)
    derivatives = pl.DataFrame({
        "exchange": ["sim"], "symbol": ["BTC/USDT:USDT"], "ts": [now], "funding_rate": [0.0001],
        "next_funding_ts": [now + timedelta(hours=4)], "mark_price": [65000.0],
        "open_interest": [1234.5], "open_interest_value": [8.0e7],
    }).with_columns(pl.col("ts").cast(TS), pl.col("next_funding_ts").cast(TS))
    warehouse.replace_derivatives(derivatives, exchange="sim", ts=now)
    warehouse.replace_derivatives(derivatives, exchange="sim", ts=now)
    assert warehouse.read_derivatives("sim").equals(derivatives)


def test_migrations_match_the_schema(warehouse: Warehouse) -> None:
    """The Alembic history builds exactly the tables SQLAlchemy Core describes."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from resources.warehouse.migrate import VERSION_TABLE
    from resources.warehouse.schema import metadata

    with warehouse.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        diffs = compare_metadata(context, metadata)
    partitions = {f"{table}_{y}_{m:02d}" for table in ("candle_bars", "indicators")
                  for y in range(2000, 2100) for m in range(1, 13)}
    relevant = [d for d in diffs if not (d[0] == "remove_table" and d[1].name in partitions)]
    assert relevant == []


def test_sorted_last_wins_matches_unique_keep_last() -> None:
    from resources.warehouse.store import sorted_last_wins

    frame = make_candles(50, "1m", symbols=("A/USDT", "B/USDT"), start=START)
    shuffled = pl.concat([frame.sample(fraction=1.0, shuffle=True, seed=3),
                          frame.head(7).with_columns(pl.col("close") * 2)])
    expected = shuffled.unique(subset=["exchange", "symbol", "timeframe", "ts"], keep="last").sort(
        ["exchange", "symbol", "timeframe", "ts"])
    assert sorted_last_wins(shuffled, ("exchange", "symbol", "timeframe", "ts")).equals(expected)
