"""HTTP plumbing shared by the JSON API clients (CoinGecko, DexScreener)."""

from __future__ import annotations

import email.utils
import functools
import json
import ssl
from collections.abc import Callable
from datetime import UTC, datetime

import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context (certifi's CA bundle, as httpx uses) shared by every client.

    Building it costs ~50 ms, which every short-lived client would otherwise pay again.
    """
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_text(response: httpx.Response) -> str:
    """The server's own explanation from an error body, shortened."""
    text = response.text.strip()
    try:
        body = json.loads(text)
    except ValueError:
        return text[:300]
    if isinstance(body, dict):
        status = body.get("status")
        if isinstance(status, dict) and status.get("error_message"):
            return str(status["error_message"])[:300]
        if body.get("error"):
            return str(body["error"])[:300]
    return text[:300]


def get_checked(http: httpx.Client, path: str, *, source: str, params: dict[str, str] | None = None,
                redact: Callable[[str], str] = str) -> httpx.Response:
    """GET ``path``; network failures, timeouts, 429 and 5xx become the error taxonomy.

    The response is returned for every other status, so each client words its own 4xx errors
    (what to fix differs per API). ``redact`` scrubs secrets from error texts.
    """
    from resources.exchanges.errors import RateLimitedError, TransientError

    try:
        response = http.get(path, params=params)
    except httpx.TimeoutException as e:
        raise TransientError(f"GET {path} timed out ({type(e).__name__})", source=source) from e
    except httpx.TransportError as e:
        raise TransientError(f"GET {path} failed: {type(e).__name__}: {redact(str(e))}", source=source) from e
    status = response.status_code
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        raise RateLimitedError(f"GET {path} rate limited (HTTP 429, Retry-After {retry_after})",
                               source=source, retry_after=retry_after)
    if status >= 500:
        raise TransientError(f"GET {path} server error HTTP {status}: {redact(error_text(response))}",
                             source=source)
    return response
