"""Dagster resources of the social path: DexScreener (live / simulated, behind a persistent
cache) and the parsed ``config/sources.yaml``."""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from resources.dexscreener import DexScreenerSource
from resources.social_config import SignalworksSocialConfig, load_social_config
from resources.ttl_cache import CachedDexScreener, PersistentTTLCache


class DexScreenerResource(ConfigurableResource):
    """Interface: ``client()`` (uncached, for price snapshots) and ``cached(client)``."""

    cache_path: str = Field(description="SQLite file of the persistent TTL cache")
    price_ttl_s: float = 300.0
    metadata_ttl_s: float = 86_400.0

    def client(self) -> DexScreenerSource:
        raise TypeError("DexScreenerResource is an interface: use LiveDexScreenerResource or SimDexScreenerResource")

    def cached(self, client: DexScreenerSource) -> CachedDexScreener:
        Path(self.cache_path).parent.mkdir(parents=True, exist_ok=True)
        return CachedDexScreener(client, PersistentTTLCache(Path(self.cache_path)),
                                 price_ttl_s=self.price_ttl_s, metadata_ttl_s=self.metadata_ttl_s)


class LiveDexScreenerResource(DexScreenerResource):
    base_url: str = "https://api.dexscreener.com"

    def client(self) -> DexScreenerSource:
        from resources.dexscreener import DexScreenerClient

        return DexScreenerClient(base_url=self.base_url)


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
