"""A loopback stand-in for the Telegram Bot API that checks the contract a client must keep.

What is real and what is not:

* Answers use the real recorded bodies of ``../shared/fixtures/telegram/bot_api`` where one
  exists: ``getMe`` (and a few read-only methods) verbatim from ``silikidi/``; the errors (401,
  400 chat not found / message text is empty / reply message not found / group migrated, 403
  blocked / kicked / not a member, 429) from ``errors_TelegramBotAPI/`` with only the
  placeholders filled in (``retry after X`` / ``retry_after: 123`` become the injected delay).
  The 2016-style 429 without ``parameters`` is the raw body quoted in cjbot#13.
* ``parse_mode=HTML`` is parsed by :func:`parse_html`, written from tdlib's ``parse_html``
  (the parser behind the Bot API) and independent of the client's validator: byte offsets and
  the wording of ``Bad Request: can't parse entities: …`` follow Telegram's, e.g. the quoted
  ``Unsupported start tag "</b" at byte offset 84``. The text limit is 4096 UTF-16 code units
  of the parsed, trimmed text (``Bad Request: message is too long``).
* **Synthetic:** ``404 Not Found`` for unknown methods (Telegram's wording, no recording), the
  ``Bad Request: chat_id is empty`` check, 5xx bodies, the ``Message`` objects returned by
  ``sendMessage`` (shape of the recorded updates) and everything prefixed ``stand-in:`` (it
  rejects unknown ``sendMessage`` parameters, which Telegram silently ignores, to catch typos).
* Flood control is enforced like Telegram's, with ``tolerance_s`` slack: 1 message/s per chat,
  20/min per group (negative or ``@name`` chat ids), 30/s overall; a violation is answered 429
  and listed in :attr:`TelegramStandIn.violations`.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.support.loopback import LoopbackHTTP

TEXT_LIMIT = 4096


def _words(text: str) -> list[str]:
    return text.split()


#: Per-chat behaviours (:meth:`TelegramStandIn.set_chat`) and other answers, by recorded body.
_ERROR_FILES = dict(
    pair.split("=")
    for pair in _words("""unauthorized=unauthorized too_many=too-many-requests
    empty=bad-request-message-text-is-empty reply=bad-request-reply-message-not-found
    chat_not_found=bad-request-chat-not-found migrated=bad-request-group-chat-migrated
    blocked=forbidden-bot-blocked-by-user kicked=forbidden-bot-was-kicked
    not_member_channel=forbidden-bot-not-member-channel deactivated=forbidden-user-is-deactivated
    not_member_supergroup=forbidden-bot-not-member-supergroup
    cant_initiate=forbidden-cant-initiate-conversation""")
)
_RECORDED_METHODS = {m.lower(): m for m in _words("getMe getChat getWebhookInfo deleteWebhook")}
_SEND_PARAMETERS = frozenset(
    _words("""chat_id text parse_mode entities link_preview_options disable_web_page_preview
    disable_notification protect_content reply_parameters reply_to_message_id reply_markup
    allow_sending_without_reply message_thread_id business_connection_id message_effect_id
    allow_paid_broadcast""")
)
_TAGS = dict(  # tag -> entity type
    pair.split("=")
    for pair in _words("""a=text_link b=bold strong=bold i=italic em=italic u=underline ins=underline
    s=strikethrough strike=strikethrough del=strikethrough tg-spoiler=spoiler span=spoiler
    code=code pre=pre blockquote=blockquote tg-emoji=custom_emoji""")
)
_SPACE = frozenset(b" \t\r\n\v\0")
_NAMED = {b"lt": 60, b"gt": 62, b"amp": 38, b"quot": 34}


class EntityParseError(ValueError):
    """Telegram's reason, worded as in ``Bad Request: can't parse entities: <reason>``."""


def _at(data: bytes, k: int) -> int:
    """The byte at ``k``, or 0 past the end (tdlib reads a NUL-terminated string)."""
    return data[k] if k < len(data) else 0


def _skip_spaces(data: bytes, i: int) -> int:
    while _at(data, i) and _at(data, i) in _SPACE:
        i += 1
    return i


def _decode_entity(data: bytes, pos: int) -> tuple[int, int]:
    """(code point, position after it) of the reference at ``pos``; (0, pos) if none."""
    end, value = pos + 1, 0
    if _at(data, end) == ord("#"):
        end += 1
        hexadecimal = _at(data, end) == ord("x")  # lower-case only, as in tdlib
        end += hexadecimal
        digits = b"0123456789abcdefABCDEF" if hexadecimal else b"0123456789"
        while _at(data, end) and _at(data, end) in digits:
            value = value * (16 if hexadecimal else 10) + int(chr(data[end]), 16)
            end += 1
            if value >= 0x10FFFF:
                return 0, pos
        if value == 0 or end - pos >= 10:
            return 0, pos
    else:
        while chr(_at(data, end)).isascii() and chr(_at(data, end)).isalpha():
            end += 1
        value = _NAMED.get(data[pos + 1 : end], 0)
        if not value:
            return 0, pos  # not an entity: Telegram keeps the "&" as text
    return value, end + (_at(data, end) == ord(";"))


def _start_tag(data: bytes, begin: int) -> tuple[str, str, bool, int]:
    """(tag, argument, expandable, index of its ">") for the start tag at ``begin``."""
    i = begin + 1
    while _at(data, i) not in _SPACE and _at(data, i) != ord(">"):
        i += 1
    if _at(data, i) == 0:
        raise EntityParseError(f"Unclosed start tag at byte offset {begin}")
    tag = data[begin + 1 : i].decode("utf-8", "replace").lower()
    if tag not in _TAGS:
        raise EntityParseError(f'Unsupported start tag "{tag}" at byte offset {begin}')
    argument, expandable = b"", False
    while _at(data, i) != ord(">"):
        i = _skip_spaces(data, i)
        if _at(data, i) == ord(">"):
            break
        name_begin = i
        while _at(data, i) not in _SPACE and _at(data, i) not in b"=>":
            i += 1
        name = data[name_begin:i]
        if not name:
            raise EntityParseError(
                f'Empty attribute name in the tag "{tag}" at byte offset {begin}'
            )
        i = _skip_spaces(data, i)
        if _at(data, i) != ord("="):
            if tag == "blockquote" and name == b"expandable":
                expandable = True
                continue
            raise EntityParseError(
                f'Expected equal sign in declaration of an attribute of the tag "{tag}" '
                f"at byte offset {begin}"
            )
        i = _skip_spaces(data, i + 1)
        if _at(data, i) == 0:
            raise EntityParseError(f'Unclosed start tag "{tag}" at byte offset {begin}')
        value = bytearray()
        if _at(data, i) not in b"'\"":  # an unquoted name token: letters, digits, "." and "-"
            token_begin = i
            while chr(_at(data, i)).isascii() and (chr(data[i]).isalnum() or data[i] in b".-"):
                i += 1
            value += data[token_begin:i].lower()
            if _at(data, i) not in _SPACE and _at(data, i) != ord(">"):
                raise EntityParseError(f"Unexpected end of name token at byte offset {token_begin}")
        else:
            quote, i = data[i], i + 1
            while _at(data, i) != quote and _at(data, i) != 0:
                ch, after = _decode_entity(data, i) if data[i] == ord("&") else (0, i)
                value += chr(ch).encode("utf-8", "surrogatepass") if ch else data[i : i + 1]
                i = after if ch else i + 1
            i += _at(data, i) == quote
        if _at(data, i) == 0:
            raise EntityParseError(f"Unclosed start tag at byte offset {begin}")
        if (tag, name) in (("a", b"href"), ("tg-emoji", b"emoji-id")):
            argument = bytes(value)
        elif (tag, name) == ("code", b"class") and value.startswith(b"language-"):
            argument = bytes(value[9:])
        elif (tag, name) == ("span", b"class") and value.startswith(b"tg-"):
            argument = bytes(value[3:])
    if tag == "span" and argument != b"spoiler":
        raise EntityParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {begin}')
    return tag, argument.decode("utf-8", "replace"), expandable, i


def parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Telegram's reading of ``text`` with ``parse_mode=HTML``: (plain text, entities).

    Entity offsets and lengths are UTF-16 code units. Raises :class:`EntityParseError`.
    """
    data = text.encode("utf-8", "surrogatepass")
    out, entities = bytearray(), []
    stack: list[tuple[str, str, int, bool]] = []  # (tag, argument, UTF-16 offset, expandable)
    utf16, i = 0, 0
    while i < len(data):
        c = data[i]
        if c == ord("&"):
            ch, after = _decode_entity(data, i)
            if ch:
                out += chr(ch).encode("utf-8", "surrogatepass")
                utf16, i = utf16 + 1 + (ch > 0xFFFF), after
                continue
        if c != ord("<"):
            out.append(c)
            utf16 += (c & 0xC0 != 0x80) * (1 + (c >= 0xF0))  # a 4-byte character is 2 units
            i += 1
            continue
        begin = i
        if _at(data, i + 1) != ord("/"):
            tag, argument, expandable, i = _start_tag(data, begin)
            stack.append((tag, argument, utf16, expandable))
            i += 1
            continue
        if not stack:
            raise EntityParseError(f"Unexpected end tag at byte offset {begin}")
        i += 1
        while _at(data, i) not in _SPACE and _at(data, i) != ord(">"):
            i += 1
        end_tag = data[begin + 2 : i].decode("utf-8", "replace").lower()
        i = _skip_spaces(data, i)
        if _at(data, i) != ord(">"):
            raise EntityParseError(f"Unclosed end tag at byte offset {begin}")
        tag, argument, offset, expandable = stack.pop()
        if end_tag and end_tag != tag:
            raise EntityParseError(
                f'Unmatched end tag at byte offset {begin}, expected "</{tag}>", '
                f'found "</{end_tag}>"'
            )
        if utf16 > offset:  # Telegram drops empty entities
            kind = "expandable_blockquote" if expandable else _TAGS[tag]
            entity: dict[str, Any] = {"type": kind, "offset": offset, "length": utf16 - offset}
            if tag == "a" or (tag == "code" and argument):
                entity["url" if tag == "a" else "language"] = argument
            entities.append(entity)
        i += 1
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return out.decode("utf-8", "surrogatepass"), entities


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


@dataclass(frozen=True)
class Fault:
    """An injected answer for the next matching request (``chat_id`` None: any chat).

    ``delay_s`` sleeps before answering, as a server that never answered in time would; the
    request is then answered with ``status``/``body`` and not processed.
    """

    status: int
    body: dict[str, Any] | str
    method: str = "sendmessage"
    chat_id: str | None = None
    delay_s: float = 0.0


@dataclass(frozen=True)
class AcceptedMessage:
    """A message the stand-in accepted; ``time`` is on the stand-in's (possibly fake) clock."""

    chat_id: str
    message_id: int
    text: str
    plain_text: str
    entities: list[dict[str, Any]]
    time: float
    parameters: dict[str, Any]


@dataclass(frozen=True)
class Call:
    """Any request, as answered: method name as sent, parameters, HTTP status."""

    method: str
    parameters: dict[str, Any]
    status: int


@dataclass
class TelegramStandIn:
    """Context manager serving the stand-in on ``127.0.0.1`` (random port); see the module doc.

    ``bot_api_dir`` is ``<shared fixtures>/telegram/bot_api``; :attr:`base_url` is the API root.
    Set a limit to ``None`` to stop enforcing it.
    """

    bot_api_dir: Path
    token: str = "123456789:AAE-stand-in-secret-token_0123456789"
    per_chat_interval_s: float | None = 1.0
    group_per_minute: int | None = 20
    global_per_second: int | None = 30
    tolerance_s: float = 0.05
    clock: Callable[[], float] = time.monotonic
    accepted: list[AcceptedMessage] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    violations: list[tuple[str, str]] = field(default_factory=list)
    _faults: list[Fault] = field(default_factory=list)
    _chats: dict[str, str] = field(default_factory=dict)
    _sends: dict[str, deque[float]] = field(default_factory=dict)
    _all_sends: deque[float] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _http: LoopbackHTTP | None = None

    def __enter__(self) -> TelegramStandIn:
        self._http = LoopbackHTTP(_make_handler(self))
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._http is not None
        self._http.close()

    @property
    def base_url(self) -> str:
        assert self._http is not None, "enter the context manager first"
        return self._http.url

    # -- configuration ---------------------------------------------------------------------------
    def recorded(self, *parts: str) -> Any:
        """The decoded JSON of a recorded file under ``bot_api_dir``."""
        return json.loads(self.bot_api_dir.joinpath(*parts).read_text())

    def recorded_error(self, name: str) -> dict[str, Any]:
        return self.recorded("errors_TelegramBotAPI", f"{_ERROR_FILES[name]}.json")

    def set_chat(self, chat_id: int | str, behaviour: str | None) -> None:
        """Answer every send to ``chat_id`` with a recorded error (None clears): ``chat_not_found``,
        ``migrated``, ``blocked``, ``kicked``, ``not_member_channel``, ``not_member_supergroup``,
        ``cant_initiate`` or ``deactivated``."""
        if behaviour is not None and behaviour not in _ERROR_FILES:
            raise KeyError(f"no recorded error {behaviour!r}; known: {sorted(_ERROR_FILES)}")
        with self._lock:
            if behaviour is None:
                self._chats.pop(str(chat_id), None)
            else:
                self._chats[str(chat_id)] = behaviour

    def inject(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    def rate_limit_fault(
        self, retry_after: int, *, chat_id: int | str | None = None, old_style: bool = False
    ) -> Fault:
        """429 from the recorded template (or the 2016 raw body without ``parameters``)."""
        if old_style:
            quoted = self.recorded("errors_quoted_in_issues.json")
            raw = next(e["raw_body"] for e in quoted if "cjbot" in e["source"])
            return Fault(
                429,
                raw.replace("retry after 3", f"retry after {retry_after}"),
                chat_id=_opt(chat_id),
            )
        return Fault(
            429, _too_many(self.recorded_error("too_many"), retry_after), chat_id=_opt(chat_id)
        )

    def sent_to(self, chat_id: int | str) -> list[AcceptedMessage]:
        with self._lock:
            return [m for m in self.accepted if m.chat_id == str(chat_id)]

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method.lower() == method.lower()]

    # -- serving -----------------------------------------------------------------------------------
    def _handle(
        self, path: str, parameters: dict[str, Any]
    ) -> tuple[int, dict[str, Any] | str, float]:
        match = re.fullmatch(r"/bot([^/]+)/([A-Za-z]+)", path)
        if match is None or match.group(2).lower() not in _RECORDED_METHODS | {"sendmessage": ""}:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}, 0.0
        if match.group(1) != self.token:
            return 401, self.recorded_error("unauthorized"), 0.0
        method = match.group(2).lower()
        with self._lock:
            chat = str(parameters.get("chat_id", ""))
            fault = next(
                (f for f in self._faults if f.method == method and f.chat_id in (None, chat)), None
            )
            if fault is not None:
                self._faults.remove(fault)
                return fault.status, fault.body, fault.delay_s
            if method != "sendmessage":
                return 200, self.recorded("silikidi", f"{_RECORDED_METHODS[method]}.json"), 0.0
            return (*self._send_message(parameters), 0.0)

    def _send_message(self, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        unknown = sorted(set(p) - _SEND_PARAMETERS)
        if unknown:
            return _bad(f"stand-in: unknown parameter(s) {unknown}")
        chat = "" if p.get("chat_id") is None else str(p["chat_id"]).strip()
        if not chat:
            return _bad("Bad Request: chat_id is empty")
        if isinstance(p.get("chat_id"), bool) or not re.fullmatch(r"-?\d+|@[A-Za-z]\w{3,}", chat):
            return 400, self.recorded_error("chat_not_found")
        if chat in self._chats:
            body = self.recorded_error(self._chats[chat])
            return body["error_code"], body
        text = p.get("text")
        mode = str(p.get("parse_mode") or "").lower()
        if not isinstance(text, str) or not text.strip():
            return 400, self.recorded_error("empty")
        if mode not in ("", "html"):
            return _bad(
                "Bad Request: unsupported parse_mode"
                if mode not in ("markdown", "markdownv2")
                else f"stand-in: parse_mode {p['parse_mode']} is not implemented"
            )
        for name in ("link_preview_options", "reply_parameters"):
            if name in p and not isinstance(p[name], dict):
                return _bad(f"Bad Request: can't parse {name.replace('_', ' ')} JSON object")
        try:
            plain, entities = parse_html(text) if mode == "html" else (text, [])
        except EntityParseError as e:
            return _bad(f"Bad Request: can't parse entities: {e}")
        plain = plain.strip(" \t\r\n\v\f")
        if not plain:
            return 400, self.recorded_error("empty")
        if utf16_units(plain) > TEXT_LIMIT:
            return _bad("Bad Request: message is too long")
        reply = (p.get("reply_parameters") or {}).get("message_id", p.get("reply_to_message_id"))
        if reply is not None and not any(
            m.message_id == reply for m in self.accepted if m.chat_id == chat
        ):
            return 400, self.recorded_error("reply")
        now = self.clock()
        wait, reason = self._flood_wait(chat, now)
        if wait > 0:
            self.violations.append((chat, reason))
            return 429, _too_many(self.recorded_error("too_many"), max(1, math.ceil(wait)))
        self._sends.setdefault(chat, deque()).append(now)
        self._all_sends.append(now)
        message_id = sum(1 for m in self.accepted if m.chat_id == chat) + 1
        self.accepted.append(AcceptedMessage(chat, message_id, text, plain, entities, now, dict(p)))
        bot = self.recorded("silikidi", "getMe.json")["result"]
        result = {
            "message_id": message_id,
            "from": {k: bot[k] for k in ("id", "is_bot", "first_name", "username")},
            "chat": _chat_object(chat),
            "date": int(time.time()),
            "text": plain,
        }
        if entities:
            result["entities"] = entities
        return 200, {"ok": True, "result": result}

    def _flood_wait(self, chat: str, now: float) -> tuple[float, str]:
        """Seconds this send came too early (beyond the tolerance), and which limit it broke."""
        sends, slack = self._sends.get(chat, deque()), self.tolerance_s
        if (
            self.per_chat_interval_s is not None
            and sends
            and now - sends[-1] < self.per_chat_interval_s - slack
        ):
            return sends[-1] + self.per_chat_interval_s - now, "per-chat interval"
        if self.group_per_minute is not None and (chat.startswith(("-", "@"))):
            recent = [t for t in sends if t > now - 60.0 + slack]
            if len(recent) >= self.group_per_minute:
                return recent[-self.group_per_minute] + 60.0 - now, "group per minute"
        if self.global_per_second is not None:
            recent = [t for t in self._all_sends if t > now - 1.0 + slack]
            if len(recent) >= self.global_per_second:
                return recent[-self.global_per_second] + 1.0 - now, "global per second"
        return 0.0, ""


def _opt(chat_id: int | str | None) -> str | None:
    return None if chat_id is None else str(chat_id)


def _bad(description: str) -> tuple[int, dict[str, Any]]:
    return 400, {"ok": False, "error_code": 400, "description": description}


def _too_many(template: dict[str, Any], retry_after: int) -> dict[str, Any]:
    body = json.loads(json.dumps(template))
    body["description"] = body["description"].replace("retry after X", f"retry after {retry_after}")
    body["parameters"]["retry_after"] = retry_after
    return body


def _chat_object(chat: str) -> dict[str, Any]:
    if chat.startswith("@"):  # synthetic numeric id for a public channel
        name = chat[1:]
        return {
            "id": -1001000000000 - sum(map(ord, name)),
            "title": name,
            "username": name,
            "type": "channel",
        }
    if chat.startswith("-"):
        return {"id": int(chat), "title": "Signalworks stand-in group", "type": "supergroup"}
    return {"id": int(chat), "first_name": "JOHN", "last_name": "DOE", "type": "private"}


def _make_handler(standin: TelegramStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stalls

        def log_message(self, format: str, *args: object) -> None:
            """Silence the access log (it would print the token)."""

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _serve(self) -> None:
            url = urlsplit(self.path)
            parameters: dict[str, Any] = dict(parse_qsl(url.query))
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            kind = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            status: int
            body: dict[str, Any] | str
            try:
                if kind == "application/json" and raw:
                    parameters.update(json.loads(raw))
                status, body, delay = standin._handle(url.path, parameters)
            except (ValueError, AttributeError, TypeError):
                (status, body), delay = _bad("stand-in: body is not a JSON object"), 0.0
            if delay:
                time.sleep(delay)
            with standin._lock:
                standin.calls.append(Call(url.path.rsplit("/", 1)[-1], parameters, status))
            payload = (body if isinstance(body, str) else json.dumps(body)).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting

    return Handler
