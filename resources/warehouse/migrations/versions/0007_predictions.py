"""The predictions table: the latest calibrated probabilities per candle, with the model versions.

Revision ID: 0007_predictions
Revises: 0006_model_registry
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from resources.warehouse.schema import UtcTimestamp

revision = "0007_predictions"
down_revision = "0006_model_registry"
branch_labels = None
depends_on = None

F = sa.Float(53)


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("exchange", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
        sa.Column("ts", UtcTimestamp(), nullable=False),
        sa.Column("segment", sa.String(16), nullable=False),
        sa.Column("model_name", sa.String(32), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("p_down", F, nullable=False),
        sa.Column("p_flat", F, nullable=False),
        sa.Column("p_up", F, nullable=False),
        sa.Column("predicted", sa.String(8), nullable=False),
        sa.Column("regime", sa.String(32)),
        sa.Column("regime_version", sa.String(64)),
        sa.Column("size_multiplier", F),
        sa.Column("predicted_at", UtcTimestamp(), nullable=False),
        sa.PrimaryKeyConstraint("exchange", "symbol", "timeframe", "ts", name="predictions_pkey"),
    )
    op.create_index("predictions_predicted_at", "predictions", ["predicted_at"])


def downgrade() -> None:
    op.drop_index("predictions_predicted_at", "predictions")
    op.drop_table("predictions")
