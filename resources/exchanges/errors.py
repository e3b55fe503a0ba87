"""The error taxonomy every exchange and market-API client raises.

Vendor errors (ccxt, httpx) are translated once, where they enter, into one of three kinds:
transient (retry with backoff), rate limited (retry after the server's delay) and permanent
(fail loudly with a message that says what to fix).
"""

from __future__ import annotations

from datetime import datetime


class MarketDataError(Exception):
    """Base class for every error raised by a market-data client."""

    def __init__(self, message: str, *, source: str = "") -> None:
        super().__init__(f"{source}: {message}" if source else message)
        self.source = source


class TransientError(MarketDataError):
    """A temporary failure (network, timeout, 5xx, malformed body): retrying may succeed."""


class RateLimitedError(TransientError):
    """The server asked us to slow down (HTTP 429 / 418); ``retry_after`` is in seconds."""

    def __init__(self, message: str, *, source: str = "", retry_after: float | None = None) -> None:
        super().__init__(message, source=source)
        self.retry_after = retry_after


class PermanentError(MarketDataError):
    """A failure that retrying cannot fix (bad symbol, bad credentials, unsupported call)."""


class UnknownExchangeError(PermanentError):
    """The exchange id is not one Signalworks supports."""


class UnknownSymbolError(PermanentError):
    """The symbol is not listed on the exchange."""


class RetriesExhaustedError(MarketDataError):
    """A transient failure persisted through every retry."""


class ExchangeUnreachableError(MarketDataError):
    """The exchange stopped answering: stop asking it.

    Raised once per exchange (for instance when its markets cannot be loaded, or when several
    symbols in a row fail through every retry) so the caller gives up on it instead of retrying
    each remaining symbol and day. ``since`` is when the first of those failures started (the
    client's clock); ``evidence`` says what failed.
    """

    def __init__(self, exchange: str, *, since: datetime, evidence: str, last_error: str) -> None:
        super().__init__(
            f"unreachable since {since.isoformat()} ({evidence}); stopped asking it. Last error: "
            f"{last_error}. Check the network, the exchange status page and the configured base "
            "URL (url_overrides).",
            source=exchange,
        )
        self.exchange = exchange
        self.since = since
        self.evidence = evidence
        self.last_error = last_error
