"""``market_signals_op``: new closed 1m candles -> 5m/15m candles -> strategies -> the ``signals`` outbox.

An op, not an asset: it runs every minute for whichever markets just got candles, and what it
produces is a queue of messages with side effects downstream (the publish op sends them), not a
dataset with partitions to backfill; as an asset each run would add a materialisation per minute to
the catalog and the run would carry partition bookkeeping it does not need. The data it builds on
its way (5m/15m candles for the new minutes) is the ``candles_subhour`` asset's, written by the same
function (:func:`assets.subhour.build_subhour_candles`) and re-materialised by that asset's schedule.

What is enqueued, once per signal (``(kind, origin)`` is unique in the outbox, so a re-run enqueues
nothing twice):

* kind ``market``: origin ``strategy|exchange|symbol|direction|trigger_ts`` (ISO, UTC), payload
  :meth:`MarketSignal.to_record`, its confidence, symbol and direction; ``base_token`` is the origin,
  so a publisher's one-claim-per-token rule never blocks another strategy's or a later move's signal
  (the cooldown per key is what makes one move one signal);
* kind ``funding``: origin ``funding|exchange|symbol|side|ts``, payload :meth:`FundingAlert.to_record`,
  no direction (funding says which side is crowded, not where to enter), confidence
  ``min(1, |rate| / (2 x threshold))``: 0.5 at the threshold, 1 from twice it.

The scan itself is :func:`ml.strategies.scan.scan_markets`, which backtests call too.
"""

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import polars as pl
from dagster import Config, MetadataValue, OpExecutionContext, Out, op
from pydantic import Field
from sqlalchemy import select

from assets.strategy_config import strategy_run_config
from assets.subhour import build_subhour_candles
from ml.marketdata.frames import DERIVATIVES_SCHEMA
from ml.strategies.bos import BosConfig
from ml.strategies.ema_cross import EmaCrossConfig
from ml.strategies.funding import FundingAlert
from ml.strategies.scan import (
    BOS_LOOKBACK,
    EMA_LOOKBACK,
    EMA_LOOKBACK_1H,
    Market,
    ScanResult,
    SignalKey,
    closes_quarter,
    complete_hours,
    scan_markets,
)
from ml.strategies.signal import MarketSignal
from resources.exchanges.resource import ExchangeResource
from resources.publishers.outbox import Outbox
from resources.warehouse.resource import WarehouseResource
from resources.warehouse.schema import signals as signals_table
from resources.warehouse.store import Slice, Warehouse

MINUTE = timedelta(minutes=1)


BosStrategyConfig = strategy_run_config(
    "BosStrategyConfig", BosConfig, module=__name__, fixed={"interval"},
    doc="Break of structure on 1m candles (ml/strategies/bos.py); defaults: the seed scanner's values.")
EmaCrossStrategyConfig = strategy_run_config(
    "EmaCrossStrategyConfig", EmaCrossConfig, module=__name__,
    doc="EMA-crossover scalper on 15m with 1h confirmation (ml/strategies/ema_cross.py).")


class FundingAlertConfig(Config):
    enabled: bool = Field(default=True, description="raise funding-rate alerts")
    threshold: float = Field(default=0.001, gt=0, description="|funding rate| per interval that is extreme")
    lookback_hours: int = Field(default=24, gt=0, description="derivatives snapshots read per run")


class MarketSignalsConfig(Config):
    markets: dict[str, str] = Field(
        default_factory=dict,
        description="'exchange|symbol' -> close time (ISO, UTC) of the last 1m candle already scanned, or '' "
        "for the last window_minutes; empty: every market with 1m candles in the last window_minutes")
    window_minutes: int = Field(default=60, gt=0, description="look-back for markets without a scanned close")
    bos: BosStrategyConfig = Field(default_factory=BosStrategyConfig)
    ema_cross: EmaCrossStrategyConfig = Field(default_factory=EmaCrossStrategyConfig)
    funding: FundingAlertConfig = Field(default_factory=FundingAlertConfig)


def market_key(exchange: str, symbol: str) -> str:
    return f"{exchange}|{symbol}"


def signal_origin(signal: MarketSignal) -> str:
    return "|".join((*signal.key, signal.trigger_ts.isoformat()))


def alert_origin(alert: FundingAlert) -> str:
    return "|".join((*alert.key, alert.ts.isoformat()))


@dataclass
class MarketSignalsReport:
    markets: int = 0
    signals: list[MarketSignal] = field(default_factory=list)
    alerts: list[FundingAlert] = field(default_factory=list)
    enqueued: list[int] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    subhour_rows: int = 0


def kept_signals(outbox: Outbox, symbols: list[str]) -> list[tuple[SignalKey, datetime]]:
    """(key, trigger_ts) of every market signal the outbox holds for ``symbols`` (the cooldown's seed)."""
    query = select(signals_table.c.origin).where(signals_table.c.kind == "market",
                                                 signals_table.c.symbol.in_(symbols))
    with outbox.engine.connect() as connection:
        origins = connection.execute(query).scalars().all()
    kept = []
    for origin in origins:
        parts = origin.split("|")
        if len(parts) != 5:  # not written by this module: no key to keep a cooldown on
            continue
        strategy, exchange, symbol, direction, trigger = parts
        kept.append(((strategy, exchange, symbol, direction), datetime.fromisoformat(trigger)))
    return kept


def scan_and_enqueue(store: Warehouse, outbox: Outbox, *, since: Mapping[Market, datetime | None],
                     config: MarketSignalsConfig, now: datetime) -> MarketSignalsReport:
    """Build the 5m/15m candles of the new minutes, scan ``since``'s markets and enqueue what is new.

    ``since``: per market, the close of the last 1m candle already scanned (``None``: the last
    ``window_minutes`` before its latest stored candle's close).
    """
    report = MarketSignalsReport(markets=len(since))
    bos, ema, funding = config.bos.strategy(), config.ema_cross.strategy(), config.funding
    by_exchange: dict[str, dict[str, datetime | None]] = defaultdict(dict)
    for (exchange, symbol), bound in since.items():
        by_exchange[exchange][symbol] = bound
    window = timedelta(minutes=config.window_minutes)
    for exchange, markets in sorted(by_exchange.items()):
        symbols = sorted(markets)
        known = [b for b in markets.values() if b is not None]
        earliest = min([*known, now - window]) if len(known) < len(markets) else min(known)
        minutes = store.read_candles(timeframe="1m", exchange=exchange, symbols=symbols,
                                     start=earliest - MINUTE * (BOS_LOOKBACK + 1))
        bounds = _bounds(minutes, exchange, markets, window)
        subhour = build_subhour_candles(store, exchange=exchange, start=earliest - timedelta(minutes=15), end=now,
                                        now=now, symbols=symbols)
        report.subhour_rows += sum(subhour.rows.values())
        latest = {s: ts + MINUTE for s, ts in minutes.group_by("symbol").agg(pl.col("ts").max()).iter_rows()}
        # a market can have a new EMA-crossover signal only when one of its 15m candles just closed
        quarterly = [s for s in symbols if s in latest and closes_quarter(bounds.get((exchange, s)), latest[s])]
        quarter = store.read_candles(timeframe="15m", exchange=exchange, symbols=quarterly,
                                     start=earliest - timedelta(minutes=15) * EMA_LOOKBACK)
        hours = store.read_candles(timeframe="1h", exchange=exchange, symbols=quarterly,
                                   start=earliest - timedelta(hours=EMA_LOOKBACK_1H))
        derivatives = store.read("derivatives", DERIVATIVES_SCHEMA, Slice(
            {"exchange": exchange}, ts_column="ts", start=now - timedelta(hours=funding.lookback_hours)),
            order_by=("exchange", "symbol", "ts")) if funding.enabled else None
        result = scan_markets(
            candles_1m=minutes, candles_15m=quarter,
            candles_1h=complete_hours(hours, minutes.filter(pl.col("symbol").is_in(quarterly)), now=now),
            derivatives=derivatives, since=bounds, kept=kept_signals(outbox, symbols), bos=bos, ema_cross=ema,
            funding_threshold=funding.threshold if funding.enabled else None)
        _enqueue(outbox, result, report, now)
    return report


def _bounds(minutes: pl.DataFrame, exchange: str, markets: Mapping[str, datetime | None],
            window: timedelta) -> dict[Market, datetime]:
    """Each market's ``since``; a missing one is its latest stored close minus ``window``."""
    latest = {symbol: ts + MINUTE for symbol, ts in
              minutes.group_by("symbol").agg(pl.col("ts").max()).iter_rows()}
    bounds = {}
    for symbol, bound in markets.items():
        if bound is None and symbol in latest:
            bound = latest[symbol] - window
        if bound is not None:
            bounds[(exchange, symbol)] = bound
    return bounds


def _enqueue(outbox: Outbox, result: ScanResult, report: MarketSignalsReport, now: datetime) -> None:
    report.errors.update(result.errors)
    for signal in result.signals:
        origin = signal_origin(signal)
        signal_id = outbox.enqueue(kind="market", origin=origin, base_token=origin, confidence=signal.confidence,
                                   payload=signal.to_record(), symbol=signal.symbol, direction=signal.direction,
                                   source=signal.strategy, now=now)
        report.signals.append(signal)
        if signal_id is not None:
            report.enqueued.append(signal_id)
    for alert in result.alerts:
        origin = alert_origin(alert)
        confidence = min(1.0, abs(alert.funding_rate) / (2 * alert.threshold))
        signal_id = outbox.enqueue(kind="funding", origin=origin, base_token=origin, confidence=confidence,
                                   payload=alert.to_record(), symbol=alert.symbol, source=alert.strategy, now=now)
        report.alerts.append(alert)
        if signal_id is not None:
            report.enqueued.append(signal_id)


def parse_markets(markets: Mapping[str, str]) -> dict[Market, datetime | None]:
    """The op config's ``markets`` as (exchange, symbol) -> since; raises ValueError naming a bad entry."""
    parsed: dict[Market, datetime | None] = {}
    for key, value in markets.items():
        exchange, _, symbol = key.partition("|")
        if not exchange or not symbol:
            raise ValueError(f"market {key!r} is not 'exchange|symbol'")
        try:
            bound = datetime.fromisoformat(value) if value else None
        except ValueError as error:
            raise ValueError(f"market {key!r}: since {value!r} is not an ISO time ({error})") from error
        if bound is not None and bound.tzinfo is None:
            raise ValueError(f"market {key!r}: since {value!r} must carry a UTC offset")
        parsed[(exchange, symbol)] = bound
    return parsed


def recent_markets(store: Warehouse, exchanges: list[str], *, now: datetime,
                   window: timedelta) -> dict[Market, datetime | None]:
    """Every market with 1m candles in the last ``window`` (for a run launched without markets)."""
    found: dict[Market, datetime | None] = {}
    for exchange in exchanges:
        recent = store.read_candles(timeframe="1m", exchange=exchange, start=now - window)
        found.update({(exchange, s): None for s in recent.get_column("symbol").unique().sort().to_list()})
    return found


def signals_table_md(signals: list[MarketSignal]) -> MetadataValue:
    rows = ["| strategy | symbol | direction | trigger | entry | stop | targets | R:R | confidence | risk |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    rows += [f"| {s.strategy} | {s.symbol} | {s.direction} | {s.trigger_ts:%Y-%m-%d %H:%M} | {s.entry:.6g} | "
             f"{s.stop:.6g} | {', '.join(f'{t:.6g}' for t in s.targets)} | {s.risk_reward:.2f} | "
             f"{s.confidence:.2f} | {s.risk_level} |" for s in signals[:100]]
    return MetadataValue.md("\n".join(rows))


@op(out=Out(dict[str, Any]), description="Build the 5m/15m candles of the new 1m candles, run the enabled "
    "strategies (BOS on 1m, EMA cross on 15m + 1h, funding alerts) for the markets with new candles and enqueue "
    "each new signal in the signals outbox (requested by new_candles_sensor).")
def market_signals_op(context: OpExecutionContext, config: MarketSignalsConfig, warehouse: WarehouseResource,
                      exchanges: ExchangeResource) -> dict[str, Any]:
    store, now = warehouse.store(), exchanges.clock()()
    window = timedelta(minutes=config.window_minutes)
    since = parse_markets(config.markets) or recent_markets(store, list(exchanges.exchanges), now=now, window=window)
    report = scan_and_enqueue(store, Outbox(store.engine), since=since, config=config, now=now)
    for market, error in sorted(report.errors.items()):
        context.log.error("%s: input rejected, market skipped this run: %s", market, error)
    context.add_output_metadata({
        "markets": report.markets, "signals": len(report.signals), "funding_alerts": len(report.alerts),
        "enqueued": len(report.enqueued), "subhour_candles": report.subhour_rows,
        "errors": MetadataValue.json(report.errors), "new_signals": signals_table_md(report.signals)})
    context.log.info("%d markets: %d signals, %d funding alerts, %d newly enqueued, %d markets rejected",
                     report.markets, len(report.signals), len(report.alerts), len(report.enqueued), len(report.errors))
    return {"signals": len(report.signals), "alerts": len(report.alerts), "enqueued": len(report.enqueued)}
