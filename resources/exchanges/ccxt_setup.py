"""Build configured ccxt exchange instances: options per exchange, URL rewriting, page sizes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import ccxt

from resources.exchanges.base import LIVE_EXCHANGES
from resources.exchanges.errors import UnknownExchangeError

MARKET_TYPES = ("spot", "swap")

#: ``options['fetchMarkets']['types']`` per exchange for our market types (linear swaps only).
_FETCH_MARKET_TYPES: dict[str, dict[str, str]] = {
    "binance": {"spot": "spot", "swap": "linear"},
    "bybit": {"spot": "spot", "swap": "linear"},
    "okx": {"spot": "spot", "swap": "swap"},
    "bitget": {"spot": "spot", "swap": "swap"},
}

#: Candles per request when ccxt's ``features`` does not say (checked against ccxt 4.5.90).
_FALLBACK_PAGE_LIMIT = {"binance": 1000, "bybit": 1000, "okx": 300, "bitget": 200, "mexc": 1000}
#: OKX's ``history-candles`` endpoint (used for candles older than the latest 1440) documented a
#: cap of 100 for years; ccxt 4.5.90 asks for 300. Asking for more than the server gives would
#: lose candles (OKX returns the newest part of the window), so stay at the safe 100.
OKX_HISTORY_LIMIT = 100
OKX_RECENT_CANDLES = 1440


class _CheckedResponses:
    """Mixin over a ccxt exchange class: remember the last HTTP status, reject malformed JSON.

    ccxt's own ``parse_json`` swallows a JSON error and hands the raw text to the parser, which
    then fails somewhere unrelated (or, worse, parses garbage); a truncated body must instead be
    a retryable :class:`ccxt.BadResponse`. ``on_rest_response`` is ccxt's public hook for this.
    """

    last_http_status: int | None = None

    def on_rest_response(
        self,
        code: int,
        reason: str,
        url: str,
        method: str,
        response_headers: Any,
        response_body: str,
        request_headers: Any,
        request_body: Any,
    ) -> str:
        self.last_http_status = code
        body: str = super().on_rest_response(  # type: ignore[misc]
            code,
            reason,
            url,
            method,
            response_headers,
            response_body,
            request_headers,
            request_body,
        )
        if 200 <= code < 300 and body[:1] in ("{", "["):
            try:
                json.loads(body)
            except ValueError as error:
                raise ccxt.BadResponse(
                    f"{self.id} {method} {url}: malformed JSON body ({len(body)} characters)"  # type: ignore[attr-defined]
                ) from error
        return body


_CHECKED_CLASSES: dict[str, type[ccxt.Exchange]] = {}


def checked_exchange_class(name: str) -> type[ccxt.Exchange]:
    """The ccxt class for ``name`` with :class:`_CheckedResponses` mixed in.

    Raises
    ------
    UnknownExchangeError
        For a name outside :data:`resources.exchanges.base.LIVE_EXCHANGES`.
    """
    if name not in LIVE_EXCHANGES:
        raise UnknownExchangeError(
            f"unknown exchange {name!r}; supported exchanges are {', '.join(LIVE_EXCHANGES)} "
            "(lower-case ccxt ids). Fix the exchange name in the configuration."
        )
    if name not in _CHECKED_CLASSES:
        base = getattr(ccxt, name)
        _CHECKED_CLASSES[name] = type(f"Checked{base.__name__}", (_CheckedResponses, base), {})
    return _CHECKED_CLASSES[name]


def fetch_markets_options(name: str, market_types: tuple[str, ...]) -> dict[str, Any]:
    """``options['fetchMarkets']`` that loads only spot and linear swaps (as few requests as ccxt allows)."""
    unknown = set(market_types) - set(MARKET_TYPES)
    if unknown or not market_types:
        raise ValueError(
            f"market_types must be a non-empty subset of {MARKET_TYPES}, got {market_types}"
        )
    if name == "mexc":  # ccxt's mexc loads spot and swap regardless; keep its own option shape
        return {
            "types": {
                "spot": "spot" in market_types,
                "swap": {"linear": "swap" in market_types, "inverse": False},
            }
        }
    mapping = _FETCH_MARKET_TYPES[name]
    return {"types": [mapping[t] for t in market_types]}


def _override_prefixes(url_overrides: Mapping[str, str]) -> list[tuple[str, str]]:
    """``(origin, target)`` pairs; a key is an origin (``https://api.binance.com``) or a bare host."""
    prefixes = []
    for key, target in url_overrides.items():
        parts = urlsplit(key if "://" in key else f"https://{key}")
        if not parts.netloc or parts.path not in ("", "/") or parts.query:
            raise ValueError(
                f"url_overrides key {key!r} must be an API origin such as 'https://api.binance.com' "
                "or a bare host such as 'api.binance.com'"
            )
        prefixes.append((f"{parts.scheme}://{parts.netloc}", target.rstrip("/")))
    return prefixes


def rewrite_urls(urls: Any, url_overrides: Mapping[str, str], hostname: str | None) -> Any:
    """``urls`` (a string or nested dict) with every URL whose origin is overridden rewritten.

    ``{hostname}`` placeholders are filled with ``hostname`` first, as ccxt does when it signs.
    """
    prefixes = _override_prefixes(url_overrides)

    def rewrite(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: rewrite(inner) for key, inner in value.items()}
        if not isinstance(value, str):
            return value
        url = value.replace("{hostname}", hostname) if hostname else value
        for origin, target in prefixes:
            if url == origin or url.startswith(origin + "/"):
                return target + url[len(origin) :]
        return url

    return rewrite(urls)


def build_exchange(
    name: str,
    *,
    credentials: Mapping[str, str | None],
    market_types: tuple[str, ...],
    url_overrides: Mapping[str, str] | None,
    timeout_ms: int,
    rate_limit_ms: int | None,
) -> ccxt.Exchange:
    """A synchronous ccxt instance with the rate limiter on and currencies not fetched."""
    cls = checked_exchange_class(name)
    config: dict[str, Any] = {
        "enableRateLimit": True,
        "timeout": timeout_ms,
        "options": {"fetchMarkets": fetch_markets_options(name, market_types)},
        # currencies are not needed for market data, and with a key some exchanges fetch them
        # from a private endpoint: skipping them keeps load_markets to the market requests
        "has": {"fetchCurrencies": False},
    }
    for key, value in credentials.items():
        if value:
            config[key] = value
    if rate_limit_ms is not None:
        config["rateLimit"] = rate_limit_ms
    exchange = cls(config)
    if url_overrides:
        exchange.urls["api"] = rewrite_urls(
            exchange.urls["api"], url_overrides, getattr(exchange, "hostname", None)
        )
    return exchange


def ohlcv_page_limit(
    exchange: ccxt.Exchange, market: Mapping[str, Any], since_ms: int, step_ms: int
) -> int:
    """Most candles one ``fetch_ohlcv`` request returns for ``market`` starting at ``since_ms``."""
    kind = "spot" if market.get("spot") else "swap"
    features = exchange.features.get(kind) or {}
    if kind == "swap":
        features = features.get("linear") or {}
    limit = (features.get("fetchOHLCV") or {}).get("limit") or _FALLBACK_PAGE_LIMIT.get(
        exchange.id, 500
    )
    if (
        exchange.id == "okx"
        and since_ms < exchange.milliseconds() - (OKX_RECENT_CANDLES - 1) * step_ms
    ):
        limit = min(limit, OKX_HISTORY_LIMIT)  # ccxt switches to history-candles here
    return int(limit)
