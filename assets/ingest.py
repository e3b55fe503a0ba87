"""Context-free ingestion: fetch through a client, write through the warehouse, report.

The Dagster assets only unpack partitions and call these functions, so they are tested against
the simulator and a real database without Dagster.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from ml.marketdata.frames import CANDLE_SCHEMA
from ml.marketdata.timeframes import day_bounds, floor_ms, from_ms, to_ms
from ml.marketdata.universe import rank_by_liquidity
from resources.exchanges.base import ExchangeClient
from resources.exchanges.errors import (
    ExchangeUnreachableError,
    MarketDataError,
    PermanentError,
    RetriesExhaustedError,
    TransientError,
)
from resources.warehouse.store import Warehouse

logger = logging.getLogger(__name__)


class NothingIngestedError(RuntimeError):
    """Every symbol failed (or there was nothing to fetch): the step must fail."""


def market_types_of(symbols: Iterable[str]) -> tuple[str, ...]:
    """The ccxt market types ``symbols`` need: ``'BASE/QUOTE:SETTLE'`` is a swap, the rest spot."""
    kinds = {"swap" if ":" in symbol else "spot" for symbol in symbols}
    return tuple(kind for kind in ("spot", "swap") if kind in kinds)


@dataclass
class DayIngest:
    """What one UTC day (one partition of one exchange) got.

    ``fetched`` symbols had their slice of the day replaced (possibly by no candles, when the
    exchange has none); ``failures`` maps a symbol to its error; ``not_attempted`` maps the
    symbols never asked for to the reason (exchange unreachable, failed permanently on an
    earlier day, day not started).
    """

    day: str
    fetched: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    not_attempted: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    first_ts: datetime | None = None
    last_ts: datetime | None = None

    @property
    def stored(self) -> bool:
        """At least one symbol's data for the day is in the warehouse."""
        return bool(self.fetched)

    def why_missing(self) -> str:
        """Why nothing of this day is stored (for a day that is not :attr:`stored`)."""
        if self.failures and not self.not_attempted:
            return "every symbol failed"
        parts = [f"{len(self.failures)} symbols failed"] if self.failures else []
        parts += [f"{n} not attempted: {why}" for why, n in sorted(Counter(self.not_attempted.values()).items())]
        return "; ".join(parts)


@dataclass
class CandleIngestReport:
    exchange: str
    timeframe: str
    symbols: list[str]
    days: list[DayIngest] = field(default_factory=list)
    unreachable: ExchangeUnreachableError | None = None

    @property
    def rows(self) -> int:
        return sum(day.rows for day in self.days)

    @property
    def symbol_days(self) -> int:
        return len(self.days) * len(self.symbols)

    @property
    def fetched(self) -> int:
        return sum(len(day.fetched) for day in self.days)

    @property
    def failed(self) -> int:
        return sum(len(day.failures) for day in self.days)

    @property
    def not_attempted(self) -> int:
        return sum(len(day.not_attempted) for day in self.days)

    @property
    def failures(self) -> dict[str, str]:
        """``"symbol day" -> error`` over every day."""
        return {f"{symbol} {day.day}": error for day in self.days for symbol, error in day.failures.items()}

    @property
    def all_failed(self) -> bool:
        return bool(self.days) and not any(day.stored for day in self.days)

    def summary(self) -> str:
        stored = sum(day.stored for day in self.days)
        return (
            f"{self.exchange} {self.timeframe}: {stored} of {len(self.days)} days stored, {self.rows} candles; "
            f"{self.symbol_days} symbol-days ({len(self.days)} days x {len(self.symbols)} symbols): "
            f"{self.fetched} fetched, {self.failed} failed, {self.not_attempted} not attempted"
        )


@dataclass
class _Breaker:
    """Counts symbol-days in a row that failed for a transient reason (network, timeout, 5xx, rate
    limit: through every retry, for a client that retries); opens at ``limit``."""

    exchange: str
    limit: int
    streak: int = 0
    since: datetime | None = None

    def failed(self, now: datetime, error: MarketDataError) -> ExchangeUnreachableError | None:
        if isinstance(error, ExchangeUnreachableError):
            return error
        if not isinstance(error, RetriesExhaustedError | TransientError):
            self.succeeded()  # the exchange answered (a permanent error is an answer)
            return None
        self.since = self.since or now
        self.streak += 1
        if self.streak < self.limit:
            return None
        return ExchangeUnreachableError(
            self.exchange, since=self.since,
            evidence=f"{self.streak} symbol-days in a row failed for a transient reason",
            last_error=str(error.__cause__ or error),
        )

    def succeeded(self) -> None:
        self.streak, self.since = 0, None


def ingest_candles(
    client: ExchangeClient,
    warehouse: Warehouse,
    *,
    timeframe: str,
    days: Iterable[str],
    symbols: Sequence[str],
    log: logging.Logger | None = None,
    unreachable_after: int = 3,
) -> CandleIngestReport:
    """Fetch ``symbols`` for every UTC day in ``days`` and replace each day's slice.

    Streams one day at a time, so memory is bounded by one day of one exchange. A symbol's
    failure is recorded and never stops the others; a symbol that failed keeps whatever the
    warehouse held for it. A permanent error (e.g. delisted symbol) skips that symbol for the
    remaining days. When ``unreachable_after`` symbol-days in a row fail for a transient reason (or
    the client itself reports the exchange unreachable), the exchange is not asked again: the
    remaining symbol-days are reported as not attempted and ``report.unreachable`` says since
    when and why. Days that have not started are reported as not started. Every failure and the
    final tally go to ``log`` (a Dagster step's ``context.log``).
    """
    log = log or logger
    report = CandleIngestReport(exchange=client.name, timeframe=timeframe, symbols=list(symbols))
    breaker = _Breaker(client.name, unreachable_after)
    permanently_failed: set[str] = set()
    now = client.now()
    for day in sorted(days):
        start, end = day_bounds(day)
        result = DayIngest(day=day)
        report.days.append(result)
        frames: list[pl.DataFrame] = []
        for symbol in symbols:
            skip = ("the day has not started" if start >= now else
                    f"{client.name} unreachable" if report.unreachable is not None else
                    "failed permanently on an earlier day" if symbol in permanently_failed else None)
            if skip is not None:
                result.not_attempted[symbol] = skip
                continue
            asked_at = client.now()
            try:
                candles = client.fetch_ohlcv(symbol, timeframe, start, min(end, now))
            except MarketDataError as error:
                result.failures[symbol] = str(error)
                log.warning("%s %s %s %s failed: %s", client.name, timeframe, symbol, day, error)
                if isinstance(error, PermanentError):
                    permanently_failed.add(symbol)
                report.unreachable = breaker.failed(asked_at, error)
                if report.unreachable is not None:
                    log.error("%s", report.unreachable)
                continue
            breaker.succeeded()
            result.fetched.append(symbol)
            frames.append(
                candles.with_columns(
                    pl.lit(client.name).alias("exchange"),
                    pl.lit(symbol).alias("symbol"),
                    pl.lit(timeframe).alias("timeframe"),
                ).select(list(CANDLE_SCHEMA))
            )
        if result.fetched:
            frame = pl.concat(frames)
            # only up to the last candle closed at ``now``: a newer one (the live feed's) is not ours to delete
            closed_end = min(end, from_ms(floor_ms(to_ms(now), timeframe)))
            result.rows = warehouse.replace_candles(
                frame, exchange=client.name, timeframe=timeframe, start=start, end=closed_end, symbols=result.fetched
            )
            if frame.height:
                result.first_ts, result.last_ts = frame.get_column("ts").min(), frame.get_column("ts").max()
    log.info("%s", report.summary())
    return report


def ingest_markets(client: ExchangeClient, warehouse: Warehouse) -> pl.DataFrame:
    """Load the exchange's universe, rank it by liquidity and replace the exchange's rows."""
    markets = client.load_markets()
    if markets.is_empty():
        raise NothingIngestedError(f"{client.name} returned no markets; keeping the previous universe")
    ranked = rank_by_liquidity(markets).with_columns(pl.lit(client.now()).cast(pl.Datetime("ms", "UTC")).alias("updated_at"))
    warehouse.replace_markets(ranked, exchange=client.name)
    return ranked


def ingest_derivatives(
    client: ExchangeClient, warehouse: Warehouse, *, symbols: Sequence[str]
) -> tuple[pl.DataFrame, dict[str, str]]:
    """Funding and open interest now for the exchange's perpetuals; one row per symbol and hour."""
    frame, failures = client.fetch_derivatives(list(symbols))
    hour = from_ms(floor_ms(to_ms(client.now()), "1h"))
    if frame.height:
        frame = frame.with_columns(pl.lit(hour).cast(pl.Datetime("ms", "UTC")).alias("ts"))
        warehouse.replace_derivatives(frame, exchange=client.name, ts=hour)
    return frame, failures
