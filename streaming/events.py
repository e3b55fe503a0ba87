"""The normalised social Event and its content fingerprint for de-duplication (pure).

Every source (Telethon, discord.py, the X webhook, the replay) turns what it receives into
an :class:`Event`. ``content_md5`` is the same for the same call wherever it was posted, so
a call cross-posted from a Telegram channel to a Discord server is processed once.

Content normalisation and the digest live in :mod:`ml.social.text` (pure, shared with the spam
and wave detectors).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal, get_args

from ml.social.text import content_md5
from streaming.extract import DEFAULT_CONFIG, ExtractionConfig, TokenMention, extract_tokens

Source = Literal["telegram", "discord", "x", "replay"]
SOURCES: frozenset[str] = frozenset(get_args(Source))

_MD5_HEX = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True, slots=True)
class Event:
    """One social message, normalised, whatever platform it came from.

    Attributes
    ----------
    source
        ``"telegram"``, ``"discord"``, ``"x"`` or ``"replay"``.
    channel
        Platform channel id or name (Telegram chat id, Discord channel id, X account).
    message_id
        Platform message id, as a string (Discord snowflakes exceed 2**53).
    author
        Author id or handle as the platform gives it ("" when anonymous, e.g. channel posts).
    text
        Message text as received (not normalised).
    ts
        When the message was posted: timezone-aware, converted to UTC on construction.
    attachments
        References to attached media (URLs or platform file ids).
    raw
        Platform metadata worth keeping (a read-only copy at the top level; JSON values if
        the event is spooled).
        Not part of equality or hash.
    tokens
        Token mentions of ``text`` (:func:`Event.from_message` extracts them).
    content_md5
        :func:`content_md5` of ``text`` and ``attachments``; computed when left empty.
    """

    source: Source
    channel: str
    message_id: str
    author: str
    text: str
    ts: datetime
    attachments: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    tokens: tuple[TokenMention, ...] = ()
    content_md5: str = ""

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {sorted(SOURCES)}, got {self.source!r}")
        for name in ("channel", "message_id", "author", "text"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"Event.{name} must be a str, got {type(getattr(self, name)).__name__}")
        if not isinstance(self.ts, datetime) or self.ts.utcoffset() is None:
            raise ValueError(f"Event.ts must be a timezone-aware datetime, got {self.ts!r}")
        object.__setattr__(self, "ts", self.ts.astimezone(UTC))
        object.__setattr__(self, "attachments", tuple(self.attachments))
        object.__setattr__(self, "tokens", tuple(self.tokens))
        object.__setattr__(self, "raw", MappingProxyType(dict(self.raw)))
        if not self.content_md5:
            object.__setattr__(self, "content_md5", content_md5(self.text, self.attachments))
        elif not _MD5_HEX.fullmatch(self.content_md5):
            raise ValueError(f"content_md5 must be 32 lower-case hex digits, got {self.content_md5!r}")

    @classmethod
    def from_message(
        cls,
        *,
        source: Source,
        channel: str,
        message_id: str,
        author: str,
        text: str,
        ts: datetime,
        attachments: Iterable[str] = (),
        raw: Mapping[str, Any] | None = None,
        config: ExtractionConfig = DEFAULT_CONFIG,
    ) -> Event:
        """An Event with its tokens extracted (:func:`~streaming.extract.extract_tokens`)."""
        return cls(
            source=source,
            channel=channel,
            message_id=message_id,
            author=author,
            text=text,
            ts=ts,
            attachments=tuple(attachments),
            raw=raw or {},
            tokens=tuple(extract_tokens(text, config=config)),
        )

    @property
    def key(self) -> tuple[str, str, str]:
        """Natural key: (source, channel, message_id)."""
        return (self.source, self.channel, self.message_id)

    def to_record(self) -> dict[str, Any]:
        """JSON-ready dict (ISO-8601 ``ts``); :meth:`from_record` inverts it exactly."""
        return {
            "source": self.source,
            "channel": self.channel,
            "message_id": self.message_id,
            "author": self.author,
            "text": self.text,
            "ts": self.ts.isoformat(),
            "attachments": list(self.attachments),
            "raw": dict(self.raw),
            "tokens": [
                {
                    "chain": t.chain,
                    "address": t.address,
                    "evidence": t.evidence,
                    "confidence": t.confidence,
                    "role": t.role,
                    "start": t.start,
                    "end": t.end,
                    "occurrences": t.occurrences,
                    "kind": t.kind,
                }
                for t in self.tokens
            ],
            "content_md5": self.content_md5,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Event:
        """The Event of a :meth:`to_record` dict (tokens and digest as stored, not recomputed)."""
        return cls(
            source=record["source"],
            channel=record["channel"],
            message_id=record["message_id"],
            author=record["author"],
            text=record["text"],
            ts=datetime.fromisoformat(record["ts"]),
            attachments=tuple(record.get("attachments", ())),
            raw=record.get("raw") or {},
            tokens=tuple(TokenMention(**token) for token in record.get("tokens", ())),
            content_md5=record.get("content_md5", ""),
        )
