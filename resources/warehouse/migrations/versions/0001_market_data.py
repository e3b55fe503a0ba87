"""Market data: candles, markets, market declarations, CoinGecko snapshots, derivatives.

Revision ID: 0001_market_data
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from resources.warehouse.schema import UtcTimestamp

revision = "0001_market_data"
down_revision = None
branch_labels = None
depends_on = None

F = sa.Float(53)


def upgrade() -> None:
    op.create_table(
        "candles",
        sa.Column("exchange", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
        sa.Column("ts", UtcTimestamp(), nullable=False),
        sa.Column("open", F, nullable=False),
        sa.Column("high", F, nullable=False),
        sa.Column("low", F, nullable=False),
        sa.Column("close", F, nullable=False),
        sa.Column("volume", F, nullable=False),
        sa.PrimaryKeyConstraint("exchange", "symbol", "timeframe", "ts", name="candles_pkey"),
        postgresql_partition_by="RANGE (ts)",
        sqlite_with_rowid=False,
    )
    op.create_table(
        "markets",
        sa.Column("exchange", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("base", sa.String(32), nullable=False),
        sa.Column("quote", sa.String(32), nullable=False),
        sa.Column("settle", sa.String(32)),
        sa.Column("market_type", sa.String(16), nullable=False),
        sa.Column("is_spot", sa.Boolean, nullable=False),
        sa.Column("contract", sa.Boolean, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("quote_volume_24h", F),
        sa.Column("liquidity_rank", sa.BigInteger),
        sa.Column("updated_at", UtcTimestamp(), nullable=False),
        sa.PrimaryKeyConstraint("exchange", "symbol", name="markets_pkey"),
    )
    op.create_table(
        "market_declarations",
        sa.Column("exchange", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("timeframes", sa.String(64), nullable=False, server_default="1h,1m"),
        sa.Column("reason", sa.Text),
        sa.Column("created_at", UtcTimestamp(), nullable=False),
        sa.PrimaryKeyConstraint("exchange", "symbol", name="market_declarations_pkey"),
    )
    op.create_table(
        "coingecko_markets",
        sa.Column("snapshot_ts", UtcTimestamp(), nullable=False),
        sa.Column("coin_id", sa.String(128), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("name", sa.String(256)),
        sa.Column("market_cap_rank", sa.BigInteger),
        *(sa.Column(name, F) for name in (
            "price_usd", "market_cap_usd", "fdv_usd", "total_volume_usd", "circulating_supply",
            "total_supply", "max_supply", "price_change_pct_24h", "ath_usd")),
        sa.Column("ath_ts", UtcTimestamp()),
        sa.Column("atl_usd", F),
        sa.Column("atl_ts", UtcTimestamp()),
        sa.Column("last_updated", UtcTimestamp()),
        sa.Column("days_since_ath", F),
        *(sa.Column(f"within_{band}pct_of_ath", sa.Boolean) for band in (5, 10, 15, 90)),
        sa.PrimaryKeyConstraint("snapshot_ts", "coin_id", name="coingecko_markets_pkey"),
    )
    op.create_index("coingecko_markets_rank", "coingecko_markets", ["snapshot_ts", "market_cap_rank"])
    op.create_table(
        "derivatives",
        sa.Column("exchange", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("ts", UtcTimestamp(), nullable=False),
        sa.Column("funding_rate", F),
        sa.Column("next_funding_ts", UtcTimestamp()),
        sa.Column("mark_price", F),
        sa.Column("open_interest", F),
        sa.Column("open_interest_value", F),
        sa.PrimaryKeyConstraint("exchange", "symbol", "ts", name="derivatives_pkey"),
    )


def downgrade() -> None:
    for table in ("derivatives", "coingecko_markets", "market_declarations", "markets", "candles"):
        op.drop_table(table)
