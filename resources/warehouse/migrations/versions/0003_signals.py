"""Validations, the signals outbox, per-publisher trade claims and deliveries.

Revision ID: 0003_signals
Revises: 0002_social_events
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from resources.warehouse.schema import UtcTimestamp

revision = "0003_signals"
down_revision = "0002_social_events"
branch_labels = None
depends_on = None

F = sa.Float(53)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "validations",
        sa.Column("validation_id", ID, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.BigInteger, nullable=False),
        sa.Column("chain", sa.String(32), nullable=False),
        sa.Column("address", sa.String(128), nullable=False),
        sa.Column("base_token", sa.String(200), nullable=False),
        sa.Column("symbol", sa.String(64)),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(256), nullable=False),
        sa.Column("author", sa.String(256)),
        sa.Column("called_at", UtcTimestamp(), nullable=False),
        sa.Column("window_s", F, nullable=False),
        sa.Column("validated_at", UtcTimestamp(), nullable=False),
        *(sa.Column(name, F) for name in ("price_at_call", "price_at_close", "reaction_pct", "liquidity_usd",
                                          "volume_24h_usd", "market_cap_usd", "pair_age_h")),
        sa.Column("pair_address", sa.String(128)),
        sa.Column("mention_channels", sa.Integer),
        sa.Column("mention_authors", sa.Integer),
        sa.Column("channel_weight", F),
        sa.Column("reputation", F),
        sa.Column("spam_score", F),
        sa.Column("wave_size", sa.Integer),
        sa.Column("factors", sa.Text, nullable=False),
        sa.Column("score", F, nullable=False),
        sa.Column("threshold", F, nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.UniqueConstraint("event_id", "chain", "address", name="validations_call"),
    )
    op.create_index("validations_base_token", "validations", ["base_token", "called_at"])
    op.create_index("validations_channel", "validations", ["channel", "called_at"])
    op.create_table(
        "signals",
        sa.Column("signal_id", ID, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("origin", sa.String(200), nullable=False),
        sa.Column("base_token", sa.String(200), nullable=False),
        sa.Column("chain", sa.String(32)),
        sa.Column("address", sa.String(128)),
        sa.Column("symbol", sa.String(64)),
        sa.Column("source", sa.String(32)),
        sa.Column("channel", sa.String(256)),
        sa.Column("direction", sa.String(8)),
        sa.Column("confidence", F, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UtcTimestamp(), nullable=False),
        sa.Column("updated_at", UtcTimestamp(), nullable=False),
        sa.UniqueConstraint("kind", "origin", name="signals_origin"),
    )
    op.create_index("signals_status", "signals", ["status", "signal_id"])
    op.create_table(
        "publisher_trades",
        sa.Column("publisher", sa.String(64), nullable=False),
        sa.Column("base_token", sa.String(200), nullable=False),
        sa.Column("signal_id", sa.BigInteger, nullable=False),
        sa.Column("claimed_at", UtcTimestamp(), nullable=False),
        sa.Column("expires_at", UtcTimestamp()),
        sa.PrimaryKeyConstraint("publisher", "base_token", name="publisher_trades_pkey"),
    )
    op.create_table(
        "signal_deliveries",
        sa.Column("signal_id", sa.BigInteger, nullable=False),
        sa.Column("publisher", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("delivered_at", UtcTimestamp(), nullable=False),
        sa.Column("external_ref", sa.String(128)),
        sa.PrimaryKeyConstraint("signal_id", "publisher", name="signal_deliveries_pkey"),
    )


def downgrade() -> None:
    for table in ("signal_deliveries", "publisher_trades", "signals", "validations"):
        op.drop_table(table)
