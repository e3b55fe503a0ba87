"""The exchange-client contract shared by the live ccxt client and the simulator."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol, runtime_checkable

import polars as pl

#: The exchanges Signalworks talks to through ccxt.
LIVE_EXCHANGES: tuple[str, ...] = ("binance", "bybit", "okx", "bitget", "mexc")

Clock = Callable[[], datetime]


@runtime_checkable
class ExchangeClient(Protocol):
    """What every exchange client offers. All times are timezone-aware UTC.

    Implementations translate vendor errors into :mod:`resources.exchanges.errors`.
    """

    name: str

    def now(self) -> datetime:
        """The client's clock (injectable in the simulator and in tests)."""
        ...

    def load_markets(self) -> pl.DataFrame:
        """The universe: one row per market, schema :data:`ml.marketdata.frames.MARKET_SCHEMA`.

        Spot markets and USDT-settled perpetuals; ``quote_volume_24h`` from the exchange's tickers
        (null when the exchange does not report it).
        """
        ...

    def fetch_ohlcv(
        self, symbol: str, timeframe: str, start: datetime, end: datetime
    ) -> pl.DataFrame:
        """Closed candles with ``start <= ts < end``, sorted, one per ``ts``.

        Schema :data:`ml.marketdata.frames.OHLCV_SCHEMA`. Paginates as needed. A gap the exchange
        really has stays a gap (nothing is forward-filled). Raises
        :class:`~resources.exchanges.errors.UnknownSymbolError` for a symbol not listed.
        """
        ...

    def fetch_derivatives(self, symbols: list[str]) -> tuple[pl.DataFrame, dict[str, str]]:
        """Funding rate, mark price and open interest now, for perpetual ``symbols``.

        Returns the frame (schema :data:`ml.marketdata.frames.DERIVATIVES_SCHEMA`, ``ts`` = the
        observation time floored to the hour) and a mapping ``symbol -> error message`` for the
        symbols that failed; one symbol failing never stops the others.
        """
        ...

    def close(self) -> None:
        """Release network resources."""
        ...
