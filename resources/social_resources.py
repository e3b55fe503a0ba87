"""Dagster resources of the social path: DexScreener (live / simulated, behind a persistent
cache) and the parsed ``config/sources.yaml``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from resources.clock import FrozenClock, RunClock, StreamClock, WallClock, parse_instant
from resources.dexscreener import DexScreenerSource
from resources.exchanges.base import Clock
from resources.social_config import SignalworksSocialConfig, load_social_config
from resources.ttl_cache import CachedDexScreener, PersistentTTLCache


@dataclass(frozen=True)
class DexScreenerSession:
    """One run's DexScreener: ``client`` uncached (price snapshots that must be fresh) and
    ``cached``, the same client behind the persistent cache."""

    client: DexScreenerSource
    cached: CachedDexScreener


class DexScreenerResource(ConfigurableResource):
    """Interface: ``client(clock)`` (uncached, for price snapshots), ``cached(client, clock)``,
    ``session(clock)`` which opens both and closes them, and ``run_clock(first_call)``, the clock a
    validation run reads and waits on."""

    cache_path: str = Field(description="SQLite file of the persistent TTL cache (and of the shared rate limit)")
    price_ttl_s: float = 300.0
    metadata_ttl_s: float = 86_400.0

    def client(self, clock: Clock | None = None) -> DexScreenerSource:
        """A new client; the caller closes it (:meth:`session` does)."""
        raise TypeError("DexScreenerResource is an interface: use LiveDexScreenerResource or SimDexScreenerResource")

    def cached(self, client: DexScreenerSource, clock: Clock | None = None) -> CachedDexScreener:
        """``client`` behind the persistent cache; the caller closes ``.cache`` (:meth:`session` does)."""
        Path(self.cache_path).parent.mkdir(parents=True, exist_ok=True)
        cache = (PersistentTTLCache(Path(self.cache_path)) if clock is None
                 else PersistentTTLCache(Path(self.cache_path), clock=lambda: clock().timestamp()))
        return CachedDexScreener(client, cache, price_ttl_s=self.price_ttl_s, metadata_ttl_s=self.metadata_ttl_s)

    def run_clock(self, first_call: datetime | None) -> RunClock:
        """The real time; the simulated twin can run on a replay's own clock instead."""
        del first_call
        return WallClock()

    @contextmanager
    def session(self, clock: Clock | None = None) -> Iterator[DexScreenerSession]:
        """One client (one connection pool, one place the shared rate limit is taken) for
        both the fresh and the cached lookups, and the cache file; both closed on exit, even
        when the body raises. ``clock`` is the run's (:meth:`run_clock`): the simulated twin's
        market and the cache's expiry follow it."""
        client = self.client(clock)
        try:
            cached = self.cached(client, clock)
            try:
                yield DexScreenerSession(client=client, cached=cached)
            finally:
                cached.cache.close()
        finally:
            close = getattr(client, "close", None)  # the simulated twin holds nothing to close
            if callable(close):
                close()


class LiveDexScreenerResource(DexScreenerResource):
    base_url: str = "https://api.dexscreener.com"

    def client(self, clock: Clock | None = None) -> DexScreenerSource:
        """A live client whose requests count against the limit every process on this machine
        shares through the cache file (DexScreener limits per IP, not per client)."""
        from resources.dexscreener import DexScreenerClient, shared_rate_limit

        del clock  # the live API answers at the real time only
        return DexScreenerClient(base_url=self.base_url, rate_limit=shared_rate_limit(Path(self.cache_path)))


class SimDexScreenerResource(DexScreenerResource):
    seed: int = 42
    frozen_clock: str | None = Field(default=None, description="ISO UTC instant to freeze the clock at")
    epoch: str | None = Field(default=None, description="ISO UTC instant the simulated market starts at "
                              "(a replay's stream start: the same market on any day); default the Unix epoch")
    stream_speed: float | None = Field(default=None, description="validate on the stream's own clock: a run's "
                                       "clock starts at its first call and moves only by its waits, each taking "
                                       "wait / stream_speed real seconds")

    def client(self, clock: Clock | None = None) -> DexScreenerSource:
        from resources.dexscreener_sim import SimDexScreener

        epoch = parse_instant(self.epoch) if self.epoch else None
        if clock is None and self.frozen_clock:
            clock = FrozenClock(parse_instant(self.frozen_clock)).now
        return SimDexScreener(seed=self.seed, clock=clock, epoch=epoch)

    def run_clock(self, first_call: datetime | None) -> RunClock:
        if self.frozen_clock:
            return FrozenClock(parse_instant(self.frozen_clock))
        if self.stream_speed is not None and first_call is not None:
            return StreamClock(first_call, speed=self.stream_speed)
        return WallClock()


class SocialConfigResource(ConfigurableResource):
    """``config/sources.yaml``: sources and their windows/weights, spam rules, publishers."""

    config_path: str

    def load(self) -> SignalworksSocialConfig:
        return load_social_config(Path(self.config_path))
