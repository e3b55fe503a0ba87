"""Paper trading: fill market signals in one simulated account, minute by minute (pure).

The rules (all times UTC, candles are 1m, ``ts`` is a candle's open time, its close is ``ts + 1m``):

* **Entry.** A signal exists from its trigger candle's close ``trigger_ts + timeframe``. It is
  decided at the open of the first 1m candle of its market whose ``ts`` is at or after that close
  and before ``expires_at`` (none: rejected ``no_candles``), and, when accepted, opens at that
  candle's ``open``. Signals deciding at the same minute are taken in trigger order
  (``trigger_ts``, then strategy, exchange, symbol, direction).
* **Size.** Notional = ``signal.size`` x the account's equity at the decision (the last mark);
  quantity = notional / entry price.
* **Costs.** Each side pays ``fee_per_side + slippage`` (:class:`ml.evaluation.costs.TradingCosts`)
  per unit of traded notional: ``cost x notional`` at entry, ``cost x quantity x exit price`` at exit.
* **Exit.** From the entry candle on, each candle is checked in this order: the stop (open beyond
  it: out at the open; low/high touches it: out at the stop), then the first target (likewise,
  out at the open or at the target), then expiry (the first candle whose close is at or after
  ``expires_at``: out at its close; when the market has no such candle, out at the expiry time at
  the last close known then). A candle that touches both stop and target exits at the stop
  (conservative). A position still open when the candles end is closed at its market's last close
  with reason ``end_of_data``.
* **Rules on new entries**, checked in this order, the first that applies is the rejection reason:
  ``drawdown_stop`` (a mark has fallen ``max_drawdown`` or more below the peak mark: no new
  entries ever after), ``daily_loss_limit`` (a mark of this UTC day has fallen ``daily_loss_limit``
  or more below the day's starting equity, the last mark before the day's first candle: no new
  entries until the next UTC day), ``max_open_positions``, ``same_group_open`` (a position in the
  same sector group is open; see :func:`sector_group`).
* **Equity curve.** One mark per minute with candles of any signalled market, at that minute's
  close: cash plus every open position's liquidation value at its market's last close (unrealised
  PnL minus the exit cost closing now would pay), so a mark equals the cash a full exit would
  leave. It starts at the first decision minute.

No look-ahead: a decision at minute ``T`` reads marks up to ``T`` and the candle at ``T``'s open,
exits in candle ``T`` read that candle only, and marks read closes up to ``T + 1m``. Changing
candles opening at or after ``t`` therefore changes no trade closed, rejection decided or mark
made at or before ``t``. The result is a function of its inputs only (no clock, no randomness).

**Resuming.** An account that had no open position at a mark time ``at`` is fully described there
by :class:`PaperState` (equity, peak, the UTC day and its starting equity, the day's halt and the
drawdown stop), which :func:`state_after` rebuilds from the marks up to ``at``. ``simulate(...,
resume=state)`` then ignores candles opening before ``at`` and carries on from that state: given the
signals not decided before ``at``, it yields the same trades, rejections and marks after ``at`` as
one simulation over everything (marks that repeat the previous mark unchanged aside, since the
timeline is the minutes with candles of the signalled markets).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from types import MappingProxyType

import polars as pl

from ml.evaluation.costs import DEFAULT_COSTS, TradingCosts
from ml.marketdata.timeframes import timeframe_ms
from ml.strategies.signal import MarketSignal

ONE_MINUTE = timedelta(minutes=1)
PRICES = ("open", "high", "low", "close")
REJECTION_REASONS = ("drawdown_stop", "daily_loss_limit", "max_open_positions", "same_group_open", "no_candles")
EXIT_REASONS = ("stop", "target", "expiry", "end_of_data")

#: Documented default sector groups (base asset -> group). A base not listed is its own group.
DEFAULT_SECTOR_GROUPS: Mapping[str, str] = MappingProxyType({
    **dict.fromkeys(("BTC", "ETH"), "majors"),
    **dict.fromkeys(("SOL", "BNB", "ADA", "AVAX", "DOT", "NEAR", "TRX", "ATOM", "SUI", "APT"), "l1"),
    **dict.fromkeys(("DOGE", "SHIB", "PEPE", "WIF", "BONK", "FLOKI"), "memes"),
    **dict.fromkeys(("UNI", "AAVE", "LINK", "MKR", "CRV", "LDO"), "defi"),
})

_SIGNAL_KEY = {"strategy": pl.String(), "exchange": pl.String(), "symbol": pl.String(),
               "direction": pl.String(), "trigger_ts": pl.Datetime("us", "UTC")}
TRADES_SCHEMA = {**_SIGNAL_KEY, "entry_ts": pl.Datetime("us", "UTC"), "entry_price": pl.Float64(),
                 "exit_ts": pl.Datetime("us", "UTC"), "exit_price": pl.Float64(), "exit_reason": pl.String(),
                 "quantity": pl.Float64(), "notional": pl.Float64(), "costs": pl.Float64(),
                 "pnl": pl.Float64(), "return": pl.Float64()}
REJECTIONS_SCHEMA = {**_SIGNAL_KEY, "decided_at": pl.Datetime("us", "UTC"), "reason": pl.String()}
EQUITY_SCHEMA = {"ts": pl.Datetime("us", "UTC"), "equity": pl.Float64(), "cash": pl.Float64(),
                 "open_positions": pl.Int64()}


@dataclass(frozen=True)
class PaperConfig:
    """One simulated account.

    Parameters
    ----------
    starting_equity
        Cash at the start, in the quote currency (> 0).
    costs
        Fee and slippage per side (default 0.1 % + 5 bp).
    max_open_positions
        Most positions open at once (>= 1).
    sector_groups
        Base asset -> sector group; no two open positions share a group. Default
        :data:`DEFAULT_SECTOR_GROUPS`.
    daily_loss_limit
        Fraction of the UTC day's starting equity; once a mark loses that much, no new entries that day.
    max_drawdown
        Fraction below the peak mark; once reached, no new entries for the rest of the simulation.
    """

    starting_equity: float = 10_000.0
    costs: TradingCosts = DEFAULT_COSTS
    max_open_positions: int = 5
    sector_groups: Mapping[str, str] = field(default_factory=lambda: DEFAULT_SECTOR_GROUPS)
    daily_loss_limit: float = 0.05
    max_drawdown: float = 0.20

    def __post_init__(self) -> None:
        if not self.starting_equity > 0:
            raise ValueError(f"starting_equity must be positive, got {self.starting_equity!r}")
        if self.max_open_positions < 1:
            raise ValueError(f"max_open_positions must be at least 1, got {self.max_open_positions!r}")
        for name in ("daily_loss_limit", "max_drawdown"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} must be a fraction in (0, 1), got {value!r}")
        object.__setattr__(self, "sector_groups", MappingProxyType(dict(self.sector_groups)))


@dataclass(frozen=True)
class PaperState:
    """A flat account (no open position) after the marks up to ``at`` (a mark time, UTC).

    ``day`` is the UTC day of the last candle marked (None before any mark), ``day_start`` that
    day's starting equity, ``halted`` whether the daily loss limit was hit that day, ``stopped``
    whether the drawdown stop was ever hit.
    """

    at: datetime
    equity: float
    peak: float
    day: date | None
    day_start: float
    halted: bool
    stopped: bool


@dataclass(frozen=True)
class PaperResult:
    """``trades`` (closed positions, by exit time), ``rejections`` (by decision time) and the
    per-minute ``equity`` curve (see the module docstring); schemas ``TRADES_SCHEMA``,
    ``REJECTIONS_SCHEMA`` and ``EQUITY_SCHEMA``."""

    trades: pl.DataFrame
    rejections: pl.DataFrame
    equity: pl.DataFrame


def sector_group(symbol: str, groups: Mapping[str, str]) -> str:
    """Sector group of a ccxt symbol (``BASE/QUOTE[:SETTLE]``): its base's group, else the base."""
    base = symbol.split("/", 1)[0].upper()
    return groups.get(base, base)


@dataclass
class _Position:
    signal: MarketSignal
    group: str
    entry_ts: datetime
    entry_price: float
    quantity: float
    notional: float
    entry_cost: float

    @property
    def sign(self) -> float:
        return 1.0 if self.signal.direction == "long" else -1.0


Market = tuple[str, str]
Candle = tuple[float, float, float, float]


def simulate(signals: Sequence[MarketSignal], candles_1m: pl.DataFrame,
             config: PaperConfig = PaperConfig(), *, resume: PaperState | None = None) -> PaperResult:
    """Paper-trade ``signals`` over ``candles_1m`` in one account (rules in the module docstring).

    Parameters
    ----------
    signals
        Market signals, any order.
    candles_1m
        Closed 1m candles: ``exchange``, ``symbol``, ``ts`` (open time, timezone-aware UTC),
        ``open``, ``high``, ``low``, ``close`` (positive); a ``timeframe`` column, if present, must
        be ``1m`` throughout. Other markets' candles are ignored.
    config
        The account.
    resume
        Carry on from this flat state (see "Resuming" in the module docstring): candles opening
        before ``resume.at`` are ignored; pass only the signals not decided before it.

    Raises
    ------
    ValueError
        Missing columns, naive timestamps, another timeframe, duplicate candles or bad prices.
    """
    ordered = sorted(signals, key=_trigger_order)
    wanted = {(s.exchange, s.symbol) for s in ordered}
    if resume is not None:
        candles_1m = candles_1m.filter(pl.col("ts") >= resume.at)
    by_market = _candles_by_market(candles_1m, wanted)
    times = {m: sorted(c) for m, c in by_market.items()}

    rejections: list[dict[str, object]] = []
    entries_at: dict[datetime, list[MarketSignal]] = {}
    for signal in ordered:
        ready = signal.trigger_ts + timedelta(milliseconds=timeframe_ms(signal.timeframe))
        market_times = times.get((signal.exchange, signal.symbol), [])
        i = bisect_left(market_times, ready)
        if i == len(market_times) or market_times[i] >= signal.expires_at:
            rejections.append(_rejection(signal, ready, "no_candles"))
        else:
            entries_at.setdefault(market_times[i], []).append(signal)

    candles_at: dict[datetime, list[tuple[Market, Candle]]] = {}
    for market, candles in by_market.items():
        for ts, candle in candles.items():
            candles_at.setdefault(ts, []).append((market, candle))
    first_decision = min(entries_at, default=None)
    timeline = [ts for ts in sorted(candles_at) if first_decision is not None and ts >= first_decision]

    rate = config.costs.per_unit_traded
    cash = equity = peak = config.starting_equity
    day: date | None = None
    day_start = equity
    halted_day: date | None = None
    stopped = False
    if resume is not None:
        cash = equity = resume.equity
        peak, day, day_start, stopped = resume.peak, resume.day, resume.day_start, resume.stopped
        halted_day = resume.day if resume.halted else None
    open_positions: list[_Position] = []
    last_close: dict[Market, tuple[datetime, float]] = {}
    trades: list[dict[str, object]] = []
    curve: list[dict[str, object]] = []

    def close(position: _Position, ts: datetime, price: float, reason: str) -> None:
        nonlocal cash
        exit_cost = rate * position.quantity * price
        gross = position.sign * position.quantity * (price - position.entry_price)
        cash += gross - exit_cost
        pnl = gross - exit_cost - position.entry_cost
        trades.append({**_key(position.signal), "entry_ts": position.entry_ts, "entry_price": position.entry_price,
                       "exit_ts": ts, "exit_price": price, "exit_reason": reason, "quantity": position.quantity,
                       "notional": position.notional, "costs": position.entry_cost + exit_cost,
                       "pnl": pnl, "return": pnl / position.notional})
        open_positions.remove(position)

    for ts in timeline:
        if ts.date() != day:
            day, day_start = ts.date(), equity
        for position in [p for p in open_positions if p.signal.expires_at <= ts]:
            # Its market had no candle closing at or after the expiry: out at the last close known.
            close(position, position.signal.expires_at, last_close[_market(position.signal)][1], "expiry")
        for signal in entries_at.get(ts, []):
            group = sector_group(signal.symbol, config.sector_groups)
            reason = _refusal(stopped, halted_day == day, open_positions, group, config)
            if reason is not None:
                rejections.append(_rejection(signal, ts, reason))
                continue
            price = by_market[(signal.exchange, signal.symbol)][ts][0]
            notional = signal.size * equity
            cost = rate * notional
            cash -= cost
            open_positions.append(_Position(signal, group, ts, price, notional / price, notional, cost))
        closes_at = ts + ONE_MINUTE
        for market, candle in candles_at[ts]:
            last_close[market] = (closes_at, candle[3])
        for position in list(open_positions):
            candle_now = by_market[(position.signal.exchange, position.signal.symbol)].get(ts)
            if candle_now is not None:
                exit_ = _exit(position, candle_now, closes_at)
                if exit_ is not None:
                    close(position, closes_at, *exit_)
        equity = cash + sum(_liquidation_value(p, last_close, rate) for p in open_positions)
        peak = max(peak, equity)
        stopped = stopped or equity <= peak * (1.0 - config.max_drawdown)
        if equity <= day_start * (1.0 - config.daily_loss_limit):
            halted_day = day
        curve.append({"ts": closes_at, "equity": equity, "cash": cash, "open_positions": len(open_positions)})

    for position in list(open_positions):
        closed_at, price = last_close[(position.signal.exchange, position.signal.symbol)]
        close(position, closed_at, price, "end_of_data")

    return PaperResult(
        trades=pl.DataFrame(trades, schema=TRADES_SCHEMA),
        rejections=pl.DataFrame(rejections, schema=REJECTIONS_SCHEMA).sort("decided_at", maintain_order=True),
        equity=pl.DataFrame(curve, schema=EQUITY_SCHEMA),
    )


def state_after(equity: pl.DataFrame, at: datetime, config: PaperConfig = PaperConfig()) -> PaperState:
    """The account's state after its marks up to and including ``at``, replayed as :func:`simulate`
    keeps it (marks repeating the previous one may be missing: they change nothing).

    Parameters
    ----------
    equity
        Marks of one account (``EQUITY_SCHEMA``; ``ts`` is the mark time, the marked candle's close).
    at
        A mark time at which the account had no open position (the last mark at or before ``at``
        must show ``open_positions == 0``).

    Raises
    ------
    ValueError
        When a position was open at the last mark at or before ``at``.
    """
    marks = equity.filter(pl.col("ts") <= at).sort("ts")
    value = peak = day_start = config.starting_equity
    day: date | None = None
    halted_day: date | None = None
    stopped = False
    for ts, mark in marks.select("ts", "equity").iter_rows():
        candle_day = (ts - ONE_MINUTE).date()
        if candle_day != day:
            day, day_start = candle_day, value
        value = mark
        peak = max(peak, value)
        stopped = stopped or value <= peak * (1.0 - config.max_drawdown)
        if value <= day_start * (1.0 - config.daily_loss_limit):
            halted_day = day
    open_positions = int(marks["open_positions"][-1]) if marks.height else 0
    if open_positions:
        raise ValueError(f"{open_positions} position(s) open at {at}: an account resumes only when flat")
    return PaperState(at=at, equity=value, peak=peak, day=day, day_start=day_start,
                      halted=day is not None and halted_day == day, stopped=stopped)


def _trigger_order(signal: MarketSignal) -> tuple[object, ...]:
    return (signal.trigger_ts, *signal.key)


def _market(signal: MarketSignal) -> Market:
    return (signal.exchange, signal.symbol)


def _key(signal: MarketSignal) -> dict[str, object]:
    return {"strategy": signal.strategy, "exchange": signal.exchange, "symbol": signal.symbol,
            "direction": signal.direction, "trigger_ts": signal.trigger_ts}


def _rejection(signal: MarketSignal, decided_at: datetime, reason: str) -> dict[str, object]:
    return {**_key(signal), "decided_at": decided_at, "reason": reason}


def _refusal(stopped: bool, halted_today: bool, open_positions: list[_Position], group: str,
             config: PaperConfig) -> str | None:
    if stopped:
        return "drawdown_stop"
    if halted_today:
        return "daily_loss_limit"
    if len(open_positions) >= config.max_open_positions:
        return "max_open_positions"
    if any(p.group == group for p in open_positions):
        return "same_group_open"
    return None


def _exit(position: _Position, candle: Candle, closes_at: datetime) -> tuple[float, str] | None:
    """Exit price and reason within one candle, or None; stop before target (conservative)."""
    open_, high, low, close = candle
    sign, signal = position.sign, position.signal
    stop, target = signal.stop, signal.targets[0]
    worst, best = (low, high) if sign > 0 else (high, low)
    if sign * (open_ - stop) <= 0:
        return open_, "stop"
    if sign * (worst - stop) <= 0:
        return stop, "stop"
    if sign * (open_ - target) >= 0:
        return open_, "target"
    if sign * (best - target) >= 0:
        return target, "target"
    if closes_at >= signal.expires_at:
        return close, "expiry"
    return None


def _liquidation_value(position: _Position, last_close: dict[Market, tuple[datetime, float]], rate: float) -> float:
    price = last_close[(position.signal.exchange, position.signal.symbol)][1]
    return position.sign * position.quantity * (price - position.entry_price) - rate * position.quantity * price


def _candles_by_market(candles: pl.DataFrame, wanted: set[Market]) -> dict[Market, dict[datetime, Candle]]:
    missing = [c for c in ("exchange", "symbol", "ts", *PRICES) if c not in candles.columns]
    if missing:
        raise ValueError(f"candles_1m lacks the columns {missing}")
    dtype = candles.schema["ts"]
    if not isinstance(dtype, pl.Datetime) or dtype.time_zone is None:
        raise ValueError(f"candles_1m.ts must be a timezone-aware (UTC) datetime, got {dtype}")
    if "timeframe" in candles.columns:
        others = candles.filter(pl.col("timeframe") != "1m")["timeframe"].unique().to_list()
        if others:
            raise ValueError(f"candles_1m must hold 1m candles only, found {sorted(others)}")
    frame = candles.select("exchange", "symbol", pl.col("ts").dt.convert_time_zone("UTC"),
                           *[pl.col(c).cast(pl.Float64) for c in PRICES])
    market_id = pl.concat_str("exchange", pl.lit("\x00"), "symbol")
    frame = frame.filter(market_id.is_in([f"{e}\x00{s}" for e, s in wanted]))
    bad = frame.filter(pl.any_horizontal([pl.col(c).is_null() | ~(pl.col(c) > 0) for c in PRICES]))
    if bad.height:
        row = bad.row(0, named=True)
        raise ValueError(f"candles_1m has a missing or non-positive price: {row}")
    dupes = frame.filter(pl.struct("exchange", "symbol", "ts").is_duplicated())
    if dupes.height:
        raise ValueError(f"candles_1m has duplicate candles, e.g. {dupes.row(0, named=True)}")
    by_market: dict[Market, dict[datetime, Candle]] = {}
    for exchange, symbol, ts, *prices in frame.sort("ts").iter_rows():
        by_market.setdefault((exchange, symbol), {})[ts] = tuple(prices)  # type: ignore[assignment]
    return by_market
