"""``paper_accounts``: every market signal a publisher sent, filled in that publisher's simulated
account (:func:`ml.signals.paper.simulate`), stored and plotted.

A signal is decided at the first whole minute at or after its delivery to that publisher (or at
its trigger candle's close, if later): the account never trades on a candle that opened before
the message went out (:func:`as_sent`).

Incremental: a run recomputes a publisher's account only from the last moment its stored account
was flat before the first signal not settled yet (new, or still open), resuming from the state its
stored marks give (:func:`ml.signals.paper.state_after`); what lies before is kept. A change of the
account rules (another ``config_version``) recomputes that account from the start. Re-running with
nothing new writes nothing. Candles are read only inside the signals' windows (from the trigger
candle's close to the expiry), where a position can be open.
"""

import hashlib
import json
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import polars as pl
from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

from assets.metadata import plot_metadata, table_metadata
from ml.evaluation.costs import TradingCosts
from ml.marketdata.timeframes import timeframe_ms
from ml.signals.paper import ONE_MINUTE, PaperConfig, PaperResult, PaperState, simulate, state_after
from ml.strategies.signal import MarketSignal
from resources.warehouse.paper import (
    POSITIONS_SCHEMA,
    PaperLedger,
    PublishedSignal,
    published_market_signals,
)
from resources.warehouse.resource import WarehouseResource
from resources.warehouse.store import Warehouse

logger = logging.getLogger(__name__)

_KEY = ("strategy", "exchange", "symbol", "direction", "trigger_ts")
#: Candles are read a day at a time, so a recomputation from the start never holds months of candles.
READ_CHUNK = timedelta(days=1)


class PaperAccountsConfig(Config):
    """The rules of every publisher's paper account (``ml.signals.paper.PaperConfig``)."""

    starting_equity: float = Field(default=10_000.0, gt=0, description="cash at the start (quote currency)")
    fee_per_side: float = Field(default=0.001, ge=0, lt=1, description="exchange fee per side (0.001 = 0.1 %)")
    slippage: float = Field(default=0.0005, ge=0, lt=1, description="slippage per side (0.0005 = 5 bp)")
    max_open_positions: int = Field(default=5, ge=1, description="most positions open at once")
    daily_loss_limit: float = Field(default=0.05, gt=0, lt=1,
                                    description="no new entries for the UTC day once a mark loses this much")
    max_drawdown: float = Field(default=0.20, gt=0, lt=1,
                                description="no new entries ever once a mark is this far below the peak")

    def paper_config(self) -> PaperConfig:
        return PaperConfig(starting_equity=self.starting_equity,
                           costs=TradingCosts(fee_per_side=self.fee_per_side, slippage=self.slippage),
                           max_open_positions=self.max_open_positions, daily_loss_limit=self.daily_loss_limit,
                           max_drawdown=self.max_drawdown)


def config_version(config: PaperConfig) -> str:
    """A short hash of the account rules: stored rows of another version are recomputed."""
    content = {"starting_equity": config.starting_equity, "fee": config.costs.fee_per_side,
               "slippage": config.costs.slippage, "max_open": config.max_open_positions,
               "groups": sorted(config.sector_groups.items()), "daily": config.daily_loss_limit,
               "drawdown": config.max_drawdown}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class AccountUpdate:
    """What one run did to one publisher's account: resumed after ``since`` (None: from the start;
    nothing done when ``recomputed`` is 0), signals recomputed, rows written."""

    publisher: str
    since: datetime | None
    recomputed: int
    positions: int
    marks: int


def _ready(signal: MarketSignal) -> datetime:
    return signal.trigger_ts + timedelta(milliseconds=timeframe_ms(signal.timeframe))


def as_sent(published: PublishedSignal) -> MarketSignal:
    """The signal as its publisher's account can trade it: decided at the first whole minute at or
    after its delivery (never on a candle that opened before the message went out), or at its
    trigger candle's close if that is later. Expressed by moving ``trigger_ts`` so that the
    trigger candle closes at that minute (at the latest at the expiry, which leaves no candle)."""
    signal, delivered = published.signal, published.delivered_at
    minute = delivered.replace(second=0, microsecond=0)
    minute += ONE_MINUTE if minute < delivered else timedelta(0)
    if minute <= _ready(signal):
        return signal
    return replace(signal, trigger_ts=min(minute, signal.expires_at) - (_ready(signal) - signal.trigger_ts))


def _flat_point(bound: datetime, kept: pl.DataFrame) -> datetime:
    """The latest time at or before ``bound`` that no kept position spans (entry < t < exit)."""
    point = bound
    closed = kept.filter(pl.col("status") == "closed")
    while True:
        spanning = closed.filter((pl.col("entry_ts") < point) & (pl.col("exit_ts") > point))
        if spanning.is_empty():
            return point
        point = spanning["entry_ts"].min()  # type: ignore[assignment]


def _window_candles(store: Warehouse, signals: list[MarketSignal], since: datetime | None) -> pl.DataFrame:
    """1m candles of the signals' markets inside their windows ``[ready, expires_at)`` (from ``since``)."""
    windows = pl.DataFrame(
        [{"exchange": s.exchange, "symbol": s.symbol, "start": max(_ready(s), since) if since else _ready(s),
          "end": s.expires_at} for s in signals],
        schema={"exchange": pl.String(), "symbol": pl.String(), "start": pl.Datetime("us", "UTC"),
                "end": pl.Datetime("us", "UTC")})
    frames = []
    for (exchange,), group in windows.group_by(["exchange"]):
        # Keep a candle when the latest window of its market opening at or before it is still open.
        latest_end = group.sort("start").with_columns(pl.col("end").cum_max().over("symbol"))
        chunk_start, last_end = group["start"].min(), group["end"].max()
        while chunk_start < last_end:  # type: ignore[operator]
            chunk_end = min(chunk_start + READ_CHUNK, last_end)  # type: ignore[operator, type-var]
            active = group.filter((pl.col("start") < chunk_end) & (pl.col("end") > chunk_start))
            if active.height:
                candles = store.read_candles(timeframe="1m", exchange=str(exchange),
                                             symbols=sorted(active["symbol"].unique().to_list()),
                                             start=chunk_start, end=chunk_end)  # type: ignore[arg-type]
                candles = candles.with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC"))).sort("ts")
                frames.append(candles.join_asof(latest_end.select("symbol", "start", "end"), left_on="ts",
                                                right_on="start", by="symbol", strategy="backward",
                                                check_sortedness=False)
                              .filter(pl.col("ts") < pl.col("end")).drop("start", "end"))
            chunk_start = chunk_end
    empty = pl.DataFrame(schema={"exchange": pl.String(), "symbol": pl.String(), "ts": pl.Datetime("us", "UTC"),
                                 **dict.fromkeys(("open", "high", "low", "close"), pl.Float64())})
    return pl.concat([f.select(empty.columns).cast(empty.schema) for f in frames]) if frames else empty


def update_account(store: Warehouse, publisher: str, published: list[PublishedSignal],
                   config: PaperConfig) -> AccountUpdate:
    """Bring ``publisher``'s stored account up to date with its ``published`` signals and the
    stored 1m candles (rules in the module docstring)."""
    ledger, version = PaperLedger(store), config_version(config)
    stored, marks = ledger.positions(publisher), ledger.equity(publisher)
    if (stored["config_version"] != version).any() or (marks["config_version"] != version).any():
        stored, marks = stored.clear(), marks.clear()
        logger.info("paper account %s: account rules changed, recomputing from the start", publisher)
    by_id = {p.signal_id: as_sent(p) for p in published}
    settled = stored.filter(pl.col("status") != "open")
    pending = [s for i, s in by_id.items() if i not in set(settled["signal_id"].to_list())]
    if not pending:
        return AccountUpdate(publisher, None, 0, 0, 0)
    since = _flat_point(min(_ready(s) for s in pending), settled)
    kept = settled.filter(pl.col("decided_at") < since)
    rerun = {i: s for i, s in by_id.items() if i not in set(kept["signal_id"].to_list())}
    ids = {tuple(_key_of(s)): i for i, s in sorted(rerun.items(), reverse=True)}  # first id of a repeated key
    signals = [rerun[i] for i in sorted(ids.values())]
    resume = _resume_state(marks, since, config) if kept.height or marks.height else None
    if resume is None:
        kept, rerun = kept.clear(), by_id
        ids = {tuple(_key_of(s)): i for i, s in sorted(rerun.items(), reverse=True)}
        signals = [rerun[i] for i in sorted(ids.values())]
    result = simulate(signals, _window_candles(store, signals, since if resume else None), config, resume=resume)
    newest = {e: store.latest_candle_ts(exchange=e, timeframe="1m") for e in {s.exchange for s in rerun.values()}}
    triggers = {p.signal_id: p.signal.trigger_ts for p in published}
    positions = _positions(publisher, version, result, ids, rerun, newest).with_columns(
        pl.col("signal_id").replace_strict(triggers, return_dtype=POSITIONS_SCHEMA["trigger_ts"]).alias("trigger_ts"))
    new_marks = _new_marks(publisher, version, marks.filter(pl.col("ts") <= since) if resume else marks.clear(),
                           result.equity)
    ledger.replace_from(publisher, since if resume else None, positions, new_marks)
    return AccountUpdate(publisher, since if resume else None, len(signals), positions.height, new_marks.height)


def _resume_state(marks: pl.DataFrame, since: datetime, config: PaperConfig) -> PaperState | None:
    """The stored account's state at ``since``; None (recompute from the start) when the stored
    marks show a position open there (an expiry closed without a candle of its market)."""
    try:
        return state_after(marks.select("ts", "equity", "cash", "open_positions"), since, config)
    except ValueError as error:
        logger.info("paper account: %s; recomputing from the start", error)
        return None


def _key_of(signal: MarketSignal) -> tuple[object, ...]:
    return (signal.strategy, signal.exchange, signal.symbol, signal.direction, signal.trigger_ts)


def _positions(publisher: str, version: str, result: PaperResult, ids: dict[tuple[object, ...], int],
               signals: dict[int, MarketSignal], newest: dict[str, datetime | None]) -> pl.DataFrame:
    """One row per signal decided: trades (open when the candles ended first), rejections (a
    ``no_candles`` one only once its market's candles reach its expiry) and repeats of a signal."""
    common = {"publisher": publisher, "config_version": version}
    rows = []
    for trade in result.trades.iter_rows(named=True):
        still_open = trade["exit_reason"] == "end_of_data"
        rows.append({**trade, **common, "signal_id": ids[tuple(trade[k] for k in _KEY)],
                     "decided_at": trade["entry_ts"], "status": "open" if still_open else "closed",
                     "reason": None if still_open else trade["exit_reason"], "net_return": trade["return"]})
    for rejection in result.rejections.iter_rows(named=True):
        signal_id = ids[tuple(rejection[k] for k in _KEY)]
        last = newest.get(rejection["exchange"])
        if rejection["reason"] == "no_candles" and (last is None or last + ONE_MINUTE < signals[signal_id].expires_at):
            continue  # its candles may still come: decided by a later run
        rows.append({**rejection, **common, "signal_id": signal_id, "status": "rejected"})
    for signal_id in sorted(set(signals) - set(ids.values())):
        signal = signals[signal_id]
        rows.append({**dict(zip(_KEY, _key_of(signal), strict=True)), **common, "signal_id": signal_id,
                     "decided_at": _ready(signal), "status": "rejected", "reason": "repeated_signal"})
    return pl.DataFrame([{c: row.get(c) for c in POSITIONS_SCHEMA} for row in rows], schema=POSITIONS_SCHEMA)


def _new_marks(publisher: str, version: str, previous: pl.DataFrame, equity: pl.DataFrame) -> pl.DataFrame:
    """The new marks without those repeating the mark before them (the last kept mark included)."""
    columns = ("equity", "cash", "open_positions")
    last = previous.tail(1).select(columns).rows()
    kept = []
    for row in equity.iter_rows(named=True):
        values = tuple(row[c] for c in columns)
        if last and values == last[0]:
            continue
        kept.append(row)
        last = [values]
    frame = pl.DataFrame(kept, schema=equity.schema)
    return frame.with_columns(publisher=pl.lit(publisher), config_version=pl.lit(version)).select(
        "publisher", "ts", "equity", "cash", "open_positions", "config_version")


def update_accounts(store: Warehouse, config: PaperConfig) -> tuple[list[AccountUpdate], dict[str, str]]:
    """Every publisher's account; one publisher failing stops no other (publisher or signal -> why)."""
    published, bad = published_market_signals(store.engine)
    failures = {f"signal {i}": f"unreadable payload: {why}" for i, why in bad.items()}
    by_publisher: dict[str, list[PublishedSignal]] = {}
    for item in published:
        by_publisher.setdefault(item.publisher, []).append(item)
    updates = []
    for publisher, items in sorted(by_publisher.items()):
        try:
            updates.append(update_account(store, publisher, items, config))
        except ValueError as error:
            failures[f"publisher {publisher}"] = str(error)
            logger.warning("paper account %s not updated: %s", publisher, error)
    return updates, failures


def account_summary(positions: pl.DataFrame, marks: pl.DataFrame, starting_equity: float) -> pl.DataFrame:
    """One row per publisher: signals, trades, open, rejections, win rate, PnL, equity, return and
    the largest drawdown of its marks (fractions)."""
    rows = []
    for publisher in sorted(set(positions["publisher"].to_list()) | set(marks["publisher"].to_list())):
        mine = positions.filter(pl.col("publisher") == publisher)
        closed = mine.filter(pl.col("status") == "closed")
        equity = marks.filter(pl.col("publisher") == publisher)["equity"]
        path = pl.concat([pl.Series([starting_equity]), equity])
        last = float(path[-1])
        rows.append({
            "publisher": publisher, "signals": mine.height, "closed": closed.height,
            "open": mine.filter(pl.col("status") == "open").height,
            "rejected": mine.filter(pl.col("status") == "rejected").height,
            "win_rate": float((closed["pnl"] > 0).mean()) if closed.height else None,  # type: ignore[arg-type]
            "realised_pnl": float(closed["pnl"].sum()), "equity": last,
            "return": last / starting_equity - 1.0,
            "max_drawdown": float((path / path.cum_max() - 1.0).min()),  # type: ignore[arg-type]
        })
    return pl.DataFrame(rows, schema={
        "publisher": pl.String(), "signals": pl.Int64(), "closed": pl.Int64(), "open": pl.Int64(),
        "rejected": pl.Int64(), "win_rate": pl.Float64(), "realised_pnl": pl.Float64(), "equity": pl.Float64(),
        "return": pl.Float64(), "max_drawdown": pl.Float64()})


def paper_metadata(positions: pl.DataFrame, marks: pl.DataFrame, updates: list[AccountUpdate],
                   failures: dict[str, str], starting_equity: float) -> dict[str, MetadataValue]:
    """Tables (accounts, rejection reasons, latest positions, this run's updates, failures) and, per
    publisher, its equity and drawdown plots."""
    from ml.reporting.plots import drawdown_png, equity_curves_png

    metadata = {
        "accounts": table_metadata(account_summary(positions, marks, starting_equity)),
        "rejections": table_metadata(positions.filter(pl.col("status") == "rejected")
                                     .group_by("publisher", "reason").len("signals").sort("publisher", "reason")),
        "latest_positions": table_metadata(positions.sort("decided_at", descending=True).head(50), columns=(
            "publisher", "signal_id", "strategy", "symbol", "direction", "status", "reason", "entry_ts",
            "entry_price", "exit_ts", "exit_price", "pnl", "net_return")),
        "updates": table_metadata(pl.DataFrame([u.__dict__ for u in updates], schema={
            "publisher": pl.String(), "since": pl.Datetime("us", "UTC"), "recomputed": pl.Int64(),
            "positions": pl.Int64(), "marks": pl.Int64()})),
        "failures": MetadataValue.md("\n".join(f"- {k}: {v}" for k, v in failures.items()) or "none"),
        "positions": MetadataValue.int(positions.height),
        "marks": MetadataValue.int(marks.height),
    }
    for (publisher,), curve in marks.group_by(["publisher"], maintain_order=True):
        previous = pl.concat([pl.Series([starting_equity]), curve["equity"].head(curve.height - 1)])
        returns = (curve["equity"] / previous - 1.0).to_numpy()
        metadata[f"equity_{publisher}"] = plot_metadata(equity_curves_png(
            curve["ts"], {str(publisher): returns}, title=f"Paper account {publisher}: equity (start = 1), net of costs"),
            f"{publisher} paper equity")
        metadata[f"drawdown_{publisher}"] = plot_metadata(drawdown_png(
            curve["ts"], returns, label=str(publisher), title=f"Paper account {publisher}: drawdown from the peak"),
            f"{publisher} paper drawdown")
    return metadata


@asset(
    name="paper_accounts",
    deps=["candles_1m"],
    group_name="signals",
    kinds={"polars"},
    description="Every market signal each publisher sent, filled in that publisher's paper account (fees and "
    "slippage, max open positions, one position per sector group, daily loss limit, drawdown stop), "
    "incrementally; tables paper_positions and paper_equity, with equity and drawdown plots.",
)
def paper_accounts(context: AssetExecutionContext, config: PaperAccountsConfig,
                   warehouse: WarehouseResource) -> MaterializeResult:
    account = config.paper_config()
    store = warehouse.store()
    updates, failures = update_accounts(store, account)
    for what, why in failures.items():
        context.log.warning("paper_accounts: %s: %s", what, why)
    for update in updates:
        context.log.info("paper account %s: %d signals recomputed after %s", update.publisher, update.recomputed,
                         update.since or "the start")
    ledger = PaperLedger(store)
    return MaterializeResult(metadata=paper_metadata(ledger.positions(), ledger.equity(), updates, failures,
                                                     account.starting_equity))
