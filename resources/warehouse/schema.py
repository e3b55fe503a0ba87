"""Every warehouse table, described once with SQLAlchemy Core.

Timestamps are UTC: ``timestamptz`` on PostgreSQL and integer milliseconds since the epoch on
SQLite (compact and fast; ``datetime(ts / 1000, 'unixepoch')`` shows them). Candle storage
(``candle_bars``) is range-partitioned by month on PostgreSQL; partitions are created on demand by
the writer. ``candles`` is a view over ``candle_bars`` joined with ``candle_series`` that shows the
natural key (exchange, symbol, timeframe, ts); it is created by migration 0005, not described here,
because Core describes tables only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import TIMESTAMP
from sqlalchemy.types import TypeDecorator, TypeEngine


class UtcTimestamp(TypeDecorator[datetime]):
    """A UTC instant: ``timestamptz`` on PostgreSQL, epoch milliseconds elsewhere."""

    impl = BigInteger
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(TIMESTAMP(timezone=True))
        return dialect.type_descriptor(BigInteger())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, int):
            value = datetime.fromtimestamp(value / 1000, tz=UTC)
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} bound to a UTC column")
        if dialect.name == "postgresql":
            return value
        return int(value.timestamp() * 1000)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return value.astimezone(UTC)
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


metadata = MetaData()

#: One row per candle series: the natural key (exchange, symbol, timeframe) under an integer id.
#: Rows are created by the writer on first use and never deleted (bars refer to them by id).
candle_series = Table(
    "candle_series",
    metadata,
    Column("series_id", Integer, primary_key=True, autoincrement=True),
    Column("exchange", String(32), nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("timeframe", String(8), nullable=False),
    UniqueConstraint("exchange", "timeframe", "symbol", name="candle_series_key"),
)

#: Candle storage keyed (series_id, ts): an integer key keeps the primary-key index small and
#: cheap to maintain. No foreign key to ``candle_series``: it would add a lookup per inserted row;
#: the writer resolves series ids in the same transaction instead.
candle_bars = Table(
    "candle_bars",
    metadata,
    Column("series_id", Integer, nullable=False),
    Column("ts", UtcTimestamp(), nullable=False),
    Column("open", Float(53), nullable=False),
    Column("high", Float(53), nullable=False),
    Column("low", Float(53), nullable=False),
    Column("close", Float(53), nullable=False),
    Column("volume", Float(53), nullable=False),
    PrimaryKeyConstraint("series_id", "ts", name="candle_bars_pkey"),
    postgresql_partition_by="RANGE (ts)",
    sqlite_with_rowid=False,
)

markets = Table(
    "markets",
    metadata,
    Column("exchange", String(32), nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("base", String(32), nullable=False),
    Column("quote", String(32), nullable=False),
    Column("settle", String(32)),
    Column("market_type", String(16), nullable=False),
    Column("is_spot", Boolean, nullable=False),
    Column("contract", Boolean, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("quote_volume_24h", Float(53)),
    Column("liquidity_rank", BigInteger),
    Column("updated_at", UtcTimestamp(), nullable=False),
    PrimaryKeyConstraint("exchange", "symbol", name="markets_pkey"),
)

market_declarations = Table(
    "market_declarations",
    metadata,
    Column("exchange", String(32), nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("timeframes", String(64), nullable=False, server_default="1h,1m"),
    Column("reason", Text),
    Column("created_at", UtcTimestamp(), nullable=False),
    PrimaryKeyConstraint("exchange", "symbol", name="market_declarations_pkey"),
)

coingecko_markets = Table(
    "coingecko_markets",
    metadata,
    Column("snapshot_ts", UtcTimestamp(), nullable=False),
    Column("coin_id", String(128), nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("name", String(256)),
    Column("market_cap_rank", BigInteger),
    Column("price_usd", Float(53)),
    Column("market_cap_usd", Float(53)),
    Column("fdv_usd", Float(53)),
    Column("total_volume_usd", Float(53)),
    Column("circulating_supply", Float(53)),
    Column("total_supply", Float(53)),
    Column("max_supply", Float(53)),
    Column("price_change_pct_24h", Float(53)),
    Column("ath_usd", Float(53)),
    Column("ath_ts", UtcTimestamp()),
    Column("atl_usd", Float(53)),
    Column("atl_ts", UtcTimestamp()),
    Column("last_updated", UtcTimestamp()),
    Column("days_since_ath", Float(53)),
    Column("within_5pct_of_ath", Boolean),
    Column("within_10pct_of_ath", Boolean),
    Column("within_15pct_of_ath", Boolean),
    Column("within_90pct_of_ath", Boolean),
    PrimaryKeyConstraint("snapshot_ts", "coin_id", name="coingecko_markets_pkey"),
)
Index("coingecko_markets_rank", coingecko_markets.c.snapshot_ts, coingecko_markets.c.market_cap_rank)

derivatives = Table(
    "derivatives",
    metadata,
    Column("exchange", String(32), nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("ts", UtcTimestamp(), nullable=False),
    Column("funding_rate", Float(53)),
    Column("next_funding_ts", UtcTimestamp()),
    Column("mark_price", Float(53)),
    Column("open_interest", Float(53)),
    Column("open_interest_value", Float(53)),
    PrimaryKeyConstraint("exchange", "symbol", "ts", name="derivatives_pkey"),
)

#: Tables whose ``ts``-like column drives monthly partitioning on PostgreSQL.
PARTITIONED_TABLES: dict[str, str] = {"candle_bars": "ts"}

# -- social signal path (issue 4) ---------------------------------------------------------------

#: Auto-increment id that is BIGINT on PostgreSQL and SQLite's rowid alias on SQLite.
EventId = BigInteger().with_variant(Integer(), "sqlite")

social_events = Table(
    "social_events",
    metadata,
    Column("event_id", EventId, primary_key=True, autoincrement=True),
    Column("source", String(16), nullable=False),
    Column("channel", String(256), nullable=False),
    Column("message_id", String(128), nullable=False),
    Column("author", String(256)),
    Column("text", Text, nullable=False),
    Column("ts", UtcTimestamp(), nullable=False),
    Column("received_at", UtcTimestamp(), nullable=False),
    Column("md5", String(32), nullable=False),
    Column("tokens", Text, nullable=False),  # JSON list of {chain, address, key, ...}
    Column("attachments", Text, nullable=False),  # JSON list
    Column("raw", Text, nullable=False),  # JSON object
    UniqueConstraint("source", "channel", "message_id", name="social_events_message"),
)
Index("social_events_md5", social_events.c.md5)
Index("social_events_ts", social_events.c.ts)

tokens = Table(
    "tokens",
    metadata,
    Column("chain", String(32), nullable=False),
    Column("address", String(128), nullable=False),
    Column("base_token", String(200), nullable=False),  # the identity shared by every wrapper/chain
    Column("symbol", String(64)),
    Column("first_seen", UtcTimestamp(), nullable=False),
    PrimaryKeyConstraint("chain", "address", name="tokens_pkey"),
)
Index("tokens_base_token", tokens.c.base_token)

validations = Table(
    "validations",
    metadata,
    Column("validation_id", EventId, primary_key=True, autoincrement=True),
    Column("event_id", BigInteger, nullable=False),
    Column("chain", String(32), nullable=False),
    Column("address", String(128), nullable=False),
    Column("base_token", String(200), nullable=False),
    Column("symbol", String(64)),
    Column("source", String(16), nullable=False),
    Column("channel", String(256), nullable=False),
    Column("author", String(256)),
    Column("called_at", UtcTimestamp(), nullable=False),
    Column("window_s", Float(53), nullable=False),
    Column("validated_at", UtcTimestamp(), nullable=False),
    Column("price_at_call", Float(53)),
    Column("price_at_close", Float(53)),
    Column("reaction_pct", Float(53)),
    Column("liquidity_usd", Float(53)),
    Column("volume_24h_usd", Float(53)),
    Column("market_cap_usd", Float(53)),
    Column("pair_age_h", Float(53)),
    Column("pair_address", String(128)),
    Column("mention_channels", Integer),
    Column("mention_authors", Integer),
    Column("channel_weight", Float(53)),
    Column("reputation", Float(53)),
    Column("spam_score", Float(53)),
    Column("wave_size", Integer),
    Column("factors", Text, nullable=False),  # JSON: every factor and score component
    Column("score", Float(53), nullable=False),
    Column("threshold", Float(53), nullable=False),
    Column("passed", Boolean, nullable=False),
    UniqueConstraint("event_id", "chain", "address", name="validations_call"),
)
Index("validations_base_token", validations.c.base_token, validations.c.called_at)
Index("validations_channel", validations.c.channel, validations.c.called_at)

signals = Table(
    "signals",
    metadata,
    Column("signal_id", EventId, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # social | market
    Column("origin", String(200), nullable=False),  # what produced it, e.g. validation:42
    Column("base_token", String(200), nullable=False),
    Column("chain", String(32)),
    Column("address", String(128)),
    Column("symbol", String(64)),
    Column("source", String(32)),
    Column("channel", String(256)),
    Column("direction", String(8)),
    Column("confidence", Float(53), nullable=False),
    Column("payload", Text, nullable=False),  # JSON: what templates render
    Column("status", String(16), nullable=False),  # pending | done
    Column("created_at", UtcTimestamp(), nullable=False),
    Column("updated_at", UtcTimestamp(), nullable=False),
    UniqueConstraint("kind", "origin", name="signals_origin"),
)
Index("signals_status", signals.c.status, signals.c.signal_id)

publisher_trades = Table(
    "publisher_trades",
    metadata,
    Column("publisher", String(64), nullable=False),
    Column("base_token", String(200), nullable=False),
    Column("signal_id", BigInteger, nullable=False),
    Column("claimed_at", UtcTimestamp(), nullable=False),
    Column("expires_at", UtcTimestamp()),
    PrimaryKeyConstraint("publisher", "base_token", name="publisher_trades_pkey"),
)

signal_deliveries = Table(
    "signal_deliveries",
    metadata,
    Column("signal_id", BigInteger, nullable=False),
    Column("publisher", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # sent | review | skipped | failed
    Column("reason", Text),
    Column("delivered_at", UtcTimestamp(), nullable=False),
    Column("external_ref", String(128)),
    PrimaryKeyConstraint("signal_id", "publisher", name="signal_deliveries_pkey"),
)

# -- indicators (issue 3) -----------------------------------------------------------------------


def _indicator_type(dtype: object) -> TypeEngine[Any]:
    name = str(dtype)
    if name.startswith("Float"):
        return Float(53)
    if name.startswith("Int"):
        return BigInteger()
    if name == "Boolean":
        return Boolean()
    raise TypeError(f"no SQL type for indicator dtype {name}")


def _indicators_table() -> Table:
    from ml.indicators.params import IndicatorParams
    from ml.indicators.schema import indicator_columns

    values = [Column(name, _indicator_type(dtype)) for name, dtype in indicator_columns(IndicatorParams()).items()
              if name not in ("exchange", "symbol", "timeframe", "ts")]
    return Table(
        "indicators",
        metadata,
        Column("exchange", String(32), nullable=False),
        Column("symbol", String(64), nullable=False),
        Column("timeframe", String(8), nullable=False),
        Column("ts", UtcTimestamp(), nullable=False),
        *values,
        PrimaryKeyConstraint("exchange", "symbol", "timeframe", "ts", name="indicators_pkey"),
        postgresql_partition_by="RANGE (ts)",
        sqlite_with_rowid=False,
    )


indicators = _indicators_table()
PARTITIONED_TABLES["indicators"] = "ts"

# -- model registry (issue 10) -------------------------------------------------------------------

#: One row per trained model version. ``status`` is candidate | active | rejected | retired; at
#: most one row per (name, segment) is active (a partial unique index on both engines).
model_registry = Table(
    "model_registry",
    metadata,
    Column("name", String(32), nullable=False),
    Column("segment", String(64), nullable=False),
    Column("version", String(64), nullable=False),
    Column("window_start", UtcTimestamp(), nullable=False),
    Column("window_end", UtcTimestamp(), nullable=False),
    Column("trained_at", UtcTimestamp(), nullable=False),
    Column("expires_at", UtcTimestamp(), nullable=False),
    Column("metrics", Text, nullable=False),  # JSON object
    Column("artifact_uri", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_reason", Text),
    Column("status_changed_at", UtcTimestamp(), nullable=False),
    PrimaryKeyConstraint("name", "segment", "version", name="model_registry_pkey"),
)
Index("model_registry_trained", model_registry.c.name, model_registry.c.segment, model_registry.c.trained_at)
Index("model_registry_one_active", model_registry.c.name, model_registry.c.segment, unique=True,
      sqlite_where=model_registry.c.status == "active", postgresql_where=model_registry.c.status == "active")
# -- predictions (issue 10, model assets) --------------------------------------------------------

#: The latest calibrated class probabilities per candle the models were asked about: one row per
#: candle key, replaced when the same candle is predicted again. ``ts`` is the candle's open time;
#: the prediction is made at its close, for the next ``horizon`` candles.
predictions = Table(
    "predictions",
    metadata,
    Column("exchange", String(32), nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("timeframe", String(8), nullable=False),
    Column("ts", UtcTimestamp(), nullable=False),
    Column("segment", String(16), nullable=False),
    Column("model_name", String(32), nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("p_down", Float(53), nullable=False),
    Column("p_flat", Float(53), nullable=False),
    Column("p_up", Float(53), nullable=False),
    Column("predicted", String(8), nullable=False),
    Column("regime", String(32)),
    Column("regime_version", String(64)),
    Column("size_multiplier", Float(53)),
    Column("predicted_at", UtcTimestamp(), nullable=False),
    PrimaryKeyConstraint("exchange", "symbol", "timeframe", "ts", name="predictions_pkey"),
)
Index("predictions_predicted_at", predictions.c.predicted_at)

# -- signal outcomes (issue 11) -------------------------------------------------------------------

#: How each published signal did, one row per (signal, publisher) whose delivery was ``sent``:
#: net returns at +1..15 min and, for market signals, the trade (stop / target / time) it would
#: have been. Rows are upserted until ``settled`` (rules in :mod:`ml.signals.outcomes`).
signal_outcomes = Table(
    "signal_outcomes",
    metadata,
    Column("signal_id", BigInteger, nullable=False),
    Column("publisher", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # market | social
    Column("strategy", String(64), nullable=False),  # market: the strategy; social: "social"
    Column("exchange", String(32)),  # market: the exchange; social: the chain
    Column("symbol", String(64)),
    Column("source", String(32), nullable=False),  # market: "market"; social: telegram | discord | x | replay
    Column("channel", String(256)),
    Column("direction", String(8), nullable=False),
    Column("published_at", UtcTimestamp(), nullable=False),
    Column("entry_ts", UtcTimestamp()),
    Column("entry_price", Float(53)),
    *(Column(f"return_{h}m", Float(53)) for h in (1, 2, 3, 5, 10, 15)),
    Column("exit_reason", String(8)),  # market: stop | target | time | open; social: null
    Column("exit_ts", UtcTimestamp()),
    Column("exit_price", Float(53)),
    Column("pnl", Float(53)),
    Column("missing", Integer, nullable=False),  # minutes without a candle / snapshot that were needed
    Column("settled", Boolean, nullable=False),
    Column("updated_at", UtcTimestamp(), nullable=False),
    PrimaryKeyConstraint("signal_id", "publisher", name="signal_outcomes_pkey"),
)
Index("signal_outcomes_published", signal_outcomes.c.published_at)
Index("signal_outcomes_channel", signal_outcomes.c.channel, signal_outcomes.c.published_at)

#: DexScreener price of a published social call, at most one per signal and UTC minute
#: (``minute_ts``: the minute the snapshot was taken in; ``fetched_at`` the exact instant).
signal_snapshots = Table(
    "signal_snapshots",
    metadata,
    Column("signal_id", BigInteger, nullable=False),
    Column("minute_ts", UtcTimestamp(), nullable=False),
    Column("fetched_at", UtcTimestamp(), nullable=False),
    Column("price_usd", Float(53)),  # null: not listed any more, or no price
    Column("liquidity_usd", Float(53)),
    Column("pair_address", String(128)),
    PrimaryKeyConstraint("signal_id", "minute_ts", name="signal_snapshots_pkey"),
)

# -- paper accounts (issue 11) -------------------------------------------------------------------

#: What happened to each published market signal in its publisher's simulated account: rejected
#: (``reason`` = why), ``open`` (still held at the newest candle; the exit columns show the mark) or
#: ``closed`` (``reason`` = stop | target | expiry). ``config_version`` identifies the account rules.
paper_positions = Table(
    "paper_positions",
    metadata,
    Column("publisher", String(64), nullable=False),
    Column("signal_id", BigInteger, nullable=False),
    Column("strategy", String(32), nullable=False),
    Column("exchange", String(32), nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("direction", String(8), nullable=False),
    Column("trigger_ts", UtcTimestamp(), nullable=False),
    Column("decided_at", UtcTimestamp(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", String(32)),
    Column("entry_ts", UtcTimestamp()),
    Column("entry_price", Float(53)),
    Column("exit_ts", UtcTimestamp()),
    Column("exit_price", Float(53)),
    Column("quantity", Float(53)),
    Column("notional", Float(53)),
    Column("costs", Float(53)),
    Column("pnl", Float(53)),
    Column("net_return", Float(53)),
    Column("config_version", String(16), nullable=False),
    PrimaryKeyConstraint("publisher", "signal_id", name="paper_positions_pkey"),
)
Index("paper_positions_decided", paper_positions.c.publisher, paper_positions.c.decided_at)

#: Each account's equity marks (mark time = the marked candle's close, UTC); a mark that repeats
#: the previous one unchanged is not stored.
paper_equity = Table(
    "paper_equity",
    metadata,
    Column("publisher", String(64), nullable=False),
    Column("ts", UtcTimestamp(), nullable=False),
    Column("equity", Float(53), nullable=False),
    Column("cash", Float(53), nullable=False),
    Column("open_positions", Integer, nullable=False),
    Column("config_version", String(16), nullable=False),
    PrimaryKeyConstraint("publisher", "ts", name="paper_equity_pkey"),
)
