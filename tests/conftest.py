"""Shared fixtures: a throwaway PostgreSQL server and warehouses on both engines."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

from resources.warehouse.engine import make_engine
from resources.warehouse.store import Warehouse
from tests.support.fixtures import skip_unless_ci
from tests.support.postgres import PostgresUnavailableError, throwaway_postgres

#: Free space a tmpfs needs to hold the suite's temporary files (two PostgreSQL servers' data and
#: shared memory, the warehouses and Dagster homes of a run: about 1 GB at the peak).
MIN_FREE_TMPFS_BYTES = 4 * 2**30


def _temporary_files_in_memory(shm: Path = Path("/dev/shm")) -> None:
    """Put tmp_path, tempfile's folders and those of every process the tests start on tmpfs when
    the machine has one and TMPDIR is not set. The suite's SQLite warehouses and Dagster homes
    commit and checkpoint thousands of times; on a disk each fsync costs milliseconds (the social
    replay ran 2.5x slower), on tmpfs nothing. No test relies on data surviving a power cut: the
    crash tests kill processes, which tmpfs survives like a disk. Set by the xdist controller
    before it starts its workers, so they and their subprocesses inherit it. A full run leaves
    about 330 MB there (pyproject keeps only failed tests' folders). A small tmpfs (a container's
    default /dev/shm is 64 MB) is left alone: the suite would fill it."""
    if "TMPDIR" in os.environ or not (shm.is_dir() and os.access(shm, os.W_OK | os.X_OK)):
        return
    free = os.statvfs(shm)
    if free.f_bavail * free.f_frsize < MIN_FREE_TMPFS_BYTES:
        return
    os.environ["TMPDIR"] = str(shm)
    tempfile.tempdir = None  # re-read TMPDIR on the next gettempdir()


_temporary_files_in_memory()


#: The modules whose tests take longest (whole Dagster deployments, the demo, CLI runs: see the
#: --durations table of a CI log). They are collected right after the Definitions tests, so the
#: xdist workers start them first and share the short tests at the end, instead of one worker
#: starting a minute-long test when the other has nothing left to do.
LONGEST_MODULES = (
    "tests/orchestration/test_cli.py",
    "tests/deployment/test_postgres_deployment.py",
    "tests/orchestration/test_exchange_pools.py",
    "tests/orchestration/test_launcher.py",
    "tests/assets/test_social_date_sweep.py",
    "tests/assets/test_indicators_asset.py",
    "tests/assets/test_mtf.py",
)


def _collection_rank(item: pytest.Item) -> int:
    """Definitions first (nothing else matters if the code location breaks), then the longest
    modules, then the rest in collection order (the sort is stable)."""
    path = item.nodeid.split("::")[0]
    if path.endswith("test_definitions.py"):
        return 0
    return 1 if path in LONGEST_MODULES else 2


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_collection_rank)


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
