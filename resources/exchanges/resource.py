"""The exchange resource: hands out a client per exchange id (simulated or live ccxt)."""

from __future__ import annotations

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

    def clock(self) -> Clock:
        if self.frozen_clock:
            return fixed_clock(self.frozen_clock)
        return lambda: datetime.now(UTC)

    def client(self, exchange: str) -> ExchangeClient:
        """A new client for ``exchange``; the caller closes it."""
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
                clock=self.clock(),
                failing_symbols=frozenset(self.sim_failing_symbols),
            )
        if exchange in LIVE_EXCHANGES:
            from resources.exchanges.ccxt_client import CcxtExchange

            creds = next((c for c in self.credentials if c.exchange == exchange), None)
            return CcxtExchange(
                exchange,
                api_key=creds.api_key if creds else None,
                secret=creds.secret if creds else None,
                password=creds.password if creds else None,
                url_overrides=self.url_overrides or None,
                clock=self.clock() if self.frozen_clock else None,
                quote=self.quote,
            )
        raise UnknownExchangeError(
            f"unknown exchange {exchange!r}: use sim, sim_<venue> or one of {', '.join(LIVE_EXCHANGES)}"
        )
