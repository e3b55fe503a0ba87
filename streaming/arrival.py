"""Arrival snapshots: the sidecar prices a called token the moment the call arrives.

A validation run starts 5-10 s after its call (the daemon's sensor loop, then the run's start-up),
which is a sixth of the default 60 s window: a pump that starts with the call would be missed by
the reaction factor. So the sidecar fetches each called token's DexScreener pair as soon as the
event is accepted and stores it in the persistent cache the validation runs share
(``$SIGNALWORKS_HOME/cache/dexscreener.sqlite``); the run takes a cached snapshot fetched no
earlier than shortly before the call, and not after the run's present, as the call's arrival
snapshot (see ``assets/validation.py``).

Fetches run on one worker thread, batched per chain (DexScreener's ``tokens`` endpoint takes 30
addresses), and a token priced in the last ``fresh_within_s`` seconds is not fetched again, so a
burst of echoes costs one request. A failed fetch is logged and counted; it never stops the
sidecar (the run then takes the arrival snapshot itself, later).

In ``lockstep`` (a replay on its own :class:`~resources.clock.StreamClock`), an event's tokens are
priced before the listener takes the next event, so each call is priced at exactly its stream
time and a replay's arrival snapshots are the same on every run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from resources.exchanges.base import Clock
from resources.exchanges.errors import MarketDataError
from resources.ttl_cache import CachedDexScreener, PersistentTTLCache
from streaming.events import Event

logger = logging.getLogger(__name__)

#: DexScreener's ``tokens/v1/{chain}/{addresses}`` takes at most this many addresses.
MAX_ADDRESSES = 30


@dataclass
class ArrivalStats:
    """Tokens asked for, fetched, served from a fresh cache entry, and fetch errors."""

    requested: int = 0
    fetched: int = 0
    reused: int = 0
    errors: int = 0


class ArrivalPricer:
    """Prices the tokens of accepted events in the background (see the module docstring).

    Parameters
    ----------
    dex
        The cached DexScreener client (live or simulated) on the shared cache file.
    batch_s
        How long the worker gathers calls before fetching, so calls of one burst share a request.
    fresh_within_s
        A cached price younger than this is the arrival snapshot already.
    lockstep
        Price each event's tokens before :meth:`arrived` returns (no batching across events).
    """

    def __init__(self, dex: CachedDexScreener, *, batch_s: float = 0.2, fresh_within_s: float = 15.0,
                 lockstep: bool = False) -> None:
        self.dex = dex
        self.batch_s = batch_s
        self.fresh_within_s = fresh_within_s
        self.lockstep = lockstep
        self.stats = ArrivalStats()
        self._queue: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="arrival-prices")
        self._worker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.create_task(self._work(), name="arrival-prices")

    def observe(self, event: Event) -> None:
        """Queue the event's tokens (an EVM address whose chain nothing named is left to the run,
        which looks it up chain by chain)."""
        for item in _priceable(event):
            self._queue.put_nowait(item)

    async def arrived(self, event: Event) -> None:
        """The listener's hook for each accepted event: :meth:`observe` it, or in ``lockstep``
        price its tokens before returning."""
        if not self.lockstep:
            self.observe(event)
            return
        loop = asyncio.get_running_loop()
        for chain, addresses in _by_chain(_priceable(event)).items():
            for start in range(0, len(addresses), MAX_ADDRESSES):
                await loop.run_in_executor(self._executor, self._price, chain, addresses[start:start + MAX_ADDRESSES])

    async def close(self, timeout_s: float = 10.0) -> None:
        """Price what is queued (within ``timeout_s``), then stop the worker and close the cache
        and the client (the live one holds a connection pool; the simulated twin holds nothing)."""
        if self._worker is not None:
            self._queue.put_nowait(None)
            try:
                await asyncio.wait_for(self._worker, timeout_s)
            except TimeoutError:
                logger.warning("arrival prices: %d tokens left unpriced at shutdown", self._queue.qsize())
            self._worker = None
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.dex.cache.close()
        close_client = getattr(self.dex.client, "close", None)
        if callable(close_client):
            close_client()

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._queue.get()
            if first is None:
                return
            await asyncio.sleep(self.batch_s)
            batch, stopping = [first], False
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                else:
                    batch.append(item)
            for chain, addresses in _by_chain(batch).items():
                for start in range(0, len(addresses), MAX_ADDRESSES):
                    chunk = addresses[start:start + MAX_ADDRESSES]
                    await loop.run_in_executor(self._executor, self._price, chain, chunk)
            if stopping:
                return

    def _price(self, chain: str, addresses: list[str]) -> None:
        self.stats.requested += len(addresses)
        try:
            outcome = self.dex.refresh(chain, addresses, fresh_within_s=self.fresh_within_s)
        except (MarketDataError, ValueError, OSError) as error:
            self.stats.errors += len(addresses)
            logger.warning("arrival prices for %d %s tokens failed: %s", len(addresses), chain, error)
            return
        self.stats.fetched += outcome.fetched
        self.stats.reused += outcome.reused


def _priceable(event: Event) -> list[tuple[str, str]]:
    return [(token.chain, token.address) for token in event.tokens if token.chain != "evm"]


def _by_chain(items: list[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for chain, address in items:
        if address not in grouped.setdefault(chain, []):
            grouped[chain].append(address)
    return grouped


def arrival_pricer_from_env(environ: Mapping[str, str], home: Path, *, clock: Clock | None = None,
                            epoch: datetime | None = None, lockstep: bool = False) -> ArrivalPricer:
    """The pricer on the same DexScreener (``SIGNALWORKS_DEXSCREENER``: sim or live) and cache
    file as the Dagster code location (``orchestration/definitions.py``).

    ``clock`` and ``epoch`` put the simulated DexScreener (and the cache's expiry) on a replay's
    own clock, anchored at its stream's start (see :class:`resources.dexscreener_sim.SimDexScreener`);
    the live API has only the real time, so they are refused with it.
    """
    mode = (environ.get("SIGNALWORKS_DEXSCREENER") or "sim").lower()
    cache_path = (home / "cache" / "dexscreener.sqlite").resolve()
    if mode == "live":
        if clock is not None or epoch is not None:
            raise ValueError("the live DexScreener runs on the real time: a replay clock needs SIGNALWORKS_DEXSCREENER=sim")
        from resources.dexscreener import DexScreenerClient, shared_rate_limit

        client = DexScreenerClient(base_url=environ.get("SIGNALWORKS_DEXSCREENER_BASE_URL")
                                   or "https://api.dexscreener.com", rate_limit=shared_rate_limit(cache_path))
    elif mode == "sim":
        from resources.dexscreener_sim import SimDexScreener

        client = SimDexScreener(seed=int(environ.get("SIGNALWORKS_SIM_SEED") or 42), clock=clock, epoch=epoch)
    else:
        raise ValueError(f"SIGNALWORKS_DEXSCREENER must be sim or live, got {mode!r}")
    cache = (PersistentTTLCache(cache_path) if clock is None
             else PersistentTTLCache(cache_path, clock=lambda: clock().timestamp()))
    return ArrivalPricer(CachedDexScreener(client, cache), lockstep=lockstep)
