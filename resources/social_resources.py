"""Dagster resources of the social path: DexScreener (live / simulated, behind a persistent
cache) and the parsed ``config/sources.yaml``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from resources.clock import FrozenClock, RunClock, StreamClock, WallClock, parse_instant
from resources.dexscreener import DexScreenerSource
from resources.exchanges.base import Clock
from resources.ttl_cache import CachedDexScreener, PersistentTTLCache
from streaming.config import SignalworksSocialConfig, load_social_config


class DexScreenerResource(ConfigurableResource):
    """Interface: ``client(clock)`` (uncached, for price snapshots), ``cached(client, clock)``
    and ``run_clock(first_call)``, the clock a validation run reads and waits on."""

    cache_path: str = Field(description="SQLite file of the persistent TTL cache")
    price_ttl_s: float = 300.0
    metadata_ttl_s: float = 86_400.0

    def client(self, clock: Clock | None = None) -> DexScreenerSource:
        raise TypeError("DexScreenerResource is an interface: use LiveDexScreenerResource or SimDexScreenerResource")

    def cached(self, client: DexScreenerSource, clock: Clock | None = None) -> CachedDexScreener:
        Path(self.cache_path).parent.mkdir(parents=True, exist_ok=True)
        cache = (PersistentTTLCache(Path(self.cache_path)) if clock is None
                 else PersistentTTLCache(Path(self.cache_path), clock=lambda: clock().timestamp()))
        return CachedDexScreener(client, cache, price_ttl_s=self.price_ttl_s, metadata_ttl_s=self.metadata_ttl_s)

    def run_clock(self, first_call: datetime | None) -> RunClock:
        """The real time; the simulated twin can run on a replay's own clock instead."""
        del first_call
        return WallClock()


class LiveDexScreenerResource(DexScreenerResource):
    base_url: str = "https://api.dexscreener.com"

    def client(self, clock: Clock | None = None) -> DexScreenerSource:
        from resources.dexscreener import DexScreenerClient

        del clock  # the live API answers at the real time only
        return DexScreenerClient(base_url=self.base_url)


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
