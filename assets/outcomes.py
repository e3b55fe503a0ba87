"""``signal_outcomes``: how every published signal did, 1 to 15 minutes on (rules in
:mod:`ml.signals.outcome_rows`).

Each run, on the DexScreener resource's clock (the real time; a frozen instant in tests):

1. reads the sent deliveries whose outcome is not settled (:func:`unsettled_publications`);
2. market signals: their 1m candles from the warehouse, then :func:`market_outcomes`;
3. social calls: DexScreener has no price history, so the price of minute ``entry + h`` can only
   be seen during that minute. The run snapshots every call due this minute (through the cached
   client, refreshed so the price is from this minute), stores the snapshots, then
   :func:`snapshot_outcomes`;
4. upserts the rows. A signal whose payload cannot be read, or a chain whose DexScreener lookup
   fails, is reported in the metadata and stops nothing else.

Why a one-minute schedule and not a sensor: nothing external announces that a horizon has closed,
the clock does; and a social call's +h snapshot must be taken inside its minute, which a schedule
ticking on every minute does by construction (convention 10: sensors only for external events).
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)
from pydantic import Field

from assets.metadata import table_metadata
from ml.evaluation.costs import TradingCosts
from ml.signals.outcome_rows import (
    MARKET_SETTLE_GRACE,
    market_outcomes,
    market_trade_rows,
    outcome_violations,
    snapshot_outcomes,
    snapshots_due,
)
from resources.dexscreener import PairSnapshot
from resources.exchanges.errors import MarketDataError
from resources.social_resources import DexScreenerResource
from resources.ttl_cache import CachedDexScreener
from resources.warehouse.outcomes import (
    read_signal_outcomes,
    read_snapshots,
    record_snapshots,
    unsettled_publications,
    upsert_outcomes,
)
from resources.warehouse.resource import WarehouseResource
from resources.warehouse.store import Warehouse

_DESCRIPTION = ("signal_id", "publisher", "kind", "strategy", "exchange", "symbol", "source", "channel",
                "direction", "published_at")


class SignalOutcomesConfig(Config):
    fee_per_side: float = Field(default=0.001, ge=0, lt=1, description="fee per side, fraction of notional")
    slippage: float = Field(default=0.0005, ge=0, lt=1, description="slippage per side, fraction of notional")
    max_entry_delay_minutes: int = Field(default=5, ge=1, description="latest entry after publication")
    lookback_hours: int = Field(default=48, ge=1, description="publications older than this are not revisited")
    market_settle_grace_minutes: int = Field(
        default=int(MARKET_SETTLE_GRACE / timedelta(minutes=1)), ge=0,
        description="how long after its last needed candle a market outcome still waits for late candles")


@dataclass
class OutcomesReport:
    """What one update did."""

    rows: pl.DataFrame = field(default_factory=pl.DataFrame)
    snapshots: int = 0
    errors: dict[str, str] = field(default_factory=dict)


def update_outcomes(store: Warehouse, dex: CachedDexScreener | None, *, now: datetime, costs: TradingCosts,
                    max_entry_delay: timedelta, since: datetime, settle_grace: timedelta) -> OutcomesReport:
    """One pass of steps 1-4 of the module doc (``dex``: the cached DexScreener on the same clock
    as ``now``; ``None`` takes no snapshot)."""
    report = OutcomesReport()
    publications = unsettled_publications(store, since=since)
    parts = []
    market = publications.filter(pl.col("kind") == "market")
    if market.height:
        trades, errors = market_trade_rows(market)
        report.errors.update({f"signal {k}": v for k, v in errors.items()})
        if trades.height:
            outcomes = market_outcomes(trades, _candles(store, trades, now), now=now, costs=costs,
                                       max_entry_delay=max_entry_delay, settle_grace=settle_grace)
            described = trades.select("signal_id", "publisher", pl.lit("market").alias("kind"), "strategy",
                                      "exchange", "symbol", pl.lit("market").alias("source"),
                                      pl.lit(None, pl.String).alias("channel"), "direction", "published_at")
            parts.append(described.join(outcomes, on=["signal_id", "publisher"]))
    social = publications.filter(pl.col("kind") == "social")
    if social.height:
        ids = social.get_column("signal_id").unique().to_list()
        if dex is not None:
            due = snapshots_due(social, read_snapshots(store, ids), now=now, max_entry_delay=max_entry_delay)
            taken = _snapshots(dex, social.filter(pl.col("signal_id").is_in(due)), now, report)
            report.snapshots = record_snapshots(store, taken)
        outcomes = snapshot_outcomes(social, read_snapshots(store, ids), now=now, costs=costs,
                                     max_entry_delay=max_entry_delay)
        described = social.select("signal_id", "publisher", "kind", pl.lit("social").alias("strategy"),
                                  pl.col("chain").alias("exchange"), pl.coalesce("symbol", "base_token").alias("symbol"),
                                  pl.coalesce("source", pl.lit("social")).alias("source"), "channel",
                                  pl.lit("long").alias("direction"), "published_at")
        parts.append(described.join(outcomes, on=["signal_id", "publisher"]))
    if parts:
        report.rows = pl.concat(parts, how="vertical_relaxed")
        upsert_outcomes(store, report.rows, now=now)
    return report


def _candles(store: Warehouse, trades: pl.DataFrame, now: datetime) -> pl.DataFrame:
    """The 1m candles of the signalled markets from the earliest publication (minus a minute) to ``now``."""
    frames = []
    start = trades.get_column("published_at").min() - timedelta(minutes=1)
    for (exchange,), group in trades.group_by(["exchange"], maintain_order=True):
        frames.append(store.read_candles(timeframe="1m", exchange=exchange,
                                         symbols=sorted(set(group.get_column("symbol").to_list())),
                                         start=start, end=now))
    return pl.concat(frames)


def _snapshots(dex: CachedDexScreener, due: pl.DataFrame, now: datetime, report: OutcomesReport) -> pl.DataFrame:
    """This minute's price of every due call: cached entries older than the minute are refetched
    (one batched request per chain); a failing chain is reported and skipped."""
    tokens: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for row in due.select("signal_id", "chain", "address").unique().sort("signal_id").iter_rows(named=True):
        tokens[row["chain"]][row["address"]].append(int(row["signal_id"]))
    into_minute = (now - now.replace(second=0, microsecond=0)).total_seconds()
    rows = []
    for chain, addresses in tokens.items():
        try:
            dex.refresh(chain, list(addresses), fresh_within_s=into_minute)
            pairs: dict[str, PairSnapshot | None] = dex.best_pairs(chain, list(addresses))
        except (MarketDataError, ValueError) as error:
            report.errors[f"dexscreener {chain}"] = str(error)
            continue
        for address, signal_ids in addresses.items():
            pair = pairs.get(address)
            fetched = pair.fetched_at if pair is not None else now
            rows.extend({"signal_id": signal_id, "minute_ts": fetched.replace(second=0, microsecond=0),
                         "fetched_at": fetched, "price_usd": pair.price_usd if pair else None,
                         "liquidity_usd": pair.liquidity_usd if pair else None,
                         "pair_address": pair.pair_address if pair else None} for signal_id in signal_ids)
    return pl.DataFrame(rows, schema={"signal_id": pl.Int64, "minute_ts": pl.Datetime("us", "UTC"),
                                      "fetched_at": pl.Datetime("us", "UTC"), "price_usd": pl.Float64,
                                      "liquidity_usd": pl.Float64, "pair_address": pl.String}, orient="row")


@asset(name="signal_outcomes", group_name="signals",
       description="Net return of every published signal (per publisher) at +1, 2, 3, 5, 10 and 15 min, and "
       "for market signals the stop / target / time exit and its PnL; social calls from DexScreener snapshots.")
def signal_outcomes(context: AssetExecutionContext, config: SignalOutcomesConfig, warehouse: WarehouseResource,
                    dexscreener: DexScreenerResource) -> MaterializeResult:
    clock = dexscreener.run_clock(None)
    now = clock.now()
    with dexscreener.session(clock.now) as session:
        report = update_outcomes(
            warehouse.store(), session.cached, now=now,
            costs=TradingCosts(fee_per_side=config.fee_per_side, slippage=config.slippage),
            max_entry_delay=timedelta(minutes=config.max_entry_delay_minutes),
            since=now - timedelta(hours=config.lookback_hours),
            settle_grace=timedelta(minutes=config.market_settle_grace_minutes))
    for key, error in report.errors.items():
        context.log.warning("%s: %s", key, error)
    rows = report.rows
    shown = ["signal_id", "publisher", "kind", "strategy", "symbol", "return_1m", "return_5m", "return_15m",
             "exit_reason", "pnl", "settled"]
    return MaterializeResult(metadata={
        "as_of": MetadataValue.text(now.isoformat()),
        "rows_updated": MetadataValue.int(rows.height),
        "settled": MetadataValue.int(int(rows.get_column("settled").sum()) if rows.height else 0),
        "snapshots_taken": MetadataValue.int(report.snapshots),
        "errors": MetadataValue.json(report.errors),
        "outcomes": table_metadata(rows.select(shown) if rows.height else pl.DataFrame({c: [] for c in shown})),
    })


@asset_check(asset="signal_outcomes", name="outcomes_sound",
             description="No outcome of the last two days enters before its publication (look-ahead), exits "
             "before its entry, or has a return without an entry.")
def outcomes_sound(warehouse: WarehouseResource, dexscreener: DexScreenerResource) -> AssetCheckResult:
    now = dexscreener.run_clock(None).now()
    rows = read_signal_outcomes(warehouse.store(), published_from=now - timedelta(days=2))
    bad = outcome_violations(rows)
    return AssetCheckResult(passed=bad.height == 0, metadata={
        "rows_checked": rows.height, "violations": bad.height,
        "examples": table_metadata(bad.select("violation", "signal_id", "publisher", "published_at", "entry_ts",
                                              "exit_ts") if bad.height else pl.DataFrame({"violation": []}))})
