"""Shared fixtures: a throwaway PostgreSQL server and warehouses on both engines."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

from resources.warehouse.engine import make_engine
from resources.warehouse.store import Warehouse
from tests.support.fixtures import skip_unless_ci
from tests.support.postgres import PostgresUnavailableError, throwaway_postgres


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the Definitions test module first: nothing else matters if the code location breaks."""
    items.sort(key=lambda item: 0 if "test_definitions.py" in item.nodeid else 1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """URL of a PostgreSQL 15 server for the whole session (skips locally, fails under CI)."""
    try:
        with throwaway_postgres() as url:
            yield url
    except PostgresUnavailableError as error:
        skip_unless_ci(str(error))


_database_counter = 0


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty database on the session's server."""
    import psycopg

    global _database_counter
    _database_counter += 1
    name = f"t{os.getpid()}_{_database_counter}"
    admin = postgres_server.replace("postgresql+psycopg", "postgresql").rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return postgres_server.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'warehouse.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty warehouse, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'warehouse.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def warehouse(warehouse_url: str) -> Warehouse:
    return Warehouse(make_engine(warehouse_url))
