"""Fault injection shared by the loopback replay servers of the JSON APIs (CoinGecko, DexScreener)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

FaultKind = Literal["respond", "truncate", "delay"]


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour, applied to one request (or to every one when persistent).

    ``respond`` answers with ``status``/``body``/``headers`` instead of the replay; ``truncate``
    serves the normal answer cut to half its length (malformed JSON); ``delay`` sleeps
    ``delay_s`` seconds and then serves the normal answer.
    """

    kind: FaultKind
    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    delay_s: float = 0.0

    #: The (synthetic) JSON body of a 429; replay modules override it with their API's shape.
    RATE_LIMIT_BODY: ClassVar[dict[str, Any]] = {"error": "Too Many Requests"}

    @classmethod
    def rate_limited(cls, retry_after: float | str | None = None) -> Fault:
        """HTTP 429, with ``Retry-After`` when given."""
        headers = () if retry_after is None else (("Retry-After", str(retry_after)),)
        return cls("respond", status=429, body=json.dumps(cls.RATE_LIMIT_BODY).encode(), headers=headers)

    @classmethod
    def status_code(cls, status: int, body: dict[str, Any] | str = "") -> Fault:
        """Any status with a JSON (dict) or raw (str) body (synthetic)."""
        raw = json.dumps(body) if isinstance(body, dict) else body
        return cls("respond", status=status, body=raw.encode())

    @classmethod
    def truncated_json(cls) -> Fault:
        """The normal body cut in half: a 200 whose JSON does not parse."""
        return cls("truncate")

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Answer normally, but only after ``seconds`` (beyond the client's timeout)."""
        return cls("delay", delay_s=seconds)


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the server saw it; header names are lower-case."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
