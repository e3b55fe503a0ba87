"""Run Alembic migrations automatically on first use, safely from concurrent processes."""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_PG_MIGRATION_LOCK = 7_236_111  # arbitrary advisory-lock id shared by every Signalworks process
#: The warehouse's own Alembic version table: Dagster's storage keeps Alembic's default
#: ``alembic_version``, so a database (or schema) holding both would confuse the two histories.
VERSION_TABLE = "signalworks_alembic_version"
#: Where Signalworks versions before the separate table kept the warehouse's revision.
LEGACY_VERSION_TABLE = "alembic_version"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_revision()


def adopt_legacy_version(connection: Connection) -> str | None:
    """Move the warehouse's revision from ``alembic_version`` (Signalworks before the separate
    table) to :data:`VERSION_TABLE`, in place; returns the revision moved, if any.

    Only a revision of the warehouse's own history moves: a revision Alembic's script directory
    does not know (Dagster's storage, another application) stays where it is, untouched.
    """
    tables = set(inspect(connection).get_table_names())
    if VERSION_TABLE in tables or LEGACY_VERSION_TABLE not in tables:
        return None
    legacy = MigrationContext.configure(connection).get_current_revision()
    known = {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if legacy not in known:
        return None
    MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).stamp(
        ScriptDirectory.from_config(alembic_config()), legacy)
    connection.execute(text(f"DELETE FROM {LEGACY_VERSION_TABLE} WHERE version_num = :v"), {"v": legacy})
    if connection.execute(text(f"SELECT COUNT(*) FROM {LEGACY_VERSION_TABLE}")).scalar_one() == 0:
        connection.execute(text(f"DROP TABLE {LEGACY_VERSION_TABLE}"))
    connection.commit()
    logger.info("warehouse revision %s moved from %s to %s", legacy, LEGACY_VERSION_TABLE, VERSION_TABLE)
    return legacy


@contextlib.contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    lock_path = Path(database).with_suffix(".migrate.lock")
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def migrate(engine: Engine) -> None:
    """Upgrade the warehouse behind ``engine`` to the latest revision (no-op when current)."""
    head = head_revision()
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            connection.commit()
            try:
                _upgrade(connection, head)
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK})
                connection.commit()
    else:
        with _sqlite_file_lock(engine), engine.connect() as connection:
            _upgrade(connection, head)


def _upgrade(connection: Connection, head: str) -> None:
    adopt_legacy_version(connection)
    if current_revision(connection) == head:
        return
    logger.info("migrating warehouse %s to %s", connection.engine.url.render_as_string(), head)
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
    connection.commit()
