"""Signal outcomes (returns at +1..15 min, market trade exits) and social-call price snapshots.

Revision ID: 0008_signal_outcomes
Revises: 0007_predictions
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from resources.warehouse.schema import UtcTimestamp

revision = "0008_signal_outcomes"
down_revision = "0007_predictions"
branch_labels = None
depends_on = None

F = sa.Float(53)


def upgrade() -> None:
    op.create_table(
        "signal_outcomes",
        sa.Column("signal_id", sa.BigInteger, nullable=False),
        sa.Column("publisher", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("strategy", sa.String(64), nullable=False),
        sa.Column("exchange", sa.String(32)),
        sa.Column("symbol", sa.String(64)),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(256)),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("published_at", UtcTimestamp(), nullable=False),
        sa.Column("entry_ts", UtcTimestamp()),
        sa.Column("entry_price", F),
        *(sa.Column(f"return_{h}m", F) for h in (1, 2, 3, 5, 10, 15)),
        sa.Column("exit_reason", sa.String(8)),
        sa.Column("exit_ts", UtcTimestamp()),
        sa.Column("exit_price", F),
        sa.Column("pnl", F),
        sa.Column("missing", sa.Integer, nullable=False),
        sa.Column("settled", sa.Boolean, nullable=False),
        sa.Column("updated_at", UtcTimestamp(), nullable=False),
        sa.PrimaryKeyConstraint("signal_id", "publisher", name="signal_outcomes_pkey"),
    )
    op.create_index("signal_outcomes_published", "signal_outcomes", ["published_at"])
    op.create_index("signal_outcomes_channel", "signal_outcomes", ["channel", "published_at"])
    op.create_table(
        "signal_snapshots",
        sa.Column("signal_id", sa.BigInteger, nullable=False),
        sa.Column("minute_ts", UtcTimestamp(), nullable=False),
        sa.Column("fetched_at", UtcTimestamp(), nullable=False),
        sa.Column("price_usd", F),
        sa.Column("liquidity_usd", F),
        sa.Column("pair_address", sa.String(128)),
        sa.PrimaryKeyConstraint("signal_id", "minute_ts", name="signal_snapshots_pkey"),
    )


def downgrade() -> None:
    op.drop_table("signal_snapshots")
    op.drop_index("signal_outcomes_channel", "signal_outcomes")
    op.drop_index("signal_outcomes_published", "signal_outcomes")
    op.drop_table("signal_outcomes")
