"""The exchange resource: hands out a client per exchange id (simulated or live ccxt)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from dagster import Config, ConfigurableResource
from pydantic import Field

from resources.exchanges.base import LIVE_EXCHANGES, Clock, ExchangeClient
from resources.exchanges.errors import UnknownExchangeError


class ExchangeCredentials(Config):
    """Optional API credentials for one exchange (public market data needs none)."""

    exchange: str
    api_key: str | None = None
    secret: str | None = None
    password: str | None = None


def is_simulated(exchange: str) -> bool:
    """Exchange ids ``sim`` and ``sim_<venue>`` are served by the deterministic simulator."""
    return exchange == "sim" or exchange.startswith("sim_")


def fixed_clock(iso: str) -> Clock:
    moment = datetime.fromisoformat(iso)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return lambda: moment


class ExchangeResource(ConfigurableResource):
    """Clients for the configured exchanges.

    ``sim`` / ``sim_<venue>`` ids get the simulator (:class:`resources.exchanges.sim.SimExchange`);
    binance, bybit, okx, bitget and mexc get the live ccxt client
    (:class:`resources.exchanges.ccxt_client.CcxtExchange`).
    """

    exchanges: list[str] = Field(default_factory=lambda: ["sim"])
    quote: str = "USDT"
    sim_seed: int = 42
    sim_symbols: int = Field(
        default=87, ge=1, le=2000, description="assets in the simulated universe (SIGNALWORKS_SIM_SYMBOLS)"
    )
    frozen_clock: str | None = Field(
        default=None, description="ISO UTC instant to freeze every client's clock at (drills, tests)"
    )
    sim_failing_symbols: list[str] = Field(
        default_factory=list, description="simulated symbols whose fetches fail (failure drills)"
    )
    credentials: list[ExchangeCredentials] = Field(default_factory=list)
    url_overrides: dict[str, str] = Field(
        default_factory=dict, description="API host -> base URL (point ccxt at a proxy or replay server)"
    )
    retry_attempts: int = Field(default=5, ge=1, description="attempts per exchange request (transient errors)")
    retry_base_delay_s: float = Field(default=0.5, ge=0, description="first backoff step; doubles per retry")
    retry_max_delay_s: float = Field(default=30.0, ge=0, description="longest backoff between two attempts")
    unreachable_after: int = Field(
        default=3, ge=1,
        description="symbol-days in a row failing through every retry after which an exchange is declared "
        "unreachable and not asked again in that run",
    )

    def clock(self) -> Clock:
        if self.frozen_clock:
            return fixed_clock(self.frozen_clock)
        return lambda: datetime.now(UTC)

    def client(self, exchange: str, *, market_types: Sequence[str] | None = None,
               log: logging.Logger | None = None) -> ExchangeClient:
        """A new client for ``exchange``; the caller closes it.

        ``market_types`` limits which market listings a live client loads (default spot and swap);
        ``log`` receives its retries and failures (pass a Dagster step's ``context.log``).
        """
        if exchange not in self.exchanges:
            raise UnknownExchangeError(
                f"{exchange!r} is not configured; configured exchanges: {', '.join(self.exchanges)} "
                "(set SIGNALWORKS_EXCHANGES)"
            )
        if is_simulated(exchange):
            from resources.exchanges.sim import SimExchange

            return SimExchange(
                exchange,
                seed=self.sim_seed,
                symbols=self.sim_symbols,
                clock=self.clock(),
                failing_symbols=frozenset(self.sim_failing_symbols),
            )
        if exchange in LIVE_EXCHANGES:
            from resources.exchanges.ccxt_client import CcxtExchange
            from resources.retry import RetryPolicy

            creds = next((c for c in self.credentials if c.exchange == exchange), None)
            return CcxtExchange(
                exchange,
                api_key=creds.api_key if creds else None,
                secret=creds.secret if creds else None,
                password=creds.password if creds else None,
                url_overrides=self.url_overrides or None,
                clock=self.clock() if self.frozen_clock else None,
                quote=self.quote,
                market_types=tuple(market_types or ("spot", "swap")),
                retry=RetryPolicy(attempts=self.retry_attempts, base_delay=self.retry_base_delay_s,
                                  max_delay=self.retry_max_delay_s),
                log=log,
            )
        raise UnknownExchangeError(
            f"unknown exchange {exchange!r}: use sim, sim_<venue> or one of {', '.join(LIVE_EXCHANGES)}"
        )
