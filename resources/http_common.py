"""HTTP plumbing shared by the JSON API clients (CoinGecko, DexScreener)."""

from __future__ import annotations

import email.utils
import functools
import json
import ssl
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
