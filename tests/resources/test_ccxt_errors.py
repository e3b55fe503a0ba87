"""Pure parts of the ccxt client: error translation, Retry-After, URL rewriting, page sizes.

The exceptions are real ccxt exception classes and the exchanges real (unconnected) ccxt instances.
"""

from __future__ import annotations

from datetime import UTC, datetime

import ccxt
import pytest

from resources.exchanges.ccxt_errors import parse_retry_after, translate_ccxt_error
from resources.exchanges.ccxt_setup import (
    OKX_HISTORY_LIMIT,
    build_exchange,
    fetch_markets_options,
    ohlcv_page_limit,
    rewrite_urls,
)
from resources.exchanges.errors import (
    PermanentError,
    RateLimitedError,
    TransientError,
    UnknownSymbolError,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1", 1.0),
        (" 2.5 ", 2.5),
        ("-3", 0.0),
        ("Wed, 01 May 2024 12:00:30 GMT", 30.0),
        ("Wed, 01 May 2024 11:59:00 GMT", 0.0),  # already past
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


@pytest.mark.parametrize(
    ("error", "status", "kind", "message"),
    [
        (ccxt.RateLimitExceeded("slow down"), 429, RateLimitedError, "rate limited"),
        (ccxt.DDoSProtection("418 banned"), 418, RateLimitedError, "rate limited"),
        (
            ccxt.ExchangeNotAvailable("okx 429"),
            429,
            RateLimitedError,
            "rate limited",
        ),  # okx's mapping
        (ccxt.RequestTimeout("timed out"), None, TransientError, "RequestTimeout"),
        (ccxt.NetworkError("reset"), None, TransientError, "NetworkError"),
        (ccxt.ExchangeNotAvailable("502"), 502, TransientError, "ExchangeNotAvailable"),
        (ccxt.BadResponse("malformed JSON"), 200, TransientError, "malformed JSON"),
        (ccxt.ExchangeError("internal"), 500, TransientError, "HTTP 500"),
        (
            TypeError("string indices must be integers"),
            200,
            TransientError,
            "unexpected response shape",
        ),
        (ccxt.BadSymbol("invalid symbol"), 400, UnknownSymbolError, "check the spelling"),
        (ccxt.AuthenticationError("bad key"), 401, PermanentError, "Check the API key"),
        (ccxt.PermissionDenied("no rights"), 403, PermanentError, "key's permissions"),
        (ccxt.NotSupported("no oi"), None, PermanentError, "does not offer this"),
        (ccxt.BadRequest("bad param"), 400, PermanentError, "check the symbol, timeframe"),
        (ccxt.ExchangeNotAvailable("404 Not Found"), 404, PermanentError, "base URL"),
        (ccxt.ExchangeNotAvailable("451 restricted"), 451, PermanentError, "region"),
        (ccxt.ExchangeError("order rejected"), 200, PermanentError, "refused the request"),
    ],
)
def test_translation(
    error: Exception, status: int | None, kind: type[Exception], message: str
) -> None:
    translated = translate_ccxt_error(
        error,
        exchange="binance",
        what="fetch_ohlcv",
        now=NOW,
        last_status=status,
        last_headers={"retry-after": "3"},
    )
    assert type(translated) is kind
    assert message in str(translated)
    assert translated.source == "binance"
    if isinstance(translated, RateLimitedError):
        assert translated.retry_after == 3.0  # header names are case-insensitive


def test_rate_limit_without_header_has_no_retry_after() -> None:
    translated = translate_ccxt_error(
        ccxt.RateLimitExceeded("x"), exchange="okx", what="w", now=NOW
    )
    assert isinstance(translated, RateLimitedError)
    assert translated.retry_after is None


def test_rewrite_urls_nested_and_hostname_placeholders() -> None:
    urls = {
        "public": "https://api.{hostname}/v5",
        "contract": {
            "public": "https://contract.mexc.com/api/v1/contract",
            "other": "https://else.com/x",
        },
        "weight": 3,
    }
    rewritten = rewrite_urls(
        urls,
        {
            "https://api.bybit.com": "http://127.0.0.1:9/api.bybit.com",
            "contract.mexc.com": "http://127.0.0.1:9/contract.mexc.com/",
        },
        "bybit.com",
    )
    assert rewritten == {
        "public": "http://127.0.0.1:9/api.bybit.com/v5",
        "contract": {
            "public": "http://127.0.0.1:9/contract.mexc.com/api/v1/contract",
            "other": "https://else.com/x",
        },
        "weight": 3,
    }


def test_rewrite_does_not_touch_a_longer_host_with_the_same_prefix() -> None:
    assert (
        rewrite_urls(
            "https://api.binance.com.evil/x", {"https://api.binance.com": "http://l"}, None
        )
        == "https://api.binance.com.evil/x"
    )


def test_bad_override_key_is_rejected() -> None:
    with pytest.raises(ValueError, match="API origin"):
        rewrite_urls({}, {"https://api.binance.com/api/v3": "http://l"}, None)


@pytest.mark.parametrize(
    ("name", "types"),
    [
        ("binance", ["spot", "linear"]),
        ("bybit", ["spot", "linear"]),
        ("okx", ["spot", "swap"]),
        ("bitget", ["spot", "swap"]),
    ],
)
def test_fetch_markets_types(name: str, types: list[str]) -> None:
    assert fetch_markets_options(name, ("spot", "swap")) == {"types": types}


def test_unknown_market_type_is_rejected() -> None:
    with pytest.raises(ValueError, match="market_types"):
        fetch_markets_options("binance", ("spot", "future"))


def test_built_exchange_rate_limits_and_skips_currencies() -> None:
    exchange = build_exchange(
        "bybit",
        credentials={"apiKey": None},
        market_types=("swap",),
        url_overrides={"api.bybit.com": "http://127.0.0.1:9/api.bybit.com"},
        timeout_ms=1234,
        rate_limit_ms=None,
    )
    assert exchange.enableRateLimit is True
    assert exchange.timeout == 1234
    assert exchange.has["fetchCurrencies"] is False
    assert ccxt.bybit().has["fetchCurrencies"] is True  # the class is untouched
    assert exchange.options["fetchMarkets"]["types"] == ["linear"]
    assert set(exchange.urls["api"].values()) == {"http://127.0.0.1:9/api.bybit.com"}


@pytest.mark.parametrize(
    ("name", "spot", "swap"),
    [
        ("binance", 1000, 500),
        ("bybit", 1000, 1000),
        ("okx", 300, 300),
        ("bitget", 200, 200),
        ("mexc", 1000, 2000),
    ],
)
def test_page_limits_follow_ccxt_features(name: str, spot: int, swap: int) -> None:
    exchange = getattr(ccxt, name)()
    recent = exchange.milliseconds() - 60_000 * 10
    assert ohlcv_page_limit(exchange, {"spot": True}, recent, 60_000) == spot
    assert ohlcv_page_limit(exchange, {"swap": True, "linear": True}, recent, 60_000) == swap


def test_okx_history_candles_pages_are_smaller() -> None:
    exchange = ccxt.okx()
    old = exchange.milliseconds() - 60_000 * 1440
    assert ohlcv_page_limit(exchange, {"spot": True}, old, 60_000) == OKX_HISTORY_LIMIT
