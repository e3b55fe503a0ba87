"""The normalised social Event and its content fingerprint for de-duplication (pure).

Every source (Telethon, discord.py, the X webhook, the replay) turns what it receives into
an :class:`Event`. ``content_md5`` is the same for the same call wherever it was posted, so
a call cross-posted from a Telegram channel to a Discord server is processed once.

Content normalisation (:func:`normalise_content`), in this order:

1. Unicode NFKC (full-width and compatibility forms fold: ``０ｘ`` -> ``0x``, ``ﬁ`` -> ``fi``).
2. Drop invisible characters: format characters (category Cf: zero-width space and joiners,
   word joiner, BOM, bidi marks, soft hyphen) and variation selectors (U+FE00-FE0F,
   U+E0100-E01EF): clients add them to emoji inconsistently.
3. Markdown that only one platform shows as text: ``[label](url)`` -> ``label url``,
   ``<url>`` -> ``url`` (Discord's embed suppression), and the emphasis markers ``**``,
   ``*``, ``__``, `````, ``~~``, ``||``; a ``>`` quote marker at the start of a line.
4. Links with a scheme or ``www.``: scheme and ``www.`` dropped (so they equal the bare form),
   tracking parameters removed (``utm_*``, ``fbclid``, ``gclid``, ``dclid``, ``msclkid``,
   ``igshid``, ``mc_cid``, ``mc_eid``, ``ref_src``, ``si``), then a trailing ``?`` or ``/``.
5. Case: everything is case-folded except case-sensitive identifiers, i.e. runs of 25 or more
   ASCII letters and digits (base58 mints, signatures, BTC/TRON addresses) which are kept
   as written; ``0x``-hex runs are lower-cased (EVM addresses are case-insensitive).
6. Whitespace: every run of Unicode whitespace becomes one space; leading and trailing
   whitespace is removed.

``content_md5`` is the MD5 hex digest of the UTF-8 bytes of the normalised text. A message
whose normalised text is empty (media only) hashes its sorted attachment references instead,
so two different pictures do not collide. Links X rewrote to ``t.co`` cannot be undone here.
MD5 is used as a fingerprint, not for security.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal, get_args

from streaming.extract import DEFAULT_CONFIG, ExtractionConfig, TokenMention, extract_tokens

Source = Literal["telegram", "discord", "x", "replay"]
SOURCES: frozenset[str] = frozenset(get_args(Source))

_INVISIBLE = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufe00-\ufe0f\ufeff\U000e0100-\U000e01ef]")
_MD_LINK = re.compile(r"\[([^\]\n]*)\]\((https?://[^)\s]+)\)")
_ANGLE_URL = re.compile(r"<(https?://[^>\s]+)>")
_DELETE = str.maketrans("", "", "*`")
_DOUBLED = re.compile(r"__+|~~|\|\|")
_QUOTE = re.compile(r"(?m)^[ \t]*>[ \t]?")
_URL = re.compile(r"(?i)\b(?:https?://|www\.)[^\s<>\"'`\[\]{}|\\^]+")
_SCHEME = re.compile(r"(?i)^(?:https?://)?(?:www\.)?")
_TRACKING = re.compile(r"(?i)^(?:utm_[a-z0-9_]*|fbclid|gclid|dclid|msclkid|igshid|mc_cid|mc_eid|ref_src|si)$")
#: Maximal runs of 25+ ASCII letters/digits (possessive: a run matches whole or not at all).
_CASE_SENSITIVE = re.compile(r"([A-Za-z0-9]{25,}+)")
_HEX_RUN = re.compile(r"0[xX][0-9A-Fa-f]+")


def _clean_url(match: re.Match[str]) -> str:
    url = _SCHEME.sub("", match.group())
    base, hash_mark, fragment = url.partition("#")
    path, question, query = base.partition("?")
    if question:
        kept = [pair for pair in query.split("&") if pair and not _TRACKING.match(pair.partition("=")[0])]
        base = path + ("?" + "&".join(kept) if kept else "")
    base = base.rstrip("/") if not hash_mark else base
    return base + hash_mark + fragment


def normalise_content(text: str) -> str:
    """The platform-independent form of a message text (steps in the module docstring).

    Guarantees: deterministic and idempotent (``normalise_content(normalise_content(t)) ==
    normalise_content(t)``); addresses survive with their case (EVM lower-cased); no leading,
    trailing or repeated whitespace.
    """
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    if "](" in text:
        text = _MD_LINK.sub(r"\1 \2", text)
    if "<" in text:
        text = _ANGLE_URL.sub(r"\1", text)
    text = text.translate(_DELETE)
    if "__" in text or "~~" in text or "||" in text:
        text = _DOUBLED.sub("", text)
    if ">" in text:
        text = _QUOTE.sub("", text)
    if "://" in text or "www." in text.lower():
        text = _URL.sub(_clean_url, text)
    parts = _CASE_SENSITIVE.split(text)
    for index, part in enumerate(parts):
        if index % 2 == 0:
            parts[index] = part.casefold()
        elif _HEX_RUN.fullmatch(part):
            parts[index] = part.lower()
    return " ".join("".join(parts).split())


def content_md5(text: str, attachments: Iterable[str] = ()) -> str:
    """MD5 hex digest (32 lower-case characters) of :func:`normalise_content` of ``text``.

    When the normalised text is empty, the digest is over ``"\\x00attachments\\n"`` plus the
    sorted attachment references joined by newlines.
    """
    content = normalise_content(text)
    if not content:
        content = "\x00attachments\n" + "\n".join(sorted(attachments))
    return hashlib.md5(content.encode("utf-8"), usedforsecurity=False).hexdigest()


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
