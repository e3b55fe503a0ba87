"""The warehouse keeps its Alembic revision in its own table, so it can share a database (or a
schema) with Dagster's storage, and a warehouse migrated by an earlier Signalworks (revision in
``alembic_version``) is taken over in place. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.pool import NullPool

from resources.warehouse.engine import make_engine
from resources.warehouse.migrate import (
    LEGACY_VERSION_TABLE,
    VERSION_TABLE,
    alembic_config,
    head_revision,
    migrate,
)

#: A revision of Dagster's own storage history (the one issue 13's operator met).
DAGSTER_REVISION = "29b539ebc72a"


def bare_engine(url: str) -> Engine:
    """An engine on ``url`` that migrates nothing by itself."""
    return create_engine(url, poolclass=NullPool)


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def versions(engine: Engine, table: str) -> list[str]:
    with engine.connect() as connection:
        return [row[0] for row in connection.execute(text(f"SELECT version_num FROM {table}"))]


def legacy_warehouse(url: str, revision: str) -> Engine:
    """A warehouse as Signalworks before the separate table left it: migrated to ``revision``
    with the revision in ``alembic_version``."""
    engine = bare_engine(url)
    with engine.connect() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        connection.commit()
        connection.execute(text(f"CREATE TABLE {LEGACY_VERSION_TABLE} (version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
        connection.execute(text(f"INSERT INTO {LEGACY_VERSION_TABLE} VALUES (:v)"), {"v": revision})
        connection.execute(text(f"DROP TABLE {VERSION_TABLE}"))
        connection.commit()
    return engine


def test_a_new_warehouse_keeps_its_revision_in_its_own_table(warehouse_url: str) -> None:
    engine = make_engine(warehouse_url)
    assert VERSION_TABLE in tables(engine) and LEGACY_VERSION_TABLE not in tables(engine)
    assert versions(engine, VERSION_TABLE) == [head_revision()]


def test_a_database_holding_dagsters_alembic_version_gets_a_warehouse_and_keeps_dagsters_revision(
        warehouse_url: str) -> None:
    engine = bare_engine(warehouse_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
        connection.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": DAGSTER_REVISION})
    migrate(engine)
    assert versions(engine, VERSION_TABLE) == [head_revision()]
    assert versions(engine, LEGACY_VERSION_TABLE) == [DAGSTER_REVISION]
    assert {"candle_bars", "candle_series", "predictions"} <= tables(engine)


def test_an_earlier_warehouse_is_taken_over_in_place_and_upgraded(warehouse_url: str) -> None:
    engine = legacy_warehouse(warehouse_url, "0006_model_registry")
    assert "predictions" not in tables(engine)  # 0007 not applied yet
    ts = datetime(2024, 3, 11, tzinfo=UTC)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO coingecko_markets (snapshot_ts, coin_id, symbol, name) "
                                "VALUES (:ts, 'bitcoin', 'btc', 'Bitcoin')"),
                           {"ts": ts if engine.dialect.name == "postgresql" else int(ts.timestamp() * 1000)})
    migrate(engine)
    assert LEGACY_VERSION_TABLE not in tables(engine)  # it held only the warehouse's revision
    assert versions(engine, VERSION_TABLE) == [head_revision()]
    assert "predictions" in tables(engine)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT coin_id FROM coingecko_markets")).scalars().all() == ["bitcoin"]
    migrate(engine)  # a second start changes nothing
    assert versions(engine, VERSION_TABLE) == [head_revision()]
