"""The model registry: one row per trained model version, at most one active per (name, segment).

Revision ID: 0006_model_registry
Revises: 0005_candle_series
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from resources.warehouse.schema import UtcTimestamp

revision = "0006_model_registry"
down_revision = "0005_candle_series"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_registry",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("segment", sa.String(64), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("window_start", UtcTimestamp(), nullable=False),
        sa.Column("window_end", UtcTimestamp(), nullable=False),
        sa.Column("trained_at", UtcTimestamp(), nullable=False),
        sa.Column("expires_at", UtcTimestamp(), nullable=False),
        sa.Column("metrics", sa.Text, nullable=False),
        sa.Column("artifact_uri", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text),
        sa.Column("status_changed_at", UtcTimestamp(), nullable=False),
        sa.PrimaryKeyConstraint("name", "segment", "version", name="model_registry_pkey"),
    )
    op.create_index("model_registry_trained", "model_registry", ["name", "segment", "trained_at"])
    active = sa.text("status = 'active'")
    op.create_index("model_registry_one_active", "model_registry", ["name", "segment"], unique=True,
                    sqlite_where=active, postgresql_where=active)


def downgrade() -> None:
    op.drop_index("model_registry_one_active", "model_registry")
    op.drop_index("model_registry_trained", "model_registry")
    op.drop_table("model_registry")
