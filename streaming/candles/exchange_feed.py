"""One exchange's live 1m candle feed: after each minute's close, fetch and store the closed candles.

A cycle runs ``settle_s`` after a minute boundary. For every tracked symbol it asks the exchange
for the candles from the symbol's cursor (the minute after its newest stored candle) up to the
boundary, so the just-closed minute, and any minute missed during an outage, arrive in the same
request. Requests run concurrently (at most ``concurrency`` at once, starts spaced by the
exchange's rate limit) in worker threads, since the exchange clients are synchronous. What came
back is written through :meth:`resources.warehouse.store.Warehouse.replace_candles`, the same
idempotent slice write the ``candles_1m`` asset uses, so the feed and the asset never disagree
and a restart rewrites nothing.

Only closed candles are stored: the window ends at the last minute boundary at or before the
clock's ``now`` and every client drops candles that have not closed at its ``now``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import polars as pl
from sqlalchemy import text

from ml.marketdata.frames import CANDLE_SCHEMA
from ml.marketdata.universe import rank_by_liquidity, tracked_symbols
from resources.clock import WallClock
from resources.exchanges.base import ExchangeClient
from resources.exchanges.errors import ExchangeUnreachableError, MarketDataError, PermanentError
from resources.warehouse.store import Warehouse

logger = logging.getLogger(__name__)

TIMEFRAME = "1m"
MINUTE = timedelta(minutes=1)

ClientFactory = Callable[[str, Sequence[str]], ExchangeClient]
"""``(exchange, market_types) -> client``; the feed closes the client it was given."""

_LASTS_SQL = ("SELECT s.symbol, (SELECT MAX(b.ts) FROM candle_bars b WHERE b.series_id = s.series_id) "
              "FROM candle_series s WHERE s.exchange = :e AND s.timeframe = :tf")


class FeedClock(Protocol):
    """What the feed reads and waits on: aware UTC ``now`` and an awaitable wait in seconds."""

    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class WallFeedClock:
    """The real time (:class:`resources.clock.WallClock`), waited on with ``asyncio.sleep``."""

    def __init__(self) -> None:
        self._wall = WallClock()

    def now(self) -> datetime:
        return self._wall.now()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ExchangeDownError(RuntimeError):
    """Every symbol of a cycle failed for a reason other than a permanent one: reconnect."""


@dataclass(frozen=True)
class FeedConfig:
    """How the feed runs (the CLI flags of ``signalworks feed``).

    Attributes
    ----------
    top_n
        Symbols per exchange by liquidity rank, as ``candles_1m`` (0 = all), plus declarations.
    market_types
        Market types of the ranked universe (``candles_1m`` tracks spot by default).
    settle_s
        Seconds after a minute's close before its candles are asked for.
    concurrency
        Requests in flight at once per exchange.
    backfill_minutes
        How far back a symbol without any stored 1m candle starts.
    repair_max_minutes
        The longest gap repaired after an outage (older minutes are the ``candles_1m`` asset's job).
    universe_refresh_s
        Seconds between re-reading the tracked universe (markets and declarations).
    """

    top_n: int = 150
    market_types: tuple[str, ...] = ("spot",)
    settle_s: float = 2.0
    concurrency: int = 8
    backfill_minutes: int = 180
    repair_max_minutes: int = 1440
    universe_refresh_s: float = 3600.0

    def __post_init__(self) -> None:
        if self.top_n < 0 or self.concurrency < 1 or self.settle_s < 0:
            raise ValueError(f"invalid feed configuration {self!r}")
        if not 1 <= self.backfill_minutes <= self.repair_max_minutes:
            raise ValueError("backfill_minutes must be between 1 and repair_max_minutes")


@dataclass
class FeedHealth:
    """Live counters of one exchange's feed (one health line each)."""

    connected: bool = False
    symbols: int = 0
    cycles: int = 0
    candles: int = 0
    last_minute: datetime | None = None
    last_lag_s: float | None = None
    failing: dict[str, str] = field(default_factory=dict)
    errors: int = 0
    reconnects: int = 0
    last_error: str | None = None

    def record_error(self, error: BaseException) -> None:
        self.errors += 1
        self.last_error = f"{type(error).__name__}: {error}"[:200]

    def line(self, exchange: str) -> str:
        last = self.last_minute.strftime("%Y-%m-%dT%H:%MZ") if self.last_minute else "-"
        lag = f"{self.last_lag_s:.2f}" if self.last_lag_s is not None else "-"
        text = (f"exchange={exchange} connected={'yes' if self.connected else 'no'} symbols={self.symbols} "
                f"last_closed={last} lag_s={lag} cycles={self.cycles} candles={self.candles} "
                f"failing_symbols={len(self.failing)} errors={self.errors} reconnects={self.reconnects}")
        if self.last_error:
            text += f" last_error={self.last_error!r}"
        return text


@dataclass(frozen=True)
class CycleReport:
    """What one cycle did: the boundary it fetched up to, rows stored, failures per symbol."""

    end: datetime
    stored: int
    fetched: tuple[str, ...]
    failures: Mapping[str, str]
    seconds_after_close: float


def floor_minute(moment: datetime) -> datetime:
    """``moment`` (aware) floored to its UTC minute."""
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def fetch_windows(symbols: Sequence[str], cursors: Mapping[str, datetime], end: datetime, *,
                  backfill_minutes: int, repair_max_minutes: int) -> dict[datetime, list[str]]:
    """Symbols grouped by the open time their fetch starts at; every window ends at ``end``.

    A symbol starts at its cursor (the minute after its newest stored candle), at
    ``end - backfill_minutes`` without one, and never before ``end - repair_max_minutes``.
    Symbols already up to date (cursor at or after ``end``) are left out.
    """
    earliest = end - repair_max_minutes * MINUTE
    groups: dict[datetime, list[str]] = defaultdict(list)
    for symbol in symbols:
        start = max(cursors.get(symbol, end - backfill_minutes * MINUTE), earliest)
        if start < end:
            groups[start].append(symbol)
    return dict(sorted(groups.items()))


def stored_cursors(warehouse: Warehouse, exchange: str) -> dict[str, datetime]:
    """``symbol -> minute after its newest stored 1m candle`` for ``exchange``."""
    with warehouse.engine.connect() as connection:
        rows = connection.execute(text(_LASTS_SQL), {"e": exchange, "tf": TIMEFRAME}).all()
    cursors = {}
    for symbol, value in rows:
        if value is None:
            continue
        last = value.astimezone(UTC) if isinstance(value, datetime) else datetime.fromtimestamp(
            int(value) / 1000, tz=UTC)
        cursors[symbol] = last + MINUTE
    return cursors


class RequestPacer:
    """Spaces the starts of requests by at least ``interval_s`` (the exchange's rate limit)."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = max(0.0, interval_s)
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait_turn(self) -> None:
        if self.interval_s == 0:
            return
        async with self._lock:
            loop = asyncio.get_running_loop()
            delay = self._next - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self._next = max(loop.time(), self._next) + self.interval_s


class ExchangeFeed:
    """The feed of one exchange (see the module docstring).

    Parameters
    ----------
    exchange
        Exchange id (``sim``, ``sim_<venue>``, ``binance`` ...).
    client_factory
        Builds the exchange client on each (re)connect.
    warehouse
        Where candles, markets and declarations live.
    clock
        Decides which minutes have closed and when the next cycle runs.
    request_interval_s
        Minimum spacing of request starts (the exchange's rate limit); 0 for the simulator.
    """

    def __init__(self, exchange: str, *, client_factory: ClientFactory, warehouse: Warehouse,
                 config: FeedConfig, clock: FeedClock, request_interval_s: float = 0.0) -> None:
        self.exchange = exchange
        self.config = config
        self.health = FeedHealth()
        self._factory = client_factory
        self._warehouse = warehouse
        self._clock = clock
        self._pacer = RequestPacer(request_interval_s)
        self.symbols: list[str] = []
        self.cursors: dict[str, datetime] = {}
        self._skipped: dict[str, str] = {}  # failed permanently: skipped until the universe is re-read
        self._universe_read_at: datetime | None = None

    # -- the connection ----------------------------------------------------------------------
    async def run(self) -> None:
        """Connect, repair gaps since the stored candles, then one cycle per minute close, forever.

        Raises on a failure that needs a reconnect (the supervisor backs off and calls it again);
        the client is closed on the way out, also when cancelled.
        """
        client = await asyncio.to_thread(self._factory, self.exchange, self.config.market_types)
        try:
            await self.refresh_universe(client)
            self.cursors = await asyncio.to_thread(stored_cursors, self._warehouse, self.exchange)
            self.health.connected = True
            logger.info("%s: connected; %d symbols at 1m; repairing from the stored candles",
                        self.exchange, len(self.symbols))
            while True:
                await self.cycle(client)
                if self._universe_due():
                    await self.refresh_universe(client)
                next_cycle = floor_minute(self._clock.now()) + MINUTE + timedelta(seconds=self.config.settle_s)
                await self._clock.sleep((next_cycle - self._clock.now()).total_seconds())
        finally:
            self.health.connected = False
            await asyncio.to_thread(client.close)

    def _universe_due(self) -> bool:
        read_at = self._universe_read_at
        return read_at is None or (self._clock.now() - read_at).total_seconds() >= self.config.universe_refresh_s

    async def refresh_universe(self, client: ExchangeClient) -> None:
        """Re-read the tracked symbols (``candles_1m``'s rule); permanently failed ones get another try."""
        self.symbols = await asyncio.to_thread(self._tracked, client)
        self._skipped.clear()
        self._universe_read_at = self._clock.now()
        self.health.symbols = len(self.symbols)
        if not self.symbols:
            raise ExchangeDownError(f"{self.exchange}: no symbol to track at 1m (no active ranked market)")

    def _tracked(self, client: ExchangeClient) -> list[str]:
        markets = self._warehouse.read_markets(self.exchange)
        if markets.is_empty():
            logger.warning("%s: no stored markets (materialise `markets`); ranking the exchange's own listing",
                           self.exchange)
            markets = rank_by_liquidity(client.load_markets())
        return tracked_symbols(markets, self._warehouse.read_declarations(self.exchange), exchange=self.exchange,
                               timeframe=TIMEFRAME, top_n=self.config.top_n,
                               market_types=self.config.market_types)

    # -- one cycle ---------------------------------------------------------------------------
    async def cycle(self, client: ExchangeClient) -> CycleReport:
        """Fetch every tracked symbol from its cursor to the last closed minute and store it.

        One symbol failing is recorded (and retried by the next cycle from the same cursor);
        the others are stored. Raises :class:`ExchangeUnreachableError` from the client, and
        :class:`ExchangeDownError` when every symbol failed for a reason that is not permanent.
        """
        end = floor_minute(self._clock.now())
        wanted = [s for s in self.symbols if s not in self._skipped]
        windows = fetch_windows(wanted, self.cursors, end, backfill_minutes=self.config.backfill_minutes,
                                repair_max_minutes=self.config.repair_max_minutes)
        jobs = [(symbol, start) for start, symbols in windows.items() for symbol in symbols]
        results = await self._fetch_all(client, jobs, end)
        failures = {s: r for s, r in results.items() if isinstance(r, BaseException)}
        frames = {s: r for s, r in results.items() if not isinstance(r, BaseException)}
        stored = 0
        for start, symbols in windows.items():
            fetched = [s for s in symbols if s in frames]
            if fetched:
                stored += await asyncio.to_thread(self._store, [frames[s] for s in fetched], fetched, start, end)
        self._record(frames, failures)
        lag = (self._clock.now() - end).total_seconds()
        if any(f.height and f.get_column("ts").max() == end - MINUTE for f in frames.values()):
            self.health.last_lag_s = lag  # this cycle stored the just-closed minute: its close-to-stored time
        report = CycleReport(end=end, stored=stored, fetched=tuple(sorted(frames)),
                             failures={s: str(e) for s, e in failures.items()}, seconds_after_close=lag)
        if jobs:
            first = min(windows)
            span = "" if first == end - MINUTE else f" (repairing from {first:%Y-%m-%d %H:%M})"
            logger.info("%s: minute %s closed%s: %d candles stored for %d of %d symbols, %.2f s after the close%s",
                        self.exchange, f"{end - MINUTE:%H:%M}", span, stored, len(frames), len(jobs), lag,
                        f"; {len(failures)} failed" if failures else "")
        if failures and not frames:
            transient = [e for e in failures.values() if not isinstance(e, PermanentError)]
            if transient:
                raise ExchangeDownError(f"{self.exchange}: every symbol failed; first error: {transient[0]}")
        return report

    async def _fetch_all(self, client: ExchangeClient, jobs: list[tuple[str, datetime]],
                         end: datetime) -> dict[str, pl.DataFrame | BaseException]:
        results: dict[str, pl.DataFrame | BaseException] = {}
        if not jobs:
            return results
        slots = asyncio.Semaphore(self.config.concurrency)

        async def fetch(symbol: str, start: datetime) -> None:
            async with slots:
                await self._pacer.wait_turn()
                try:
                    candles = await asyncio.to_thread(client.fetch_ohlcv, symbol, TIMEFRAME, start, end)
                except ExchangeUnreachableError:
                    raise
                except MarketDataError as error:
                    results[symbol] = error
                    return
                results[symbol] = candles.with_columns(
                    pl.lit(self.exchange).alias("exchange"), pl.lit(symbol).alias("symbol"),
                    pl.lit(TIMEFRAME).alias("timeframe")).select(list(CANDLE_SCHEMA))

        # the first request alone: a live client loads its market listing on first use
        await fetch(*jobs[0])
        await _gather_or_cancel([fetch(symbol, start) for symbol, start in jobs[1:]])
        return results

    def _store(self, frames: list[pl.DataFrame], symbols: list[str], start: datetime, end: datetime) -> int:
        return self._warehouse.replace_candles(pl.concat(frames), exchange=self.exchange, timeframe=TIMEFRAME,
                                               start=start, end=end, symbols=symbols)

    def _record(self, frames: Mapping[str, pl.DataFrame], failures: Mapping[str, BaseException]) -> None:
        for symbol, frame in frames.items():
            if frame.height:
                self.cursors[symbol] = frame.get_column("ts").max() + MINUTE  # type: ignore[operator]
            self.health.failing.pop(symbol, None)
            self.health.candles += frame.height
        for symbol, error in failures.items():
            self.health.failing[symbol] = str(error)
            if isinstance(error, PermanentError):
                self._skipped[symbol] = str(error)
                logger.error("%s %s failed permanently, skipped until the universe is re-read: %s",
                             self.exchange, symbol, error)
            else:
                logger.warning("%s %s failed (retried from the same minute next cycle): %s",
                               self.exchange, symbol, error)
        self.health.cycles += 1
        newest = [f.get_column("ts").max() for f in frames.values() if f.height]
        if newest:
            self.health.last_minute = max([*newest, *([self.health.last_minute] if self.health.last_minute else [])])


async def _gather_or_cancel(coroutines: list[Awaitable[Any]]) -> None:
    """Await every coroutine; on the first exception cancel the rest and re-raise it."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
