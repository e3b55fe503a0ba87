"""Candles keyed by an integer series id: candle_series + candle_bars behind a ``candles`` view.

The 4-column text key (exchange, symbol, timeframe, ts) made primary-key maintenance the bulk
of every candle write. Storage is now ``candle_bars`` keyed (series_id, ts), ``candle_series``
maps series_id to (exchange, symbol, timeframe), and ``candles`` is a view joining them with the
same columns as before, so every query written against ``candles`` keeps working. INSTEAD OF
triggers let ad-hoc INSERT, UPDATE and DELETE statements on the view reach the storage.

Existing candles are copied over (PostgreSQL: same monthly partitions, primary key built after
the copy, which is much faster than maintaining it row by row) and the old table is dropped.

Revision ID: 0005_candle_series
Revises: 0004_indicators
Create Date: 2026-11-24
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from resources.warehouse.schema import UtcTimestamp

revision = "0005_candle_series"
down_revision = "0004_indicators"
branch_labels = None
depends_on = None

F = sa.Float(53)
VALUES = "open, high, low, close, volume"

VIEW = (
    "CREATE VIEW candles AS SELECT s.exchange, s.symbol, s.timeframe, b.ts, b.open, b.high, b.low, "
    "b.close, b.volume FROM candle_bars b JOIN candle_series s ON s.series_id = b.series_id"
)

PG_WRITE_FUNCTION = """
CREATE FUNCTION candles_write() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    sid integer;
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        DELETE FROM candle_bars b USING candle_series s
        WHERE s.series_id = b.series_id AND s.exchange = OLD.exchange AND s.symbol = OLD.symbol
          AND s.timeframe = OLD.timeframe AND b.ts = OLD.ts;
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
    END IF;
    SELECT series_id INTO sid FROM candle_series
    WHERE exchange = NEW.exchange AND symbol = NEW.symbol AND timeframe = NEW.timeframe;
    IF sid IS NULL THEN
        INSERT INTO candle_series (exchange, symbol, timeframe)
        VALUES (NEW.exchange, NEW.symbol, NEW.timeframe) ON CONFLICT DO NOTHING;
        SELECT series_id INTO sid FROM candle_series
        WHERE exchange = NEW.exchange AND symbol = NEW.symbol AND timeframe = NEW.timeframe;
    END IF;
    INSERT INTO candle_bars (series_id, ts, open, high, low, close, volume)
    VALUES (sid, NEW.ts, NEW.open, NEW.high, NEW.low, NEW.close, NEW.volume);
    RETURN NEW;
END
$$
"""
PG_TRIGGER = ("CREATE TRIGGER candles_write INSTEAD OF INSERT OR UPDATE OR DELETE ON candles "
              "FOR EACH ROW EXECUTE FUNCTION candles_write()")

_SQLITE_DELETE_OLD = (
    "DELETE FROM candle_bars WHERE ts = OLD.ts AND series_id = (SELECT series_id FROM candle_series "
    "WHERE exchange = OLD.exchange AND symbol = OLD.symbol AND timeframe = OLD.timeframe);"
)
_SQLITE_INSERT_NEW = (
    "INSERT INTO candle_series (exchange, symbol, timeframe) VALUES (NEW.exchange, NEW.symbol, "
    "NEW.timeframe) ON CONFLICT DO NOTHING; "
    f"INSERT INTO candle_bars (series_id, ts, {VALUES}) SELECT series_id, NEW.ts, NEW.open, NEW.high, "
    "NEW.low, NEW.close, NEW.volume FROM candle_series WHERE exchange = NEW.exchange "
    "AND symbol = NEW.symbol AND timeframe = NEW.timeframe;"
)
SQLITE_TRIGGERS = {
    "candles_insert": f"INSTEAD OF INSERT ON candles BEGIN {_SQLITE_INSERT_NEW} END",
    "candles_update": f"INSTEAD OF UPDATE ON candles BEGIN {_SQLITE_DELETE_OLD} {_SQLITE_INSERT_NEW} END",
    "candles_delete": f"INSTEAD OF DELETE ON candles BEGIN {_SQLITE_DELETE_OLD} END",
}


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _month_partitions(table: str, source: str) -> None:
    """Monthly range partitions of ``table`` for every month holding a row of ``source``."""
    months = op.get_bind().execute(sa.text(
        f"SELECT DISTINCT date_trunc('month', ts AT TIME ZONE 'UTC') FROM {source}")).scalars().all()
    for naive in months:
        month = naive.replace(tzinfo=UTC)
        following = datetime(month.year + (month.month == 12), month.month % 12 + 1, 1, tzinfo=UTC)
        op.execute(f'CREATE TABLE "{table}_{month:%Y_%m}" PARTITION OF "{table}" '
                   f"FOR VALUES FROM ('{month.isoformat()}') TO ('{following.isoformat()}')")


def upgrade() -> None:
    postgres = _postgres()
    op.create_table(
        "candle_series",
        sa.Column("series_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("exchange", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
        sa.UniqueConstraint("exchange", "timeframe", "symbol", name="candle_series_key"),
    )
    key = [] if postgres else [sa.PrimaryKeyConstraint("series_id", "ts", name="candle_bars_pkey")]
    op.create_table(
        "candle_bars",
        sa.Column("series_id", sa.Integer, nullable=False),
        sa.Column("ts", UtcTimestamp(), nullable=False),
        *(sa.Column(name, F, nullable=False) for name in ("open", "high", "low", "close", "volume")),
        *key,
        postgresql_partition_by="RANGE (ts)",
        sqlite_with_rowid=False,
    )
    op.execute("INSERT INTO candle_series (exchange, symbol, timeframe) SELECT DISTINCT exchange, symbol, "
               "timeframe FROM candles ORDER BY exchange, timeframe, symbol")
    if postgres:
        _month_partitions("candle_bars", "candles")
    op.execute(f"INSERT INTO candle_bars (series_id, ts, {VALUES}) SELECT s.series_id, c.ts, c.open, c.high, "
               "c.low, c.close, c.volume FROM candles c JOIN candle_series s ON s.exchange = c.exchange "
               "AND s.symbol = c.symbol AND s.timeframe = c.timeframe ORDER BY s.series_id, c.ts")
    if postgres:
        op.create_primary_key("candle_bars_pkey", "candle_bars", ["series_id", "ts"])
    op.drop_table("candles")
    op.execute(VIEW)
    if postgres:
        op.execute(sa.text(PG_WRITE_FUNCTION))
        op.execute(PG_TRIGGER)
    else:
        for name, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade() -> None:
    postgres = _postgres()
    if postgres:
        op.execute("DROP TRIGGER candles_write ON candles")
        op.execute("DROP FUNCTION candles_write()")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    op.execute("ALTER VIEW candles RENAME TO candles_view" if postgres else "DROP VIEW candles")
    op.create_table(
        "candles",
        sa.Column("exchange", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
        sa.Column("ts", UtcTimestamp(), nullable=False),
        *(sa.Column(name, F, nullable=False) for name in ("open", "high", "low", "close", "volume")),
        sa.PrimaryKeyConstraint("exchange", "symbol", "timeframe", "ts", name="candles_pkey"),
        postgresql_partition_by="RANGE (ts)",
        sqlite_with_rowid=False,
    )
    if postgres:
        _month_partitions("candles", "candle_bars")
    op.execute(f"INSERT INTO candles (exchange, symbol, timeframe, ts, {VALUES}) SELECT s.exchange, s.symbol, "
               f"s.timeframe, b.ts, {', '.join('b.' + v for v in VALUES.split(', '))} FROM candle_bars b "
               "JOIN candle_series s ON s.series_id = b.series_id")
    if postgres:
        op.execute("DROP VIEW candles_view")
    op.drop_table("candle_bars")
    op.drop_table("candle_series")
