"""``ingest_candles`` without Dagster: the simulator (with injected failures) and a real SQLite warehouse."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from assets.ingest import ingest_candles, market_types_of
from resources.exchanges.sim import SimExchange
from resources.warehouse.store import Warehouse

NOW = datetime(2024, 3, 12, 9, 30, tzinfo=UTC)
DAYS = ["2024-03-09", "2024-03-10", "2024-03-11"]


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse.from_url(f"sqlite:///{tmp_path / 'warehouse.db'}")


@pytest.fixture
def symbols() -> list[str]:
    spot = SimExchange(clock=lambda: NOW).load_markets().filter(pl.col("market_type") == "spot")
    return sorted(spot.get_column("symbol").to_list())[:6]


def test_consecutive_transient_failures_declare_the_exchange_unreachable(
    warehouse: Warehouse, symbols: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    failing = symbols[2:5]  # three in a row on the first day
    client = SimExchange(clock=lambda: NOW, failing_symbols=failing)
    log = logging.getLogger("test.ingest")
    with caplog.at_level(logging.INFO, logger="test.ingest"):
        report = ingest_candles(client, warehouse, timeframe="1h", days=DAYS, symbols=symbols, log=log,
                                unreachable_after=3)
    assert report.unreachable is not None
    assert str(report.unreachable).startswith(
        "sim: unreachable since 2024-03-12T09:30:00+00:00 (3 symbol-days in a row failed for a transient reason)")
    first = report.days[0]
    assert (first.fetched, sorted(first.failures), first.not_attempted) == (
        symbols[:2], failing, {symbols[5]: "sim unreachable"})
    assert report.days[1].why_missing() == "6 not attempted: sim unreachable"
    assert [day.stored for day in report.days] == [True, False, False]
    assert (report.symbol_days, report.fetched, report.failed, report.not_attempted) == (18, 2, 3, 13)
    stored = warehouse.read_candles(timeframe="1h", exchange="sim")
    assert sorted(stored.get_column("symbol").unique().to_list()) == symbols[:2]
    assert first.rows == stored.height == 2 * 24
    messages = [r.getMessage() for r in caplog.records]
    assert sum("failed: sim: simulated transient failure" in m for m in messages) == 3
    assert report.summary() in messages
    assert any(m.startswith("sim: unreachable since") for m in messages)


def test_a_success_resets_the_count(warehouse: Warehouse, symbols: list[str]) -> None:
    failing = [symbols[1], symbols[2], symbols[4], symbols[5]]  # never three in a row within a day...
    client = SimExchange(clock=lambda: NOW, failing_symbols=failing)
    report = ingest_candles(client, warehouse, timeframe="1h", days=DAYS, symbols=symbols, unreachable_after=3)
    # ...but day 1 ends with two and day 2 starts with a success: the count never reaches three
    assert report.unreachable is None
    assert (report.fetched, report.failed, report.not_attempted) == (6, 12, 0)
    assert all(day.stored for day in report.days)


def test_permanent_errors_are_answers_not_outages(warehouse: Warehouse, symbols: list[str]) -> None:
    client = SimExchange(clock=lambda: NOW, failing_symbols=symbols, failure="permanent")
    report = ingest_candles(client, warehouse, timeframe="1h", days=DAYS, symbols=symbols, unreachable_after=2)
    assert report.unreachable is None
    # each symbol is asked once, then skipped for the remaining days
    assert (report.failed, report.not_attempted) == (6, 12)
    assert [day.why_missing() for day in report.days] == ["every symbol failed"] + [
        "6 not attempted: failed permanently on an earlier day"] * 2


def test_a_day_that_has_not_started_is_not_stored(warehouse: Warehouse, symbols: list[str]) -> None:
    client = SimExchange(clock=lambda: NOW)
    report = ingest_candles(client, warehouse, timeframe="1h", days=["2024-03-12", "2024-03-13"],
                            symbols=symbols[:2])
    today, tomorrow = report.days
    assert today.stored and today.rows == 2 * 9  # 00:00 .. 08:00 have closed at 09:30
    assert not tomorrow.stored and tomorrow.why_missing() == "2 not attempted: the day has not started"


@pytest.mark.parametrize(("symbols", "types"), [
    (["BTC/USDT", "ETH/USDT"], ("spot",)),
    (["BTC/USDT:USDT"], ("swap",)),
    (["ETH/USDT", "BTC/USDT:USDT"], ("spot", "swap")),
    ([], ()),
])
def test_market_types_of(symbols: list[str], types: tuple[str, ...]) -> None:
    assert market_types_of(symbols) == types
