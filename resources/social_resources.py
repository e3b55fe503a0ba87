"""Dagster resources of the social path: DexScreener (live / simulated, behind a persistent
cache) and the parsed ``config/sources.yaml``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from resources.dexscreener import DexScreenerSource
from resources.social_config import SignalworksSocialConfig, load_social_config
from resources.ttl_cache import CachedDexScreener, PersistentTTLCache


@dataclass(frozen=True)
class DexScreenerSession:
    """One run's DexScreener: ``client`` uncached (price snapshots that must be fresh) and
    ``cached``, the same client behind the persistent cache."""

    client: DexScreenerSource
    cached: CachedDexScreener


class DexScreenerResource(ConfigurableResource):
    """Interface: ``session()`` opens a client and the cache and closes both; ``client()`` is
    what implementations provide."""

    cache_path: str = Field(description="SQLite file of the persistent TTL cache (and of the shared rate limit)")
    price_ttl_s: float = 300.0
    metadata_ttl_s: float = 86_400.0

    def client(self) -> DexScreenerSource:
        """A new client; the caller closes it (:meth:`session` does)."""
        raise TypeError("DexScreenerResource is an interface: use LiveDexScreenerResource or SimDexScreenerResource")

    def cached(self, client: DexScreenerSource) -> CachedDexScreener:
        """``client`` behind the persistent cache; the caller closes ``.cache`` (:meth:`session` does)."""
        Path(self.cache_path).parent.mkdir(parents=True, exist_ok=True)
        return CachedDexScreener(client, PersistentTTLCache(Path(self.cache_path)),
                                 price_ttl_s=self.price_ttl_s, metadata_ttl_s=self.metadata_ttl_s)

    @contextmanager
    def session(self) -> Iterator[DexScreenerSession]:
        """One client (one connection pool, one place the shared rate limit is taken) for
        both the fresh and the cached lookups, and the cache file; both closed on exit, even
        when the body raises."""
        client = self.client()
        try:
            cached = self.cached(client)
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

    def client(self) -> DexScreenerSource:
        """A live client whose requests count against the limit every process on this machine
        shares through the cache file (DexScreener limits per IP, not per client)."""
        from resources.dexscreener import DexScreenerClient, shared_rate_limit

        return DexScreenerClient(base_url=self.base_url, rate_limit=shared_rate_limit(Path(self.cache_path)))


class SimDexScreenerResource(DexScreenerResource):
    seed: int = 42
    frozen_clock: str | None = None

    def client(self) -> DexScreenerSource:
        from resources.dexscreener_sim import SimDexScreener
        from resources.exchanges.resource import fixed_clock

        return SimDexScreener(seed=self.seed, clock=fixed_clock(self.frozen_clock) if self.frozen_clock else None)


class SocialConfigResource(ConfigurableResource):
    """``config/sources.yaml``: sources and their windows/weights, spam rules, publishers."""

    config_path: str

    def load(self) -> SignalworksSocialConfig:
        return load_social_config(Path(self.config_path))
