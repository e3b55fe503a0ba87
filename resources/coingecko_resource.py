"""CoinGecko as a Dagster resource: a live implementation and a simulated twin."""

from __future__ import annotations

from typing import Protocol

import polars as pl
from dagster import ConfigurableResource
from pydantic import Field


class CoinGeckoSource(Protocol):
    def top_markets(self, n: int = 2000) -> pl.DataFrame: ...

    def close(self) -> None: ...


class CoinGeckoResource(ConfigurableResource):
    """Interface: ``client()`` returns something with ``top_markets(n)`` (COINGECKO_SCHEMA)."""

    def client(self) -> CoinGeckoSource:
        raise TypeError("CoinGeckoResource is an interface: configure LiveCoinGeckoResource or SimCoinGeckoResource")


class LiveCoinGeckoResource(CoinGeckoResource):
    """The real CoinGecko v3 API over HTTPS (key optional; pass it as an ``EnvVar``)."""

    base_url: str = "https://api.coingecko.com/api/v3"
    api_key: str | None = None

    def client(self) -> CoinGeckoSource:
        from resources.coingecko import CoinGeckoClient

        return CoinGeckoClient(base_url=self.base_url, api_key=self.api_key)


class SimCoinGeckoResource(CoinGeckoResource):
    """A twin of CoinGecko consistent with the simulated exchange's prices."""

    seed: int = 42
    frozen_clock: str | None = Field(default=None, description="ISO UTC instant to freeze the clock at")

    def client(self) -> CoinGeckoSource:
        from resources.coingecko_sim import SimCoinGecko
        from resources.exchanges.resource import fixed_clock

        return SimCoinGecko(seed=self.seed, clock=fixed_clock(self.frozen_clock) if self.frozen_clock else None)
