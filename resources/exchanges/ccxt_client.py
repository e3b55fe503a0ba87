"""The live exchange client: binance, bybit, okx, bitget and mexc through synchronous ccxt.

Vendor errors are translated once, here (:mod:`resources.exchanges.ccxt_errors`), and every call
goes through :class:`resources.retry.RetryPolicy`, which retries only the transient kind. The
offline twin is the simulator; tests run this class against a loopback replay of real responses.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import ccxt
import polars as pl

from ml.marketdata.frames import DERIVATIVES_SCHEMA, MARKET_SCHEMA, ohlcv_rows_to_frame
from ml.marketdata.timeframes import HOUR_MS, from_ms, timeframe_ms, to_ms
from resources.exchanges.base import Clock
from resources.exchanges.ccxt_errors import SHAPE_ERRORS, translate_ccxt_error
from resources.exchanges.ccxt_setup import build_exchange, ohlcv_page_limit
from resources.exchanges.errors import (
    ExchangeUnreachableError,
    MarketDataError,
    PermanentError,
    RetriesExhaustedError,
    UnknownSymbolError,
)
from resources.retry import RetryPolicy

logger = logging.getLogger(__name__)

T = TypeVar("T")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class CcxtExchange:
    """:class:`~resources.exchanges.base.ExchangeClient` over one ccxt exchange.

    Parameters
    ----------
    name
        ccxt id, one of :data:`resources.exchanges.base.LIVE_EXCHANGES`.
    api_key, secret, password
        Optional credentials (public market data needs none); never logged.
    market_types
        Which of ``"spot"`` and ``"swap"`` (USDT-settled linear perpetuals) to load; a client that
        fetches spot candles only passes ``("spot",)`` and never requests the futures listings.
    url_overrides
        ``{"https://api.binance.com": "http://127.0.0.1:PORT/api.binance.com", ...}`` (a key may
        also be a bare host): every API base URL whose origin is a key is rewritten, including
        those nested in ``urls['api']`` and built from ``{hostname}`` (a loopback replay, a proxy).
    retry
        Retry policy for transient failures (default :class:`RetryPolicy()`).
    clock
        The time source deciding which candles have closed (default: the system UTC clock).
    timeout_ms
        Per-request timeout.
    quote
        Quote (and settlement) currency of the universe.
    rate_limit_ms
        Override ccxt's minimum spacing of requests; ``None`` keeps the exchange's own.
    log
        Where retries and per-symbol failures are logged (a Dagster step passes ``context.log``
        so they reach the run log); default: this module's logger.
    """

    def __init__(
        self,
        name: str,
        *,
        api_key: str | None = None,
        secret: str | None = None,
        password: str | None = None,
        market_types: tuple[str, ...] = ("spot", "swap"),
        url_overrides: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
        clock: Clock | None = None,
        timeout_ms: int = 10_000,
        quote: str = "USDT",
        rate_limit_ms: int | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self._exchange = build_exchange(
            name,
            credentials={"apiKey": api_key, "secret": secret, "password": password},
            market_types=tuple(market_types),
            url_overrides=url_overrides,
            timeout_ms=timeout_ms,
            rate_limit_ms=rate_limit_ms,
        )
        self.name = name
        self.market_types = tuple(market_types)
        self.quote = quote
        self._retry = retry or RetryPolicy()
        self._clock = clock or _utc_now
        self._log = log or logger
        self._unreachable: ExchangeUnreachableError | None = None

    def __repr__(self) -> str:
        return (
            f"CcxtExchange({self.name!r}, market_types={self.market_types}, quote={self.quote!r})"
        )

    # --- plumbing ---------------------------------------------------------------------------

    def now(self) -> datetime:
        """The client's clock (timezone-aware UTC)."""
        return self._clock()

    def close(self) -> None:
        """Close ccxt's HTTP session."""
        self._exchange.close()

    def _call(self, fn: Callable[[], T], *, what: str) -> T:
        """Run one ccxt call with errors translated and transient ones retried."""

        def attempt() -> T:
            self._exchange.last_http_status = None
            self._exchange.last_response_headers = None
            try:
                return fn()
            except (ccxt.BaseError, *SHAPE_ERRORS) as error:
                raise translate_ccxt_error(
                    error,
                    exchange=self.name,
                    what=what,
                    now=self.now(),
                    last_status=self._exchange.last_http_status,
                    last_headers=self._exchange.last_response_headers,
                ) from error

        return self._retry.call(attempt, what=f"{self.name} {what}", log=self._log)

    def _markets(self) -> dict[str, dict[str, Any]]:
        """The loaded markets, loading them on first use.

        Every candle and derivatives call needs them, so a load that fails through every retry
        means the exchange cannot be used at all: that raises :class:`ExchangeUnreachableError`,
        and so does every later call, without asking the exchange again.
        """
        if self._unreachable is not None:
            raise self._unreachable
        if not self._exchange.markets:
            since = self.now()
            try:
                self._call(self._exchange.load_markets, what="load_markets")
            except RetriesExhaustedError as error:
                self._unreachable = ExchangeUnreachableError(
                    self.name,
                    since=since,
                    evidence=f"its markets could not be loaded in {self._retry.attempts} attempts",
                    last_error=str(error.__cause__ or error),
                )
                raise self._unreachable from error
        return self._exchange.markets

    def _market(self, symbol: str) -> dict[str, Any]:
        markets = self._markets()
        if symbol not in markets:
            close = difflib.get_close_matches(symbol, list(markets), n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise UnknownSymbolError(
                f"symbol {symbol!r} is not listed among the loaded {'/'.join(self.market_types)} "
                f"markets. Use the unified ccxt form ('BTC/USDT' spot, 'BTC/USDT:USDT' perpetual).{hint}",
                source=self.name,
            )
        return markets[symbol]

    # --- universe ---------------------------------------------------------------------------

    def _in_universe(self, market: Mapping[str, Any]) -> bool:
        if market.get("quote") != self.quote:
            return False
        if market.get("spot"):
            return "spot" in self.market_types
        return bool(
            market.get("swap")
            and market.get("linear")
            and market.get("settle") == self.quote
            and "swap" in self.market_types
        )

    def _quote_volumes(self) -> dict[str, float | None]:
        """``symbol -> 24h quote volume`` from the tickers; a failing market type is skipped."""
        volumes: dict[str, float | None] = {}
        for market_type in self.market_types:
            params = {"type": market_type} | (
                {"subType": "linear"} if market_type == "swap" else {}
            )
            try:
                tickers = self._call(
                    lambda p=params: self._exchange.fetch_tickers(None, p),
                    what=f"fetch_tickers({market_type})",
                )
            except MarketDataError as error:
                self._log.warning(
                    "%s: no 24h volumes for %s markets, keeping them with null volume: %s",
                    self.name,
                    market_type,
                    error,
                )
                continue
            for symbol, ticker in tickers.items():
                volume = ticker.get("quoteVolume") if isinstance(ticker, dict) else None
                volumes[symbol] = float(volume) if volume is not None else None
        return volumes

    def load_markets(self) -> pl.DataFrame:
        """The universe (schema ``MARKET_SCHEMA``): spot and USDT-settled linear perpetuals.

        Markets are reloaded from the exchange; ``quote_volume_24h`` comes from the tickers and
        is null where the exchange does not report it or the tickers request failed (logged).
        """
        self._call(lambda: self._exchange.load_markets(reload=True), what="load_markets")
        universe = [m for m in self._exchange.markets.values() if self._in_universe(m)]
        volumes = self._quote_volumes()
        rows = [
            {
                "exchange": self.name,
                "symbol": m["symbol"],
                "base": m.get("base"),
                "quote": m.get("quote"),
                "settle": m.get("settle"),
                "market_type": "spot" if m.get("spot") else "swap",
                "is_spot": bool(m.get("spot")),
                "contract": bool(m.get("contract")),
                "active": m.get("active"),
                "quote_volume_24h": volumes.get(m["symbol"]),
            }
            for m in universe
        ]
        self._log.info(
            "%s: %d markets in the universe (%d with volume)",
            self.name,
            len(rows),
            sum(r["quote_volume_24h"] is not None for r in rows),
        )
        return pl.DataFrame(rows, schema=MARKET_SCHEMA).sort("market_type", "symbol")

    # --- candles ----------------------------------------------------------------------------

    def fetch_ohlcv(
        self, symbol: str, timeframe: str, start: datetime, end: datetime
    ) -> pl.DataFrame:
        """Closed candles with ``start <= ts < end`` (schema ``OHLCV_SCHEMA``), sorted, unique.

        Pages forward from ``start``. Each request asks for a window that holds at most one
        page of candles (``since`` .. ``until``), so it does not matter from which end of a
        longer range an exchange fills its page. The cursor moves to just after the newest
        candle received (or past an empty window), so it strictly advances and the loop ends
        at ``end`` or at the last closed candle of :meth:`now`; a candle that has not closed at
        :meth:`now` is never returned, so later data can never leak in. Gaps stay gaps.

        Raises
        ------
        UnknownSymbolError
            ``symbol`` is not in the loaded markets (before any candle request) or the
            exchange rejects it.
        PermanentError
            A timeframe the exchange (or :mod:`ml.marketdata.timeframes`) does not offer,
            rejected credentials or parameters.
        RetriesExhaustedError
            A transient failure outlasted the retry policy.
        ValueError
            ``start`` or ``end`` is a naive datetime.
        """
        market = self._market(symbol)
        if timeframe not in self._exchange.timeframes:
            raise PermanentError(
                f"timeframe {timeframe!r} is not offered for {symbol}; choose one of "
                f"{', '.join(self._exchange.timeframes)}",
                source=self.name,
            )
        try:
            step = timeframe_ms(timeframe)
        except ValueError as error:
            raise PermanentError(str(error), source=self.name) from error
        now_ms = to_ms(self.now())
        start_ms, end_ms = to_ms(start), to_ms(end)
        stop = min(end_ms, now_ms - now_ms % step)  # candles opening before it have closed
        since = start_ms if start_ms % step == 0 else start_ms - start_ms % step + step
        rows: list[list[Any]] = []
        pages = 0
        while since < stop:
            limit = ohlcv_page_limit(self._exchange, market, since, step)
            window_end = min(stop, since + limit * step)
            page = self._call(
                lambda s=since, lim=limit, until=window_end - 1: self._exchange.fetch_ohlcv(
                    symbol, timeframe, since=s, limit=lim, params={"until": until}
                ),
                what=f"fetch_ohlcv({symbol}, {timeframe}, since={from_ms(since).isoformat()})",
            )
            pages += 1
            rows.extend(page)
            fresh = [int(r[0]) for r in page if int(r[0]) >= since]
            next_since = max(fresh) + step if fresh else window_end
            if next_since <= since:  # cannot happen with the rule above; never loop forever
                self._log.warning(
                    "%s %s %s: page made no progress at %d; stopping",
                    self.name,
                    symbol,
                    timeframe,
                    since,
                )
                break
            since = next_since
        frame = ohlcv_rows_to_frame(
            rows, timeframe=timeframe, now_ms=now_ms, start_ms=start_ms, end_ms=end_ms
        )
        logger.debug(
            "%s %s %s: %d candles in %d requests", self.name, symbol, timeframe, frame.height, pages
        )
        return frame

    # --- derivatives ------------------------------------------------------------------------

    def _derivatives_row(self, symbol: str, observed_ms: int) -> dict[str, Any]:
        market = self._market(symbol)
        if not market.get("swap"):
            raise PermanentError(
                f"{symbol} is not a perpetual swap; pass 'BASE/QUOTE:SETTLE' symbols",
                source=self.name,
            )
        funding = self._call(
            lambda: self._exchange.fetch_funding_rate(symbol), what=f"fetch_funding_rate({symbol})"
        )
        mark = funding.get("markPrice")
        next_funding = funding.get("fundingTimestamp") or funding.get("nextFundingTimestamp")
        amount = value = None
        if self._exchange.has.get("fetchOpenInterest"):
            interest = self._call(
                lambda: self._exchange.fetch_open_interest(symbol),
                what=f"fetch_open_interest({symbol})",
            )
            amount = interest.get("openInterestAmount")
            value = interest.get("openInterestValue")
            if value is None and amount is not None and mark is not None:
                # derived: contracts x contract size x mark price, in the quote currency
                value = float(amount) * float(market.get("contractSize") or 1) * float(mark)
        return {
            "exchange": self.name,
            "symbol": symbol,
            "ts": observed_ms - observed_ms % HOUR_MS,
            "funding_rate": funding.get("fundingRate"),
            "next_funding_ts": next_funding,
            "mark_price": mark,
            "open_interest": amount,
            "open_interest_value": value,
        }

    def fetch_derivatives(self, symbols: list[str]) -> tuple[pl.DataFrame, dict[str, str]]:
        """Funding rate, next funding time, mark price and open interest for ``symbols``.

        ``ts`` is the observation time (:meth:`now`) floored to the hour. A symbol that fails
        (unknown, not a swap, retries exhausted) lands in the returned ``symbol -> message``
        mapping and never stops the others. ``open_interest_value`` is derived from the amount
        and the mark price when the exchange reports only the amount.
        """
        observed_ms = to_ms(self.now())
        rows, errors = [], {}
        for symbol in symbols:
            try:
                rows.append(self._derivatives_row(symbol, observed_ms))
            except MarketDataError as error:
                self._log.warning("%s: derivatives for %s failed: %s", self.name, symbol, error)
                errors[symbol] = str(error)
        schema = {
            k: (pl.Int64() if k in ("ts", "next_funding_ts") else v)
            for k, v in DERIVATIVES_SCHEMA.items()
        }
        frame = pl.DataFrame(rows, schema=schema, strict=False).with_columns(
            pl.col("ts").cast(DERIVATIVES_SCHEMA["ts"]),
            pl.col("next_funding_ts").cast(DERIVATIVES_SCHEMA["next_funding_ts"]),
        )
        return frame, errors
