"""Render signal messages as Telegram HTML: escaping, templates, validation and safe truncation.

Telegram's ``parse_mode="HTML"`` accepts a small subset of HTML (see
https://core.telegram.org/bots/api#html-style). Telegram's own parser is lenient: it passes a bare
``&`` or ``>`` through, and it drops overlapping entities without a word. The validator here is
stricter on purpose, because a message it accepts must show exactly what the template meant:

* tags: ``b``/``strong``, ``i``/``em``, ``u``/``ins``, ``s``/``strike``/``del``,
  ``a href="…"``, ``code``, ``pre`` (a language via ``<pre><code class="language-…">``),
  ``tg-spoiler`` / ``span class="tg-spoiler"``, ``blockquote`` (optionally ``expandable``);
* attribute values are quoted; every start tag has its end tag, properly nested;
* nothing inside ``code``; only one ``code`` directly inside ``pre``; no ``a`` inside ``a`` and
  no ``blockquote`` inside ``blockquote`` (Telegram would drop those entities);
* ``<``, ``>`` and ``&`` outside tags are written ``&lt;``, ``&gt;``, ``&amp;``; the only
  entities are ``&lt; &gt; &amp; &quot;`` and numeric ones (``&#39;``, ``&#x1F680;``), which
  must end with ``;``.

Lengths are what Telegram counts: UTF-16 code units of the text *after* entity parsing (so
tags cost nothing and ``&amp;`` costs one), at most 4096 for a message.

Everything here is pure (no I/O); positions in errors are character offsets into the string.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

#: Telegram's limit on a message's text, in UTF-16 code units after entity parsing.
MESSAGE_LIMIT = 4096
ELLIPSIS = "…"

_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"})
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
# Telegram only knows a lower-case "x" in hexadecimal references, and at most 10 characters
# before the ";": longer digit runs are not entities to it.
_ENTITY = re.compile(r"&(?:(lt|gt|amp|quot)|#([0-9]{1,7})|#x([0-9a-fA-F]{1,6}));")
_TAG = re.compile(
    r"<(/?)([A-Za-z][A-Za-z0-9-]*)"
    r"((?:\s+[A-Za-z][A-Za-z0-9-]*(?:\s*=\s*(?:\"[^\"<]*\"|'[^'<]*'))?)*)\s*>"
)
_ATTRIBUTE = re.compile(r"\s+([A-Za-z][A-Za-z0-9-]*)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'))?")
_SPECIAL = re.compile(r"[<>&]")

_PLAIN_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "tg-spoiler", "pre"}
)
_ALLOWED_TAGS = _PLAIN_TAGS | {"a", "code", "span", "blockquote"}


class TelegramHTMLError(ValueError):
    """Text that Telegram would reject or show differently; ``position`` is a character offset."""

    def __init__(self, problem: str, position: int) -> None:
        super().__init__(f"{problem} (at character {position})")
        self.problem = problem
        self.position = position


class Html(str):
    """A value that is already Telegram HTML: :func:`render_template` inserts it unescaped.

    The whole rendered message is still validated, so a malformed fragment is caught.
    """

    __slots__ = ()


@dataclass(slots=True)
class _Open:
    """A start tag waiting for its end tag, and what it holds so far."""

    name: str
    position: int
    has_tag: bool = False
    has_text: bool = False


@dataclass(frozen=True)
class _Token:
    kind: Literal["text", "entity", "open", "close"]
    start: int
    end: int
    #: decoded visible text for "text" and "entity"; the lower-case tag name for "open"/"close"
    value: str


def utf16_length(text: str) -> int:
    """Length of ``text`` in UTF-16 code units, as Telegram counts (an emoji above U+FFFF is 2)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def escape_html(text: object) -> str:
    """``str(text)`` with ``& < > " '`` replaced by entities Telegram decodes.

    Safe both between tags and inside a quoted attribute value.
    """
    return str(text).translate(_ESCAPES)


def validate_telegram_html(html: str) -> None:
    """Check that ``html`` is well-formed in Telegram's HTML subset (see the module docstring).

    Raises
    ------
    TelegramHTMLError
        A :class:`ValueError` whose ``position`` is the character offset of the first problem.
    """
    for _ in _tokens(html):
        pass


def visible_text(html: str) -> str:
    """The text Telegram shows for ``html``: tags removed, entities decoded.

    Raises
    ------
    TelegramHTMLError
        When ``html`` is not valid (see :func:`validate_telegram_html`).
    """
    return "".join(t.value for t in _tokens(html) if t.kind in ("text", "entity"))


def render_template(template: str, values: Mapping[str, object]) -> str:
    """Fill ``{name}`` / ``{name:format_spec}`` fields of ``template`` with escaped ``values``.

    The template's own tags are kept; every value is formatted (``{price:.2f}``) and then
    HTML-escaped, unless it is an :class:`Html` instance without a format spec. Fields must be
    plain names: no positional fields, attribute access or indexing.

    Raises
    ------
    KeyError
        A field has no value in ``values``.
    ValueError
        A field is not a plain name, or the template's braces do not parse.
    TelegramHTMLError
        The rendered message is not valid Telegram HTML (position in the rendered text).
    """
    rendered = _EscapingFormatter().vformat(template, (), values)
    try:
        validate_telegram_html(rendered)
    except TelegramHTMLError as e:
        raise TelegramHTMLError(f"rendered template: {e.problem}", e.position) from e
    return rendered


def fit_message(html: str, limit: int = MESSAGE_LIMIT) -> str:
    """``html`` unchanged when it fits ``limit``, else cut so that it does, ending with "…".

    The length is measured like Telegram: UTF-16 code units of the visible text. A cut never
    falls inside a tag, an entity or a surrogate pair; tags left open are closed, start tags left
    empty by the cut are dropped, trailing whitespace before the cut is removed, and "…" is
    appended after the closing tags.

    Returns
    -------
    str
        Valid Telegram HTML whose visible text is at most ``limit`` UTF-16 code units and is a
        prefix of the original visible text (plus "…" when cut).

    Raises
    ------
    ValueError
        ``limit`` is below 1, or ``html`` is not valid (:class:`TelegramHTMLError`).
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1 UTF-16 code unit, got {limit}")
    tokens = list(_tokens(html))
    if sum(utf16_length(t.value) for t in tokens if t.kind in ("text", "entity")) <= limit:
        return html
    budget = limit - utf16_length(ELLIPSIS)
    pieces: list[str] = []
    open_tags: list[tuple[str, int]] = []  # (name, index of its start tag in pieces)
    used = 0
    for token in tokens:
        if token.kind == "open":
            open_tags.append((token.value, len(pieces)))
            pieces.append(html[token.start : token.end])
        elif token.kind == "close":
            open_tags.pop()
            pieces.append(html[token.start : token.end])
        else:
            cost = utf16_length(token.value)
            if used + cost <= budget:
                pieces.append(html[token.start : token.end])
                used += cost
                continue
            if token.kind == "text":  # plain text: source == visible, cut between code points
                room = budget - used
                cut = 0
                for ch in token.value:
                    room -= 2 if ord(ch) > 0xFFFF else 1
                    if room < 0:
                        break
                    cut += 1
                pieces.append(token.value[:cut])
            break
    _trim_end(pieces, open_tags)
    closing = "".join(f"</{name}>" for name, _ in reversed(open_tags))
    return "".join(pieces) + closing + ELLIPSIS


def _trim_end(pieces: list[str], open_tags: list[tuple[str, int]]) -> None:
    """Drop trailing blanks and start tags left empty by a cut, until neither is at the end."""
    while pieces:
        last = pieces[-1]
        if last[:1] not in ("<", "&"):  # plain text, possibly cut to nothing
            if last.rstrip():
                pieces[-1] = last.rstrip()
                return
            pieces.pop()
        elif open_tags and open_tags[-1][1] == len(pieces) - 1:
            pieces.pop()
            open_tags.pop()
        else:
            return


class _EscapingFormatter(string.Formatter):
    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, str]:
        if not field_name.isidentifier():
            raise ValueError(
                f"template field {{{field_name}}} must be a plain name "
                "(no positional fields, attribute access or indexing)"
            )
        if field_name not in kwargs:
            raise KeyError(f"template field {{{field_name}}} has no value; got {sorted(kwargs)}")
        return kwargs[field_name], field_name

    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, Html) and not format_spec:
            return str(value)
        return escape_html(format(value, format_spec))


def _tokens(html: str) -> Iterator[_Token]:
    """Tokenise and validate ``html`` in one pass (raises :class:`TelegramHTMLError`)."""
    stack: list[_Open] = []
    pos = 0
    while pos < len(html):
        special = _SPECIAL.search(html, pos)
        stop = special.start() if special else len(html)
        if stop > pos:
            _check_text_context(stack, pos)
            yield _Token("text", pos, stop, html[pos:stop])
            pos = stop
            continue
        ch = html[pos]
        if ch == ">":
            raise TelegramHTMLError("unescaped '>': write &gt;", pos)
        if ch == "&":
            entity = _decode_entity(html, pos)
            _check_text_context(stack, pos)
            yield _Token("entity", pos, pos + entity[1], entity[0])
            pos += entity[1]
            continue
        match = _TAG.match(html, pos)
        if match is None:
            raise TelegramHTMLError(
                "'<' does not start a well-formed tag (attribute values must be quoted and "
                "hold no '<'): write &lt; for a literal '<'",
                pos,
            )
        closing, name, attributes = match.group(1) == "/", match.group(2).lower(), match.group(3)
        if closing:
            yield _close(stack, name, attributes, pos, match.end())
        else:
            _open(stack, name, attributes, pos)
            yield _Token("open", pos, match.end(), name)
        pos = match.end()
    if stack:
        raise TelegramHTMLError(f"<{stack[-1].name}> is never closed", stack[-1].position)


def _decode_entity(html: str, pos: int) -> tuple[str, int]:
    """(decoded character, source length) of the entity at ``pos``."""
    match = _ENTITY.match(html, pos)
    if match is None:
        raise TelegramHTMLError(
            "'&' does not start an entity Telegram knows (&lt; &gt; &amp; &quot; &#NN; "
            "&#xHH;, ending with ';'): write &amp;",
            pos,
        )
    named, decimal, hexadecimal = match.groups()
    if named:
        return _NAMED[named], match.end() - pos
    code = int(decimal) if decimal else int(hexadecimal, 16)
    if code == 0 or code >= 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        raise TelegramHTMLError(f"numeric entity {match.group(0)} is not a valid character", pos)
    return chr(code), match.end() - pos


def _check_text_context(stack: list[_Open], pos: int) -> None:
    if not stack:
        return
    if stack[-1].name == "pre" and stack[-1].has_tag:
        raise TelegramHTMLError("<pre> holds either text or one <code>, not both", pos)
    stack[-1].has_text = True


def _open(stack: list[_Open], name: str, attributes: str, pos: int) -> None:
    if name not in _ALLOWED_TAGS:
        raise TelegramHTMLError(f"tag <{name}> is not in Telegram's HTML subset", pos)
    attrs: dict[str, str | None] = {}
    for match in _ATTRIBUTE.finditer(attributes):
        key = match.group(1).lower()
        value = match.group(2) if match.group(2) is not None else match.group(3)
        if key in attrs:
            raise TelegramHTMLError(f"<{name}> repeats attribute {key!r}", pos)
        if value is not None:
            _check_attribute_value(value, pos)
        attrs[key] = value
    parent = stack[-1] if stack else None
    _check_attributes(name, attrs, parent.name if parent else None, pos)
    open_names = {entry.name for entry in stack}
    if "code" in open_names:
        raise TelegramHTMLError(f"<{name}> inside <code>: code holds plain text only", pos)
    if (
        parent is not None
        and parent.name == "pre"
        and (name != "code" or parent.has_tag or parent.has_text)
    ):
        raise TelegramHTMLError("<pre> holds either text or one <code>, not both", pos)
    if name in ("a", "blockquote") and name in open_names:
        raise TelegramHTMLError(f"<{name}> inside another <{name}>", pos)
    if parent is not None:
        parent.has_tag = True
    stack.append(_Open(name, pos))


def _check_attributes(
    name: str, attrs: dict[str, str | None], parent: str | None, pos: int
) -> None:
    if name == "a":
        if set(attrs) != {"href"} or not attrs["href"]:
            raise TelegramHTMLError('<a> needs exactly one non-empty, quoted href="…"', pos)
    elif name == "span":
        if attrs != {"class": "tg-spoiler"}:
            raise TelegramHTMLError('<span> is only allowed as <span class="tg-spoiler">', pos)
    elif name == "blockquote":
        if attrs not in ({}, {"expandable": None}):
            raise TelegramHTMLError("<blockquote> takes only the bare attribute expandable", pos)
    elif name == "code":
        language = attrs.get("class")
        if set(attrs) - {"class"} or (attrs and not (language or "").startswith("language-")):
            raise TelegramHTMLError('<code> takes only class="language-…"', pos)
        if attrs and (parent != "pre" or language == "language-"):
            raise TelegramHTMLError(
                'a language (<code class="language-…">) needs a name and a directly enclosing <pre>',
                pos,
            )
    elif attrs:
        raise TelegramHTMLError(f"<{name}> takes no attributes", pos)


def _check_attribute_value(value: str, pos: int) -> None:
    offset = 0
    while (amp := value.find("&", offset)) >= 0:
        try:
            offset = amp + _decode_entity(value, amp)[1]
        except TelegramHTMLError as e:
            raise TelegramHTMLError(f"in an attribute value: {e.problem}", pos) from e


def _close(stack: list[_Open], name: str, attributes: str, pos: int, end: int) -> _Token:
    if attributes.strip():
        raise TelegramHTMLError(f"end tag </{name}> has attributes", pos)
    if not stack:
        raise TelegramHTMLError(f"end tag </{name}> has no start tag", pos)
    expected = stack[-1]
    if name != expected.name:
        raise TelegramHTMLError(
            f"end tag </{name}> closes <{expected.name}> opened at character {expected.position}",
            pos,
        )
    stack.pop()
    return _Token("close", pos, end, name)
