"""Paper accounts: each publisher's simulated positions and equity marks.

Revision ID: 0009_paper_accounts
Revises: 0008_signal_outcomes
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from resources.warehouse.schema import UtcTimestamp

revision = "0009_paper_accounts"
down_revision = "0008_signal_outcomes"
branch_labels = None
depends_on = None

F = sa.Float(53)


def upgrade() -> None:
    op.create_table(
        "paper_positions",
        sa.Column("publisher", sa.String(64), nullable=False),
        sa.Column("signal_id", sa.BigInteger, nullable=False),
        sa.Column("strategy", sa.String(32), nullable=False),
        sa.Column("exchange", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("trigger_ts", UtcTimestamp(), nullable=False),
        sa.Column("decided_at", UtcTimestamp(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(32)),
        sa.Column("entry_ts", UtcTimestamp()),
        sa.Column("entry_price", F),
        sa.Column("exit_ts", UtcTimestamp()),
        sa.Column("exit_price", F),
        sa.Column("quantity", F),
        sa.Column("notional", F),
        sa.Column("costs", F),
        sa.Column("pnl", F),
        sa.Column("net_return", F),
        sa.Column("config_version", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("publisher", "signal_id", name="paper_positions_pkey"),
    )
    op.create_index("paper_positions_decided", "paper_positions", ["publisher", "decided_at"])
    op.create_table(
        "paper_equity",
        sa.Column("publisher", sa.String(64), nullable=False),
        sa.Column("ts", UtcTimestamp(), nullable=False),
        sa.Column("equity", F, nullable=False),
        sa.Column("cash", F, nullable=False),
        sa.Column("open_positions", sa.Integer, nullable=False),
        sa.Column("config_version", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("publisher", "ts", name="paper_equity_pkey"),
    )


def downgrade() -> None:
    op.drop_table("paper_equity")
    op.drop_index("paper_positions_decided", "paper_positions")
    op.drop_table("paper_positions")
