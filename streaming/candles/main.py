"""``signalworks feed``: build the exchange clients and the warehouse, run the feeds until a signal.

This module must not import Dagster or ``orchestration``: ``orchestration.cli`` reads the
settings (``SIGNALWORKS_EXCHANGES``, ``SIGNALWORKS_SIM_SEED``, ``SIGNALWORKS_QUOTE``,
``SIGNALWORKS_CANDLES_1M_SYMBOLS``, the warehouse URL) and passes them to :func:`main`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import make_url

from resources.exchanges.base import LIVE_EXCHANGES, ExchangeClient
from resources.retry import RetryPolicy
from resources.warehouse.store import Warehouse
from streaming.candles.exchange_feed import (
    ClientFactory,
    ExchangeFeed,
    FeedClock,
    FeedConfig,
    WallFeedClock,
)
from streaming.candles.supervise import CandleFeed
from streaming.listen import with_connect_timeout
from streaming.supervisor import DEFAULT_BACKOFF, BackoffPolicy, install_signal_handlers

logger = logging.getLogger(__name__)


def is_simulated(exchange: str) -> bool:
    """``sim`` and ``sim_<venue>`` are the simulator (as in :mod:`resources.exchanges.resource`)."""
    return exchange == "sim" or exchange.startswith("sim_")


@dataclass(frozen=True)
class Clients:
    """Builds a client per exchange on each (re)connect: the simulator or live ccxt.

    Live clients retry a transient failure once, briefly: the next cycle repeats the same
    window anyway, so a long retry would only delay the other symbols' minute.
    """

    clock: FeedClock
    sim_seed: int = 42
    sim_symbols: int = 87  # SIGNALWORKS_SIM_SYMBOLS: the same simulated universe as the Dagster resources
    quote: str = "USDT"
    url_overrides: dict[str, str] | None = None
    timeout_ms: int = 10_000

    def __call__(self, exchange: str, market_types: Sequence[str]) -> ExchangeClient:
        if is_simulated(exchange):
            from resources.exchanges.sim import SimExchange

            return SimExchange(exchange, seed=self.sim_seed, clock=self.clock.now, symbols=self.sim_symbols)
        if exchange in LIVE_EXCHANGES:
            from resources.exchanges.ccxt_client import CcxtExchange

            return CcxtExchange(exchange, market_types=tuple(market_types), url_overrides=self.url_overrides,
                                retry=RetryPolicy(attempts=2, base_delay=0.25, max_delay=2.0),
                                clock=self.clock.now, timeout_ms=self.timeout_ms, quote=self.quote)
        raise ValueError(f"unknown exchange {exchange!r}: use sim, sim_<venue> or one of {', '.join(LIVE_EXCHANGES)}")


def request_interval_s(exchange: str) -> float:
    """Seconds between request starts: ccxt's rate limit of the exchange; 0 for the simulator."""
    if is_simulated(exchange):
        return 0.0
    import ccxt

    instance: Any = getattr(ccxt, exchange)()
    return float(instance.rateLimit) / 1000.0


def build_feed(exchanges: Sequence[str], *, warehouse: Warehouse, config: FeedConfig,
               client_factory: ClientFactory, clock: FeedClock, health_interval_s: float = 30.0,
               backoff: BackoffPolicy = DEFAULT_BACKOFF) -> CandleFeed:
    """A :class:`CandleFeed` with one :class:`ExchangeFeed` per exchange."""
    feeds = [ExchangeFeed(exchange, client_factory=client_factory, warehouse=warehouse, config=config, clock=clock,
                          request_interval_s=request_interval_s(exchange)) for exchange in exchanges]
    return CandleFeed(feeds, backoff=backoff, health_interval_s=health_interval_s)


def _parser(exchanges: Sequence[str], top_n: int) -> argparse.ArgumentParser:
    defaults = FeedConfig()
    parser = argparse.ArgumentParser(prog="signalworks feed", description=(
        "Write each closed 1m candle of the 1m universe into the warehouse seconds after its close."))
    parser.add_argument("--exchanges", default=",".join(exchanges),
                        help="comma-separated exchange ids (default: SIGNALWORKS_EXCHANGES)")
    parser.add_argument("--symbols", type=int, default=top_n,
                        help="most liquid symbols per exchange, 0 = all (default: SIGNALWORKS_CANDLES_1M_SYMBOLS)")
    parser.add_argument("--market-types", default=",".join(defaults.market_types), help="spot and/or swap")
    parser.add_argument("--settle-seconds", type=float, default=defaults.settle_s,
                        help="wait after each minute's close before fetching it")
    parser.add_argument("--concurrency", type=int, default=defaults.concurrency, help="requests in flight per exchange")
    parser.add_argument("--backfill-minutes", type=int, default=defaults.backfill_minutes,
                        help="history fetched for a symbol with no stored 1m candle")
    parser.add_argument("--repair-max-minutes", type=int, default=defaults.repair_max_minutes,
                        help="longest gap repaired on start or reconnect")
    parser.add_argument("--universe-refresh-minutes", type=float, default=defaults.universe_refresh_s / 60,
                        help="how often the tracked symbols are re-read")
    parser.add_argument("--health-interval", type=float, default=30.0, help="seconds between health lines")
    parser.add_argument("--log-level", default="INFO")
    return parser


def main(argv: Sequence[str] | None, *, warehouse_url: str, exchanges: Sequence[str], sim_seed: int = 42,
         quote: str = "USDT", top_n: int = 150, sim_symbols: int = 87) -> int:
    """Run until SIGTERM/SIGINT (exit 0); exit 2 on a configuration error."""
    args = _parser(exchanges, top_n).parse_args(list(argv or []))
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    chosen = [e.strip().lower() for e in args.exchanges.split(",") if e.strip()]
    try:
        config = FeedConfig(top_n=args.symbols, settle_s=args.settle_seconds, concurrency=args.concurrency,
                            market_types=tuple(t.strip() for t in args.market_types.split(",") if t.strip()),
                            backfill_minutes=args.backfill_minutes, repair_max_minutes=args.repair_max_minutes,
                            universe_refresh_s=args.universe_refresh_minutes * 60)
        unknown = [e for e in chosen if not is_simulated(e) and e not in LIVE_EXCHANGES]
        if unknown or not chosen or set(config.market_types) - {"spot", "swap"}:
            raise ValueError(f"exchanges must be sim, sim_<venue> or one of {', '.join(LIVE_EXCHANGES)} "
                             f"(got {chosen}); market types spot and/or swap (got {list(config.market_types)})")
    except ValueError as error:
        print(f"signalworks feed: invalid configuration: {error}")
        return 2
    clock = WallFeedClock()
    warehouse = Warehouse.from_url(with_connect_timeout(warehouse_url))
    feed = build_feed(chosen, warehouse=warehouse, config=config, clock=clock,
                      client_factory=Clients(clock, sim_seed=sim_seed, quote=quote, sim_symbols=sim_symbols),
                      health_interval_s=args.health_interval)
    logger.info("feeding 1m candles of %s into %s (top %d + declarations, settle %.1f s)", ", ".join(chosen),
                make_url(warehouse_url).render_as_string(hide_password=True), config.top_n, config.settle_s)

    async def _run() -> None:
        # fetches and writes run in worker threads: enough of them for every exchange's concurrency
        workers = config.concurrency * len(chosen) + 2
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(workers, thread_name_prefix="feed"))
        stop = asyncio.Event()
        uninstall = install_signal_handlers(stop)
        try:
            await feed.run(stop)
        finally:
            uninstall()

    asyncio.run(_run())
    stored = sum(h.candles for h in feed.health.values())
    print(f"feed stopped: {stored} candles stored; " + "; ".join(feed.health_lines()))
    return 0
