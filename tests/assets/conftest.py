"""Definitions on the embedded default (simulated exchanges, SQLite) with a frozen clock."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from dagster import DagsterInstance, Definitions

from orchestration.definitions import build_definitions, build_resources
from orchestration.settings import Settings
from resources.coingecko_resource import SimCoinGeckoResource
from resources.exchanges.resource import ExchangeResource
from resources.warehouse.store import Warehouse

#: Mid-morning, so today's partition is partly filled and yesterday's is complete.
NOW = datetime(2024, 3, 12, 9, 30, tzinfo=UTC)


def sim_definitions(home: Path, *, exchanges: tuple[str, ...] = ("sim",), now: datetime = NOW,
                    failing: list[str] | None = None, database_url: str | None = None,
                    candles_1m_symbols: int = 12) -> tuple[Definitions, Settings]:
    settings = Settings(home=home, database_url=database_url, exchanges=exchanges,
                        start_date=date(2024, 1, 1), candles_1m_symbols=candles_1m_symbols)
    return build_definitions(settings, sim_resources(settings, now=now, failing=failing)), settings


def sim_resources(settings: Settings, *, now: datetime = NOW, failing: list[str] | None = None) -> dict[str, object]:
    """Every resource of ``settings``, with the simulated clock frozen at ``now``."""
    return {
        **build_resources(settings),
        "exchanges": ExchangeResource(exchanges=list(settings.exchanges), frozen_clock=now.isoformat(),
                                      sim_failing_symbols=failing or []),
        "coingecko": SimCoinGeckoResource(frozen_clock=now.isoformat()),
    }


@pytest.fixture
def instance() -> DagsterInstance:
    with DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral


@pytest.fixture
def sim_defs(tmp_path: Path) -> tuple[Definitions, Warehouse]:
    defs, settings = sim_definitions(tmp_path)
    return defs, Warehouse.from_url(settings.warehouse_url)
