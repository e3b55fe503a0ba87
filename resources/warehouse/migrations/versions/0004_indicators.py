"""The indicators table: one row per candle key, every indicator of ml/indicators.

Revision ID: 0004_indicators
Revises: 0003_signals
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from resources.warehouse.schema import UtcTimestamp

revision = "0004_indicators"
down_revision = "0003_signals"
branch_labels = None
depends_on = None

F = sa.Float(53)

#: (column, type) in the order of ml.indicators.INDICATOR_COLUMNS when this revision was written.
COLUMNS = [
    ("ema_9", F),
    ("ema_10", F),
    ("ema_21", F),
    ("ema_36", F),
    ("ema_200", F),
    ("sma_50", F),
    ("sma_200", F),
    ("ehma_180", F),
    ("macd", F),
    ("macd_signal", F),
    ("macd_hist", F),
    ("adx_14", F),
    ("supertrend", F),
    ("supertrend_direction", sa.BigInteger),
    ("rsi_14", F),
    ("rsi_7", F),
    ("bb_upper", F),
    ("bb_middle", F),
    ("bb_lower", F),
    ("bb_width", F),
    ("bb_position", F),
    ("atr_14", F),
    ("obv", F),
    ("vwap", F),
    ("volume_sma_ratio", F),
    ("volume_usd", F),
    ("td_up", sa.BigInteger),
    ("td_down", sa.BigInteger),
    ("ob_bull_top", F),
    ("ob_bull_bottom", F),
    ("ob_bull_touch", sa.Boolean),
    ("ob_bear_top", F),
    ("ob_bear_bottom", F),
    ("ob_bear_touch", sa.Boolean),
    ("fvg_bull", sa.Boolean),
    ("fvg_bear", sa.Boolean),
    ("fvg_top", F),
    ("fvg_bottom", F),
    ("fvg_size_pct", F),
    ("diff_ema200_pct", F),
    ("range_pct", F),
    ("high_low_range_pct", F),
    ("ema_9_21_cross_up", sa.Boolean),
    ("ema_9_21_cross_down", sa.Boolean),
    ("ema_10_36_cross_up", sa.Boolean),
    ("ema_10_36_cross_down", sa.Boolean),
    ("rsi_divergence", sa.BigInteger),
    ("rsi_divergence_htf", sa.BigInteger),
]


def upgrade() -> None:
    op.create_table(
        "indicators",
        sa.Column("exchange", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
        sa.Column("ts", UtcTimestamp(), nullable=False),
        *(sa.Column(name, kind) for name, kind in COLUMNS),
        sa.PrimaryKeyConstraint("exchange", "symbol", "timeframe", "ts", name="indicators_pkey"),
        postgresql_partition_by="RANGE (ts)",
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("indicators")
