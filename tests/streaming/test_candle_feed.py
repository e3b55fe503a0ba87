"""The live 1m candle feed on the simulated exchange and a real SQLite warehouse, on a manual clock.

Nothing sleeps for real: the feed waits on :class:`ManualClock`, which moves only when a test
advances it, and tests wait for what the feed writes with a deadline.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from assets.ingest import ingest_markets
from resources.exchanges.base import ExchangeClient
from resources.exchanges.errors import TransientError
from resources.exchanges.sim import SimExchange
from resources.warehouse.store import Warehouse
from streaming.candles.exchange_feed import (
    MINUTE,
    ExchangeDownError,
    ExchangeFeed,
    FeedConfig,
    fetch_windows,
    floor_minute,
)
from streaming.candles.main import build_feed
from streaming.candles.supervise import CandleFeed
from streaming.supervisor import BackoffPolicy

pytestmark = pytest.mark.timeout(120)

T0 = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
SETTLE = timedelta(seconds=2)


class ManualClock:
    """A feed clock that moves only when the test advances it; ``sleep`` waits for that."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._moved: asyncio.Event | None = None
        self.sleepers = 0

    def now(self) -> datetime:
        return self._now

    async def sleep(self, seconds: float) -> None:
        target = self._now + timedelta(seconds=max(0.0, seconds))
        self.sleepers += 1
        try:
            while self._now < target:
                self._moved = self._moved or asyncio.Event()
                await self._moved.wait()
        finally:
            self.sleepers -= 1

    def advance_to(self, moment: datetime) -> None:
        self._now = max(self._now, moment)
        if self._moved is not None:
            self._moved.set()
            self._moved = None


async def eventually(predicate: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    """Return once ``predicate()`` holds; fail naming ``what`` after ``timeout_s``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"{what} did not happen within {timeout_s} s"
        await asyncio.sleep(0.01)


def sim_factory(clock: ManualClock, failing: Iterable[str] = (), down: Callable[[], bool] = lambda: False):
    def build(exchange: str, market_types: object) -> ExchangeClient:
        if down():
            raise ConnectionError(f"{exchange} is down (simulated outage)")
        return SimExchange(exchange, clock=clock.now, failing_symbols=frozenset(failing))
    return build


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    store = Warehouse.from_url(f"sqlite:///{tmp_path / 'warehouse.db'}")
    ingest_markets(SimExchange("sim", clock=lambda: T0), store)
    return store


def stored(warehouse: Warehouse, exchange: str = "sim") -> pl.DataFrame:
    return warehouse.read_candles(timeframe="1m", exchange=exchange)


def expected(symbols: Iterable[str], start: datetime, end: datetime, now: datetime) -> pl.DataFrame:
    """What the simulator serves for ``symbols`` in ``[start, end)`` at ``now``, as stored rows."""
    sim = SimExchange("sim", clock=lambda: now)
    frames = [sim.fetch_ohlcv(s, "1m", start, end).with_columns(
        pl.lit("sim").alias("exchange"), pl.lit(s).alias("symbol"), pl.lit("1m").alias("timeframe"))
        for s in sorted(symbols)]
    return pl.concat(frames).select(stored_columns())


def stored_columns() -> list[str]:
    return ["exchange", "symbol", "timeframe", "ts", "open", "high", "low", "close", "volume"]


def make_feed(warehouse: Warehouse, clock: ManualClock, *, top_n: int = 5, **kwargs: object) -> ExchangeFeed:
    failing = kwargs.pop("failing", ())
    config = FeedConfig(top_n=top_n, backfill_minutes=int(kwargs.pop("backfill", 30)), **kwargs)  # type: ignore[arg-type]
    return ExchangeFeed("sim", client_factory=sim_factory(clock, failing), warehouse=warehouse, config=config,
                        clock=clock)


async def first_cycle(feed: ExchangeFeed, clock: ManualClock, failing: Iterable[str] = ()) -> SimExchange:
    client = SimExchange("sim", clock=clock.now, failing_symbols=frozenset(failing))
    await feed.refresh_universe(client)
    from streaming.candles.exchange_feed import stored_cursors

    feed.cursors = stored_cursors(feed._warehouse, "sim")
    await feed.cycle(client)
    return client


# --- pure planning --------------------------------------------------------------------------------


def test_fetch_windows_start_at_the_cursor_or_the_backfill_and_never_before_the_repair_limit() -> None:
    end = T0 + 100 * MINUTE
    cursors = {"A": end - 3 * MINUTE, "B": end, "C": end - 5000 * MINUTE, "D": end - 3 * MINUTE}
    windows = fetch_windows(["A", "B", "C", "D", "E"], cursors, end, backfill_minutes=60, repair_max_minutes=1440)
    assert windows == {end - 1440 * MINUTE: ["C"], end - 60 * MINUTE: ["E"], end - 3 * MINUTE: ["A", "D"]}
    assert floor_minute(T0 + timedelta(seconds=59.9)) == T0


# --- one cycle --------------------------------------------------------------------------------


def test_the_just_closed_minute_is_stored_for_every_symbol_and_never_an_open_one(warehouse: Warehouse) -> None:
    async def scenario() -> None:
        clock = ManualClock(T0 + 30 * MINUTE + SETTLE)
        feed = make_feed(warehouse, clock)
        client = await first_cycle(feed, clock)  # backfill: 30 minutes of every symbol
        symbols = feed.symbols
        assert len(symbols) == 5
        assert stored(warehouse).equals(expected(symbols, T0, T0 + 30 * MINUTE, clock.now()))

        clock.advance_to(T0 + 30 * MINUTE + timedelta(seconds=59))  # 10:30 still open: nothing new
        report = await feed.cycle(client)
        assert report.stored == 0 and stored(warehouse).height == 30 * 5
        assert feed.health.last_lag_s == 2.0  # still the 10:29 candle's: stored 2 s after its close

        clock.advance_to(T0 + 31 * MINUTE)  # exactly at 10:31:00 the sim serves the 10:30 candle
        report = await feed.cycle(client)
        assert report.stored == 5 and report.failures == {}
        frame = stored(warehouse)
        assert frame.get_column("ts").max() == T0 + 30 * MINUTE
        assert "last_closed=2025-03-03T10:30Z lag_s=0.00 cycles=3 candles=155" in feed.health.line("sim")
        assert frame.equals(expected(symbols, T0, T0 + 31 * MINUTE, clock.now()))

    asyncio.run(scenario())


def test_a_restart_is_idempotent(warehouse: Warehouse) -> None:
    async def scenario() -> None:
        clock = ManualClock(T0 + 20 * MINUTE + SETTLE)
        await first_cycle(make_feed(warehouse, clock), clock)
        before = stored(warehouse)
        again = make_feed(warehouse, clock)  # a new process at the same minute
        await first_cycle(again, clock)
        after = stored(warehouse)
        assert after.equals(before)
        assert after.select("symbol", "ts").is_duplicated().sum() == 0
        assert set(again.cursors.values()) == {T0 + 20 * MINUTE}

    asyncio.run(scenario())


def test_a_gap_after_an_outage_is_repaired_on_start(warehouse: Warehouse) -> None:
    async def scenario() -> None:
        clock = ManualClock(T0 + 10 * MINUTE + SETTLE)
        feed = make_feed(warehouse, clock)
        await first_cycle(feed, clock)  # stored through 10:09, then the feed is down for 47 minutes
        clock.advance_to(T0 + 57 * MINUTE + SETTLE)
        await first_cycle(make_feed(warehouse, clock), clock)
        frame = stored(warehouse)
        assert frame.equals(expected(feed.symbols, T0 - 20 * MINUTE, T0 + 57 * MINUTE, clock.now()))
        per_symbol = frame.group_by("symbol").agg(pl.len()).get_column("len").to_list()
        assert per_symbol == [77] * 5  # 30 minutes of backfill + the whole outage, no gap

    asyncio.run(scenario())


def test_one_failing_symbol_does_not_stop_the_others_and_is_caught_up_when_it_recovers(
        warehouse: Warehouse, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        clock = ManualClock(T0 + 10 * MINUTE + SETTLE)
        feed = make_feed(warehouse, clock)
        client = SimExchange("sim", clock=clock.now)
        await feed.refresh_universe(client)
        bad = feed.symbols[1]
        await first_cycle(feed, clock, failing=[bad])
        assert bad in feed.health.failing and "injected" in feed.health.failing[bad]
        assert set(stored(warehouse).get_column("symbol")) == set(feed.symbols) - {bad}

        clock.advance_to(T0 + 12 * MINUTE + SETTLE)  # it recovers two minutes later
        report = await feed.cycle(SimExchange("sim", clock=clock.now))
        assert report.failures == {} and feed.health.failing == {}
        frame = stored(warehouse)
        others = [s for s in feed.symbols if s != bad]
        assert frame.filter(pl.col("symbol") != bad).equals(
            expected(others, T0 - 20 * MINUTE, T0 + 12 * MINUTE, clock.now()))
        # never stored before: its 30-minute backfill counts back from the cycle it first succeeded in
        assert frame.filter(pl.col("symbol") == bad).equals(
            expected([bad], T0 - 18 * MINUTE, T0 + 12 * MINUTE, clock.now()))

    with caplog.at_level(logging.WARNING):
        asyncio.run(scenario())
    assert "retried from the same minute next cycle" in caplog.text


def test_a_symbol_that_fails_permanently_is_skipped_until_the_universe_is_reread(warehouse: Warehouse) -> None:
    warehouse.declare_markets(pl.DataFrame({"exchange": ["sim"], "symbol": ["NOPE/USDT"], "timeframes": ["1m"],
                                            "reason": ["a test"], "created_at": [T0]}))

    async def scenario() -> None:
        clock = ManualClock(T0 + 5 * MINUTE + SETTLE)
        feed = make_feed(warehouse, clock, top_n=2)
        await first_cycle(feed, clock)
        assert "NOPE/USDT" in feed.symbols and "not listed" in feed.health.failing["NOPE/USDT"]
        assert stored(warehouse).get_column("symbol").n_unique() == 2
        clock.advance_to(T0 + 6 * MINUTE + SETTLE)
        report = await feed.cycle(SimExchange("sim", clock=clock.now))
        assert "NOPE/USDT" not in report.fetched and "NOPE/USDT" not in report.failures
        assert report.stored == 2

    asyncio.run(scenario())


def test_a_cycle_where_every_symbol_fails_asks_for_a_reconnect(warehouse: Warehouse) -> None:
    async def scenario() -> None:
        clock = ManualClock(T0 + 5 * MINUTE + SETTLE)
        feed = make_feed(warehouse, clock, top_n=3)
        await feed.refresh_universe(SimExchange("sim", clock=clock.now))
        with pytest.raises(ExchangeDownError, match="every symbol failed"):
            await feed.cycle(SimExchange("sim", clock=clock.now, failing_symbols=frozenset(feed.symbols)))
        assert stored(warehouse).is_empty()

    asyncio.run(scenario())


# --- the running feed ---------------------------------------------------------------------------


class SwitchableSim(SimExchange):
    """The simulator with an outage switch: while ``state["down"]`` every fetch fails transiently."""

    def __init__(self, *args: object, state: dict[str, int], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.state = state

    def fetch_ohlcv(self, symbol: str, timeframe: str, start: datetime, end: datetime) -> pl.DataFrame:
        if self.state["down"]:
            raise TransientError("connection reset by peer", source=self.name)
        return super().fetch_ohlcv(symbol, timeframe, start, end)


def test_the_running_feed_stores_each_minute_and_reconnects_with_backoff_after_an_outage(
        warehouse: Warehouse, caplog: pytest.LogCaptureFixture) -> None:
    """Two exchanges: ``sim`` runs through an outage (every fetch fails, then three connects are
    refused) and repairs the missed minutes on reconnect; ``sim_b`` never connects and stops nothing."""
    state = {"down": 0, "refused": 0}

    async def scenario() -> None:
        clock = ManualClock(T0 + 30 * MINUTE + SETTLE)

        async def backoff_sleep(seconds: float) -> None:
            await asyncio.sleep(seconds / 1000)  # backoff scaled down to milliseconds; nothing waits on it

        def factory(exchange: str, market_types: object) -> ExchangeClient:
            if exchange == "sim_b":
                raise ConnectionError("sim_b: connection refused")
            if state["refused"] > 0:
                state["refused"] -= 1
                raise ConnectionError("sim: connection refused")
            state["down"] = 0
            return SwitchableSim(exchange, clock=clock.now, state=state)

        config = FeedConfig(top_n=4, backfill_minutes=30)
        feeds = build_feed(["sim", "sim_b"], warehouse=warehouse, config=config, client_factory=factory,
                           clock=clock).feeds
        feed = CandleFeed(feeds, backoff=BackoffPolicy(jitter=0.0), health_interval_s=0, sleep=backoff_sleep,
                          rng=random.Random(1))
        sim = feed.feeds[0]
        stop = asyncio.Event()
        task = asyncio.create_task(feed.run(stop))

        def newest() -> datetime | None:
            """The newest minute the feed reports stored (it reports after the write has committed)."""
            return sim.health.last_minute

        await eventually(lambda: newest() == T0 + 29 * MINUTE, "the start-up backfill through 10:29")
        for minute in (31, 32):
            await eventually(lambda: clock.sleepers > 0, "the feed waiting for the next close")
            clock.advance_to(T0 + minute * MINUTE + SETTLE)
            await eventually(lambda m=minute: newest() == T0 + (m - 1) * MINUTE, f"the candles of 10:{minute - 1}")

        # an outage from 10:32 to 10:40: every fetch fails, then three connects are refused
        await eventually(lambda: clock.sleepers > 0, "the feed waiting for the next close")
        state.update(down=1, refused=3)
        clock.advance_to(T0 + 40 * MINUTE + SETTLE)
        await eventually(lambda: newest() == T0 + 39 * MINUTE, "the minutes missed in the outage, repaired")
        assert stored(warehouse).equals(expected(sim.symbols, T0, T0 + 40 * MINUTE, clock.now()))
        assert feed.health["sim"].reconnects == 4 and feed.health["sim"].connected
        assert feed.delays["sim"] == [1.0, 2.0, 4.0, 8.0]
        assert feed.health["sim_b"].reconnects >= 1 and not feed.health["sim_b"].connected
        assert stored(warehouse, "sim_b").is_empty()
        stop.set()
        health = await asyncio.wait_for(task, 30)
        assert not health["sim"].connected

    with caplog.at_level(logging.INFO):
        asyncio.run(scenario())
    assert "feed sim failed (ExchangeDownError: sim: every symbol failed; first error: sim: connection reset" \
        in caplog.text
    assert "reconnect 1 in 1.00 s" in caplog.text
    assert "health exchange=sim connected=no symbols=4 last_closed=2025-03-03T10:39Z" in caplog.text


def test_an_asset_run_that_fetched_before_the_feed_wrote_keeps_the_feeds_newer_candles(
        warehouse: Warehouse) -> None:
    """``candles_1m`` (every 5 minutes) replaces today's slice of the symbols it fetched; what it
    fetched at 10:41:30 must not delete the 10:41 candle the feed stored at 10:42:02."""
    from assets.ingest import ingest_candles

    async def scenario() -> list[str]:
        clock = ManualClock(T0 + 42 * MINUTE + SETTLE)
        feed = make_feed(warehouse, clock, top_n=3)
        await first_cycle(feed, clock)
        return feed.symbols

    symbols = asyncio.run(scenario())
    assert stored(warehouse).get_column("ts").max() == T0 + 41 * MINUTE
    asset_client = SimExchange("sim", clock=lambda: T0 + 41 * MINUTE + timedelta(seconds=30))
    ingest_candles(asset_client, warehouse, timeframe="1m", days=[T0.date().isoformat()], symbols=symbols)
    frame = stored(warehouse)
    assert frame.get_column("ts").max() == T0 + 41 * MINUTE
    assert frame.equals(expected(symbols, T0.replace(hour=0), T0 + 42 * MINUTE, T0 + 42 * MINUTE))


def test_restart_and_gap_repair_on_both_engines(warehouse_url: str) -> None:
    store = Warehouse.from_url(warehouse_url)
    ingest_markets(SimExchange("sim", clock=lambda: T0), store)

    async def scenario() -> list[str]:
        clock = ManualClock(T0 + 5 * MINUTE + SETTLE)
        feed = make_feed(store, clock, top_n=3, backfill=10)
        await first_cycle(feed, clock)
        clock.advance_to(T0 + 25 * MINUTE + SETTLE)  # down for 20 minutes, then restarted twice
        await first_cycle(make_feed(store, clock, top_n=3, backfill=10), clock)
        await first_cycle(make_feed(store, clock, top_n=3, backfill=10), clock)
        return feed.symbols

    symbols = asyncio.run(scenario())
    assert stored(store).equals(expected(symbols, T0 - 5 * MINUTE, T0 + 25 * MINUTE, T0 + 25 * MINUTE))


def test_the_running_feed_rereads_the_universe_and_picks_up_a_new_declaration(warehouse: Warehouse) -> None:
    async def scenario() -> None:
        clock = ManualClock(T0 + 10 * MINUTE + SETTLE)
        feed = make_feed(warehouse, clock, top_n=2, backfill=5, universe_refresh_s=120.0)
        feed_task = asyncio.create_task(CandleFeed([feed], health_interval_s=0).run(stop := asyncio.Event()))
        await eventually(lambda: feed.health.last_minute == T0 + 9 * MINUTE, "the start-up backfill")
        declared = next(s for s in SimExchange("sim", clock=clock.now).load_markets().get_column("symbol")
                        if s not in feed.symbols and s.endswith("/USDT"))
        warehouse.declare_markets(pl.DataFrame({"exchange": ["sim"], "symbol": [declared], "timeframes": ["1m"],
                                                "reason": ["a test"], "created_at": [T0]}))
        for minute in (11, 12, 13):
            await eventually(lambda: clock.sleepers > 0, "the feed waiting for the next close")
            clock.advance_to(T0 + minute * MINUTE + SETTLE)
            await eventually(lambda m=minute: feed.health.last_minute == T0 + (m - 1) * MINUTE, f"minute {minute - 1}")
        stop.set()
        await asyncio.wait_for(feed_task, 30)
        assert declared in feed.symbols and len(feed.symbols) == 3  # re-read after 120 s, at 10:12:02
        # first fetched at 10:13:02, from 5 minutes of backfill: 10:08 .. 10:12
        assert stored(warehouse).filter(pl.col("symbol") == declared).get_column("ts").to_list() == [
            T0 + m * MINUTE for m in range(8, 13)]

    asyncio.run(scenario())
