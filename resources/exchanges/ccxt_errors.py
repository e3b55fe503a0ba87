"""Translate ccxt exceptions into the Signalworks error taxonomy, once, where they enter.

:func:`translate_ccxt_error` returns (does not raise) the translated error so the caller can
``raise translated from error`` and keep the vendor exception as the cause.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime

import ccxt

from resources.exchanges.errors import (
    MarketDataError,
    PermanentError,
    RateLimitedError,
    TransientError,
    UnknownSymbolError,
)

#: Exceptions raised *inside* a ccxt call when a response has an unexpected shape (an HTML page
#: with status 200, a body of the wrong type). They are treated as a malformed response.
SHAPE_ERRORS: tuple[type[Exception], ...] = (
    TypeError,
    KeyError,
    ValueError,
    IndexError,
    AttributeError,
)


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header value (delta-seconds or an HTTP date).

    Returns ``None`` when the header is absent or unparseable, and never a negative number.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # an HTTP date is GMT by definition
        return None
    return max(0.0, (moment - now).total_seconds())


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def _is_server_error(status: int | None) -> bool:
    return status is not None and 500 <= status <= 599


def _is_client_error(status: int | None) -> bool:
    """A 4xx that means "this request is wrong", not "slow down" or "try again"."""
    return status is not None and 400 <= status <= 499 and status not in (408, 418, 425, 429)


def translate_ccxt_error(
    error: Exception,
    *,
    exchange: str,
    what: str,
    now: datetime,
    last_status: int | None = None,
    last_headers: Mapping[str, str] | None = None,
) -> MarketDataError:
    """The taxonomy error for a ccxt exception (or a shape error raised inside a ccxt call).

    Parameters
    ----------
    error
        What ccxt raised.
    exchange, what
        The exchange id and the operation, for the message (``source`` is the exchange id).
    now
        Timezone-aware current time, to turn an HTTP-date ``Retry-After`` into seconds.
    last_status, last_headers
        Status code and headers of the last HTTP response ccxt received (the failing one).
    """
    detail = f"{what}: {type(error).__name__}: {error}"
    # the status decides first: ccxt's okx files HTTP 429 under ExchangeNotAvailable
    if isinstance(error, ccxt.RateLimitExceeded | ccxt.DDoSProtection) or last_status in (418, 429):
        retry_after = parse_retry_after(_header(last_headers, "Retry-After"), now=now)
        return RateLimitedError(
            f"rate limited ({detail})", source=exchange, retry_after=retry_after
        )
    if isinstance(error, ccxt.BadSymbol):
        return UnknownSymbolError(
            f"{detail}. The exchange does not list this symbol: check the spelling "
            "(unified ccxt form, e.g. 'BTC/USDT' or 'BTC/USDT:USDT') and reload the markets.",
            source=exchange,
        )
    if isinstance(error, ccxt.AuthenticationError):
        return PermanentError(
            f"{detail}. Check the API key, secret and password (passphrase) configured for "
            f"{exchange} and the key's permissions; public market data needs no key.",
            source=exchange,
        )
    if isinstance(error, ccxt.NotSupported):
        return PermanentError(
            f"{detail}. {exchange} does not offer this through ccxt {ccxt.__version__}: "
            "use another exchange for it or remove it from the configuration.",
            source=exchange,
        )
    if isinstance(error, ccxt.BadRequest):
        return PermanentError(
            f"{detail}. The exchange rejected the request parameters: check the symbol, "
            "timeframe and time range.",
            source=exchange,
        )
    if isinstance(error, ccxt.OperationFailed) and _is_client_error(last_status):
        # ccxt files 400/403/404/451 under ExchangeNotAvailable; retrying cannot fix them
        return PermanentError(
            f"{detail} (HTTP {last_status}). Check the configured base URL (url_overrides), "
            "the endpoint's availability in this region and the API key's IP whitelist.",
            source=exchange,
        )
    if isinstance(error, ccxt.OperationFailed):  # network, timeout, unavailable, bad response
        return TransientError(detail, source=exchange)
    if isinstance(error, ccxt.ExchangeError) and _is_server_error(last_status):
        return TransientError(f"{detail} (HTTP {last_status})", source=exchange)
    if isinstance(error, SHAPE_ERRORS):
        return TransientError(
            f"{what}: unexpected response shape ({type(error).__name__}: {error})", source=exchange
        )
    return PermanentError(
        f"{detail}. The exchange refused the request; read its message above, "
        "check the exchange status page and the configured credentials.",
        source=exchange,
    )
