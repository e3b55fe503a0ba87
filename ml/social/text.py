"""Social message text: its normalised form and content fingerprint for de-duplication (pure).

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
from collections.abc import Iterable

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
