"""Every SQL block of the README runs on the engine its first line names, against a warehouse
built by the demo's jobs (markets, 1h + multi-timeframe candles over a range of days, indicators,
CoinGecko: ``orchestration/cli.py`` ``run_demo``, at a small size) on SQLite and on PostgreSQL.

A block starts with ``-- SQLite:``, ``-- PostgreSQL:`` or ``-- SQLite and PostgreSQL:`` (or the
same with a parenthesis). Its queries must return rows, except where the block says "real
exchanges" (the demo stores only ``sim``) or reads ``model_registry`` (the demo trains models; this
small build does not): those must run without error.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance
from sqlalchemy import text

from orchestration.definitions import build_definitions
from orchestration.launcher import RANGE_END_TAG, RANGE_START_TAG
from orchestration.settings import Settings
from resources.warehouse.store import Warehouse
from tests.assets.conftest import sim_resources

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
DAYS = {RANGE_START_TAG: "2024-03-10|sim", RANGE_END_TAG: "2024-03-11|sim"}
SYMBOLS = 4
ENGINES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


@dataclass(frozen=True)
class Block:
    line: int
    engines: frozenset[str]
    sql: str

    @property
    def may_be_empty(self) -> bool:
        return "real exchanges" in self.sql.splitlines()[0] or "model_registry" in self.sql


def sql_blocks(markdown: str) -> list[Block]:
    blocks = []
    for match in re.finditer(r"^( *)```sql\n(.*?)^\1```$", markdown, flags=re.MULTILINE | re.DOTALL):
        indent = len(match.group(1))
        sql = "\n".join(line[indent:] for line in match.group(2).splitlines())
        header = sql.splitlines()[0]
        named = re.match(r"-- (SQLite and PostgreSQL|SQLite|PostgreSQL)\b", header)
        assert named, f"README line {markdown[:match.start()].count(chr(10)) + 1}: the block names no engine: {header!r}"
        engines = frozenset(e for e in ENGINES.values() if e in named.group(1))
        blocks.append(Block(markdown[:match.start()].count("\n") + 1, engines, sql))
    return blocks


BLOCKS = sql_blocks(README)


def statements(sql: str) -> list[str]:
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [statement.strip() for statement in body.split(";") if statement.strip()]


def demo_warehouse(url: str | None, home: Path) -> Warehouse:
    """The demo's runs, in its order, on ``url`` (None: the embedded default): 4 symbols, 2 days."""
    settings = Settings(home=home, database_url=url, exchanges=("sim",), candles_1h_symbols=SYMBOLS)
    defs = build_definitions(settings, sim_resources(settings))
    with DagsterInstance.ephemeral() as instance, pytest.MonkeyPatch.context() as environment:
        if url is not None:  # the warehouse resource reads the URL from the environment, as deployed
            environment.setenv("SIGNALWORKS_DATABASE_URL", url)
        def run(job: str, **kwargs: object) -> None:
            result = defs.resolve_job_def(job).execute_in_process(instance=instance, raise_on_error=False, **kwargs)
            assert result.success, f"{job} {kwargs} failed"

        run("markets_job")
        run("candles_1h_job", tags=DAYS, asset_selection=[AssetKey("candles_1h"), AssetKey("candles_mtf")])
        run("candles_1h_job", tags=DAYS, asset_selection=[AssetKey("indicators")])
        run("coingecko_job")
    return Warehouse.from_url(settings.warehouse_url)


@pytest.fixture(scope="module", params=list(ENGINES))
def warehouse(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    home = tmp_path_factory.mktemp(f"readme-{request.param}")
    if request.param == "sqlite":
        yield demo_warehouse(None, home)
        return
    import psycopg

    server = request.getfixturevalue("postgres_server")
    admin = server.replace("postgresql+psycopg", "postgresql").rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute('DROP DATABASE IF EXISTS "readme_sql"')
        connection.execute('CREATE DATABASE "readme_sql"')
    yield demo_warehouse(server.rsplit("/", 1)[0] + "/readme_sql", home)


def test_the_readme_has_sql_for_both_engines() -> None:
    assert {engine for block in BLOCKS for engine in block.engines} == set(ENGINES.values())
    declarations = [b for b in BLOCKS if "INSERT INTO market_declarations" in b.sql]
    assert {engine for b in declarations for engine in b.engines} == set(ENGINES.values())


def test_every_readme_sql_block_runs_on_its_engine(warehouse: Warehouse) -> None:
    engine = ENGINES[warehouse.engine.dialect.name]
    blocks = [block for block in BLOCKS if engine in block.engines]
    assert blocks
    problems = []
    with warehouse.engine.connect() as connection:
        for block in blocks:
            for statement in statements(block.sql):
                result = connection.execute(text(statement))
                if result.returns_rows:
                    rows = result.fetchall()
                    if not rows and not block.may_be_empty:
                        problems.append(f"README line {block.line}: no rows on {engine}:\n{statement}")
                elif result.rowcount != 1:
                    problems.append(f"README line {block.line}: wrote {result.rowcount} rows on {engine}")
        connection.rollback()
    assert not problems, "\n".join(problems)
