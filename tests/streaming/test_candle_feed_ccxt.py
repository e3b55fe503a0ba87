"""The live 1m candle feed through real ccxt (binance) against the loopback replay of real candles.

The replay serves the real freqtrade BTC 1m candles (and the same candles as ETHUSDT) in Binance's
wire format; the feed's manual clock decides which minutes have closed. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from ml.marketdata.frames import MARKET_SCHEMA
from ml.marketdata.universe import rank_by_liquidity
from resources.warehouse.store import Warehouse
from streaming.candles.exchange_feed import MINUTE, ExchangeFeed, FeedConfig, stored_cursors
from streaming.candles.main import Clients, request_interval_s
from tests.streaming.test_candle_feed import ManualClock
from tests.support.exchange_replay import ExchangeReplay, guard_loopback

pytestmark = [pytest.mark.fixtures, pytest.mark.timeout(120)]

KLINES = r"api\.binance\.com/api/v3/klines"
SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]  # SOL/USDT is listed but the replay has no candles for it


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    guard_loopback(monkeypatch)


@pytest.fixture
def replay() -> Iterator[ExchangeReplay]:
    with ExchangeReplay(kline_symbols={"api.binance.com": {"ETHUSDT"}}) as server:
        yield server


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    store = Warehouse.from_url(f"sqlite:///{tmp_path / 'warehouse.db'}")
    markets = pl.DataFrame([{"exchange": "binance", "symbol": s, "base": s.split("/")[0], "quote": "USDT",
                             "settle": None, "market_type": "spot", "is_spot": True, "contract": False,
                             "active": True, "quote_volume_24h": 3e9 / (i + 1)} for i, s in enumerate(SYMBOLS)],
                           schema=MARKET_SCHEMA)
    ranked = rank_by_liquidity(markets).with_columns(
        pl.lit(datetime(2017, 11, 8, tzinfo=UTC)).cast(pl.Datetime("ms", "UTC")).alias("updated_at"))
    store.replace_markets(ranked, exchange="binance")
    return store


def real(replay: ExchangeReplay, symbols: list[str], start: datetime, end: datetime) -> pl.DataFrame:
    """The real candles the replay holds in ``[start, end)``, as stored rows, built row by row."""
    lo, hi = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    rows = [{"exchange": "binance", "symbol": symbol, "timeframe": "1m",
             "ts": datetime.fromtimestamp(c[0] / 1000, tz=UTC), "open": c[1], "high": c[2], "low": c[3],
             "close": c[4], "volume": c[5]}
            for symbol in sorted(symbols) for c in replay.candles if lo <= c[0] < hi]
    return pl.DataFrame(rows).with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")))


def feed_for(replay: ExchangeReplay, warehouse: Warehouse, clock: ManualClock) -> ExchangeFeed:
    config = FeedConfig(top_n=3, backfill_minutes=20, concurrency=4)
    return ExchangeFeed("binance", client_factory=Clients(clock, url_overrides=replay.url_overrides()),
                        warehouse=warehouse, config=config, clock=clock,
                        request_interval_s=request_interval_s("binance"))


async def connect_and_cycle(feed: ExchangeFeed) -> None:
    """What :meth:`ExchangeFeed.run` does on (re)connect, then its first cycle."""
    client = feed._factory(feed.exchange, feed.config.market_types)
    try:
        await feed.refresh_universe(client)
        feed.cursors = stored_cursors(feed._warehouse, feed.exchange)
        await feed.cycle(client)
    finally:
        client.close()


def test_real_ccxt_stores_closed_candles_each_minute_repairs_a_gap_and_restarts_idempotently(
        replay: ExchangeReplay, warehouse: Warehouse) -> None:
    start_ms = replay.candles[6000][0]
    t0 = datetime.fromtimestamp(start_ms / 1000, tz=UTC)
    clock = ManualClock(t0 + timedelta(seconds=2))
    ok = ["BTC/USDT", "ETH/USDT"]

    async def scenario() -> None:
        feed = feed_for(replay, warehouse, clock)
        client = feed._factory("binance", ("spot",))
        try:
            await feed.refresh_universe(client)
            assert feed.symbols == sorted(SYMBOLS)
            await feed.cycle(client)  # the start-up backfill: 20 closed minutes
            frame = warehouse.read_candles(timeframe="1m", exchange="binance")
            assert frame.equals(real(replay, ok, t0 - 20 * MINUTE, t0))
            assert "SOL/USDT" in feed.health.failing  # a permanent error: skipped from now on

            asked = len(replay.requests_to(KLINES))
            clock.advance_to(t0 + timedelta(seconds=58))
            assert (await feed.cycle(client)).stored == 0  # the minute has not closed
            clock.advance_to(t0 + MINUTE + timedelta(seconds=2))
            report = await feed.cycle(client)
            assert report.fetched == tuple(ok) and report.failures == {}
            assert warehouse.read_candles(timeframe="1m", exchange="binance").equals(
                real(replay, ok, t0 - 20 * MINUTE, t0 + MINUTE))
            just_closed = replay.requests_to(KLINES)[asked:]
            assert sorted(r.query["symbol"] for r in just_closed) == ["BTCUSDT", "ETHUSDT"]
            assert {int(r.query["startTime"]) for r in just_closed} == {start_ms}
        finally:
            client.close()

        # a restart in the same minute asks for nothing and rewrites nothing
        before = warehouse.read_candles(timeframe="1m", exchange="binance")
        asked = len(replay.requests_to(KLINES))
        await connect_and_cycle(feed_for(replay, warehouse, clock))
        assert warehouse.read_candles(timeframe="1m", exchange="binance").equals(before)
        assert {r.query["symbol"] for r in replay.requests_to(KLINES)[asked:]} <= {"SOLUSDT"}

        # 45 minutes down, then a new start repairs the gap from each symbol's newest candle
        clock.advance_to(t0 + 46 * MINUTE + timedelta(seconds=2))
        await connect_and_cycle(feed_for(replay, warehouse, clock))
        repaired = warehouse.read_candles(timeframe="1m", exchange="binance")
        assert repaired.equals(real(replay, ok, t0 - 20 * MINUTE, t0 + 46 * MINUTE))
        assert repaired.select("symbol", "ts").is_duplicated().sum() == 0

    asyncio.run(scenario())
