"""What every market strategy emits: one :class:`MarketSignal` per triggering candle.

A signal is fully determined by the candles up to and including its trigger candle (no look-ahead):
``trigger_ts`` is that candle's open time (UTC), ``entry`` its close, and the signal exists from
the candle's close on. Prices are in the quote currency; ``size`` is the fraction of the account
(allocation x leverage) the strategy suggests.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import polars as pl

Direction = Literal["long", "short"]
RiskLevel = Literal["low", "medium", "high"]
DIRECTIONS: tuple[Direction, ...] = ("long", "short")
RISK_LEVELS: tuple[RiskLevel, ...] = ("low", "medium", "high")


@dataclass(frozen=True)
class MarketSignal:
    """One signal of one strategy on one market.

    ``targets`` are ordered from the nearest to the farthest; ``risk_reward`` is the distance to
    the first target over the distance to the stop. ``factors`` holds the figures the strategy
    decided on (JSON-able scalars), for the outbox, the templates and the scorecards.
    """

    strategy: str
    exchange: str
    symbol: str
    timeframe: str
    direction: Direction
    trigger_ts: datetime
    entry: float
    stop: float
    targets: tuple[float, ...]
    confidence: float
    risk_level: RiskLevel
    size: float
    expires_at: datetime
    factors: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = f"{self.strategy} {self.symbol} {self.trigger_ts}"
        if self.direction not in DIRECTIONS:
            raise ValueError(f"{where}: direction must be long or short, got {self.direction!r}")
        if self.risk_level not in RISK_LEVELS:
            raise ValueError(f"{where}: risk level must be one of {RISK_LEVELS}, got {self.risk_level!r}")
        if self.trigger_ts.tzinfo is None or self.expires_at.tzinfo is None:
            raise ValueError(f"{where}: times must be timezone-aware (UTC)")
        if self.expires_at <= self.trigger_ts:
            raise ValueError(f"{where}: expires_at must be after the trigger candle")
        prices = (self.entry, self.stop, *self.targets)
        if not self.targets or not all(math.isfinite(p) and p > 0 for p in prices):
            raise ValueError(f"{where}: entry, stop and at least one target must be positive prices")
        sign = 1.0 if self.direction == "long" else -1.0
        if sign * (self.entry - self.stop) <= 0:
            raise ValueError(f"{where}: the stop {self.stop} is on the wrong side of the entry {self.entry}")
        distances = [sign * (target - self.entry) for target in self.targets]
        if any(d <= 0 for d in distances) or distances != sorted(distances):
            raise ValueError(f"{where}: targets must lie beyond the entry, nearest first: {self.targets}")
        if not (0.0 <= self.confidence <= 1.0) or not (0.0 < self.size <= 10.0):
            raise ValueError(f"{where}: confidence must be in [0, 1] and size in (0, 10]")

    @property
    def risk_reward(self) -> float:
        """Distance to the first target over the distance to the stop."""
        return abs(self.targets[0] - self.entry) / abs(self.entry - self.stop)

    @property
    def key(self) -> tuple[str, str, str, Direction]:
        """What a cooldown is kept per: (strategy, exchange, symbol, direction)."""
        return (self.strategy, self.exchange, self.symbol, self.direction)

    def to_record(self) -> dict[str, Any]:
        """A flat, JSON-able dict (times as ISO 8601, targets as a list, R:R included)."""
        record = asdict(self)
        record.update(trigger_ts=self.trigger_ts.isoformat(), expires_at=self.expires_at.isoformat(),
                      targets=list(self.targets), factors=dict(self.factors), risk_reward=self.risk_reward)
        return record


def apply_cooldown(signals: Iterable[MarketSignal], cooldown: timedelta,
                   last_kept: Mapping[tuple[str, str, str, Direction], datetime] | None = None) -> list[MarketSignal]:
    """Keep a signal only when the last *kept* signal of its key (strategy, exchange, symbol,
    direction) triggered at least ``cooldown`` before it, so one move is one signal. Signals are
    taken in trigger order; the result is in trigger order. ``last_kept``: the trigger of each key's
    last signal kept before these (a live scan continuing an earlier one)."""
    if cooldown < timedelta(0):
        raise ValueError(f"cooldown must not be negative, got {cooldown}")
    last: dict[tuple[str, str, str, Direction], datetime] = dict(last_kept or {})
    kept = []
    for signal in sorted(signals, key=lambda s: (s.trigger_ts, s.key)):
        previous = last.get(signal.key)
        if previous is None or signal.trigger_ts - previous >= cooldown:
            kept.append(signal)
            last[signal.key] = signal.trigger_ts
    return kept


def signals_frame(signals: Iterable[MarketSignal]) -> pl.DataFrame:
    """Signals as one row each (for reports and tests); factors as a JSON string column."""
    import json

    rows = [{**s.to_record(), "targets": json.dumps(list(s.targets)), "factors": json.dumps(dict(s.factors))}
            for s in signals]
    return pl.DataFrame(rows) if rows else pl.DataFrame()
