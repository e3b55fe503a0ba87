"""Social signal path: social_events (the sidecar's output) and tokens (base-token mapping).

Revision ID: 0002_social_events
Revises: 0001_market_data
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from resources.warehouse.schema import UtcTimestamp

revision = "0002_social_events"
down_revision = "0001_market_data"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "social_events",
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(256), nullable=False),
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("author", sa.String(256)),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("ts", UtcTimestamp(), nullable=False),
        sa.Column("received_at", UtcTimestamp(), nullable=False),
        sa.Column("md5", sa.String(32), nullable=False),
        sa.Column("tokens", sa.Text, nullable=False),
        sa.Column("attachments", sa.Text, nullable=False),
        sa.Column("raw", sa.Text, nullable=False),
        sa.UniqueConstraint("source", "channel", "message_id", name="social_events_message"),
    )
    op.create_index("social_events_md5", "social_events", ["md5"])
    op.create_index("social_events_ts", "social_events", ["ts"])
    op.create_table(
        "tokens",
        sa.Column("chain", sa.String(32), nullable=False),
        sa.Column("address", sa.String(128), nullable=False),
        sa.Column("base_token", sa.String(200), nullable=False),
        sa.Column("symbol", sa.String(64)),
        sa.Column("first_seen", UtcTimestamp(), nullable=False),
        sa.PrimaryKeyConstraint("chain", "address", name="tokens_pkey"),
    )
    op.create_index("tokens_base_token", "tokens", ["base_token"])


def downgrade() -> None:
    op.drop_table("tokens")
    op.drop_table("social_events")
