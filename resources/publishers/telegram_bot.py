"""Live Telegram Bot API client: ``getMe`` and HTML ``sendMessage`` behind a flood gate.

Errors are translated here, once, into :mod:`resources.exchanges.errors`: 429 becomes
:class:`RateLimitedError` carrying ``retry_after`` (and pauses the chat in the
:class:`~resources.publishers.flood.FloodGate`); 400, 401, 403, 404 and 409 become
:class:`TelegramRejectedError` (permanent, with Telegram's description and what to fix); 5xx,
network errors, timeouts and malformed bodies are transient and retried by the
:class:`~resources.retry.RetryPolicy`.

The bot token is part of every request URL (``/bot<token>/<method>``). It is kept out of logs,
reprs and exception texts by construction: the httpx client only ever sees the placeholder
``/bot***/``, and the token is put in by :class:`_TokenTransport`, below the layer that logs
requests and attaches them to errors.

Delivery is at-least-once: a request that timed out after Telegram received it is sent again.
The outbox's per-publisher claim guards against publishing a signal twice; this client cannot
(the Bot API has no idempotency key).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

from resources.exchanges.errors import (
    PermanentError,
    RateLimitedError,
    RetriesExhaustedError,
    TransientError,
)
from resources.http_common import tls_context
from resources.publishers.flood import ChatId, ChatKind, FloodGate
from resources.retry import RetryPolicy

logger = logging.getLogger(__name__)

T = TypeVar("T")

SOURCE = "telegram"
DEFAULT_BASE_URL = "https://api.telegram.org"
_PLACEHOLDER = "***"
_TOKEN_FORMAT = re.compile(r"^[0-9]+:[A-Za-z0-9_-]+$")
_RETRY_AFTER_TEXT = re.compile(r"retry after (\d+)", re.IGNORECASE)
#: Pause given to a chat after a 429 that did not say how long to wait.
_DEFAULT_PENALTY_S = 1.0

_RENDER = "resources.publishers.render"
#: What to fix, by a lower-case fragment of Telegram's description.
_HINTS = {
    "can't parse entities": f"not valid Telegram HTML: build it with {_RENDER}.render_template",
    "message is too long": f"over 4096 UTF-16 units: cut it with {_RENDER}.fit_message",
    "message text is empty": "the rendered message is empty: check the template and values",
    "chat not found": "check the configured chat id ('@name' or -100… for a channel) and "
    "that the bot was added to the chat",
    "reply message not found": "the message to reply to is gone: send without a reply",
    "not enough rights": "allow the bot to send messages in this chat",
    "bot was blocked by the user": "the user blocked the bot: drop this chat from the routing "
    "rules, or ask the user to unblock the bot",
    "not a member of the channel": "add the bot to the channel as an administrator allowed to "
    "post messages",
    "not a member of the supergroup": "add the bot to the group",
    "bot was kicked": "the bot was removed from the group: add it again or drop the chat",
    "can't initiate conversation": "the user must open the bot and press Start first",
    "user is deactivated": "the account was deleted: drop this chat from the routing rules",
    "can't send messages to bots": "the chat id belongs to a bot: use a user, group or channel",
}
_STATUS_HINTS = {
    401: "the bot token was rejected: check the token configured for this publisher "
    "(issued by @BotFather; a revoked token stops working)",
    404: "check base_url and that the token has the form '<bot id>:<secret>'",
    409: "another process is using this bot token in a conflicting way",
}


@dataclass(frozen=True)
class SentMessage:
    """A message Telegram accepted: its chat, its id within that chat and its UTC date."""

    chat_id: int
    message_id: int
    date: datetime


class TelegramRejectedError(PermanentError):
    """Telegram refused a request (4xx other than 429); retrying the same request cannot help.

    ``error_code`` and ``description`` are Telegram's own; ``migrate_to_chat_id`` is set when a
    group was migrated to a supergroup.
    """

    def __init__(
        self,
        message: str,
        *,
        error_code: int,
        description: str,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        super().__init__(message, source=SOURCE)
        self.error_code = error_code
        self.description = description
        self.migrate_to_chat_id = migrate_to_chat_id


class _DeferError(Exception):
    """Carries a 429 whose wait is too long to spend inside a run, past the retry policy."""

    def __init__(self, error: RateLimitedError) -> None:
        super().__init__(str(error))
        self.error = error


class _TokenTransport(httpx.BaseTransport):
    """Puts the token into the URL of the outgoing copy of each request, and nowhere else."""

    def __init__(self, inner: httpx.BaseTransport, token: str) -> None:
        self._inner = inner
        self._marker = f"/bot{_PLACEHOLDER}/".encode()
        self._real = f"/bot{token}/".encode()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url.copy_with(
            raw_path=request.url.raw_path.replace(self._marker, self._real, 1)
        )
        outgoing = httpx.Request(
            request.method,
            url,
            headers=request.headers,
            stream=request.stream,
            extensions=request.extensions,
        )
        return self._inner.handle_request(outgoing)

    def close(self) -> None:
        self._inner.close()


class TelegramBotClient:
    """Synchronous client for the Telegram Bot API.

    Parameters
    ----------
    token
        The bot token from @BotFather (``<bot id>:<secret>``); never logged or shown.
    base_url
        API root; a loopback stand-in in tests.
    timeout_s
        Per-request timeout in seconds (connect, read, write and pool).
    flood
        Gate every ``sendMessage`` passes; a fresh :class:`FloodGate` when ``None``. Share one
        gate between all clients of the same bot, since the limits are per bot.
    retry
        Retry policy for transient failures; a default :class:`RetryPolicy` when ``None``.
    max_retry_after_s
        A 429 asking to wait longer than this is not waited out: it is raised at once as
        :class:`RateLimitedError`, so the caller can leave the message pending for a later run.
    """

    def __init__(
        self,
        token: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout_s: float = 10,
        flood: FloodGate | None = None,
        retry: RetryPolicy | None = None,
        max_retry_after_s: float = 60.0,
    ) -> None:
        if not _TOKEN_FORMAT.match(token or ""):
            raise ValueError(
                "the Telegram bot token is malformed: expected '<bot id>:<secret>' as issued by "
                "@BotFather (check the publisher's token setting)"
            )
        self._token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.base_url = base_url.rstrip("/")
        self.max_retry_after_s = max_retry_after_s
        self._flood = flood if flood is not None else FloodGate()
        self._retry = retry if retry is not None else RetryPolicy()
        transport = _TokenTransport(httpx.HTTPTransport(verify=tls_context()), token)
        self._http = httpx.Client(
            base_url=self.base_url,
            transport=transport,
            headers={"accept": "application/json", "user-agent": "signalworks/0.1"},
            timeout=httpx.Timeout(timeout_s),
        )

    def __repr__(self) -> str:
        return (
            f"TelegramBotClient(base_url={self.base_url!r}, token='{self.bot_id}:{_PLACEHOLDER}')"
        )

    def __enter__(self) -> TelegramBotClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying HTTP connection pool."""
        self._http.close()

    @property
    def flood(self) -> FloodGate:
        """The gate this client's sends pass through."""
        return self._flood

    def get_me(self) -> dict[str, Any]:
        """The bot's own ``User`` object (``getMe``): checks the token and the base URL.

        Raises
        ------
        TelegramRejectedError
            The token was rejected (401) or the path is wrong (404).
        RetriesExhaustedError
            A transient failure outlived every retry.
        """
        result = self._retrying(lambda: self._post("getMe", {}), what="getMe")
        if not isinstance(result, dict):
            raise PermanentError(f"getMe returned a {type(result).__name__}", source=SOURCE)
        return result

    def send_message(
        self,
        chat_id: ChatId,
        html: str,
        *,
        disable_web_page_preview: bool = True,
        reply_to_message_id: int | None = None,
        chat_kind: ChatKind = "group",
        deadline: float | None = None,
    ) -> SentMessage:
        """Send ``html`` (``parse_mode="HTML"``) to ``chat_id`` once the flood gate allows it.

        ``deadline`` (a reading of the flood gate's clock, :meth:`FloodGate.now`): when the flood
        limits, or a pause after a 429, would hold the message past it, nothing is sent and
        :class:`~resources.publishers.flood.SendWindowClosedError` is raised.

        ``html`` should come from :func:`~resources.publishers.render.render_template` and
        :func:`~resources.publishers.render.fit_message`; Telegram is the judge of what it accepts.

        Raises
        ------
        TelegramRejectedError
            Telegram refused the message (bad HTML, too long, chat not found, bot blocked, …);
            not retried.
        RateLimitedError
            Telegram asked to wait longer than ``max_retry_after_s``; the chat is paused in the
            flood gate for that long.
        RetriesExhaustedError
            A transient failure (5xx, network, timeout, repeated short 429s) outlived every retry.
        SendWindowClosedError
            The message could not have gone before ``deadline``.
        """
        payload: dict[str, Any] = {
            "chat_id": chat_id,
            "text": html,
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": disable_web_page_preview},
        }
        if reply_to_message_id is not None:
            payload["reply_parameters"] = {"message_id": reply_to_message_id}

        def attempt() -> SentMessage:
            self._flood.wait(chat_id, chat_kind, deadline=deadline)
            try:
                result = self._post("sendMessage", payload, chat_id=chat_id)
            except RateLimitedError as e:
                wait = e.retry_after if e.retry_after is not None else _DEFAULT_PENALTY_S
                self._flood.penalise(chat_id, wait)
                if wait > self.max_retry_after_s:
                    raise _DeferError(e) from e
                raise
            return _sent_message(result, chat_id)

        try:
            sent = self._retrying(attempt, what=f"sendMessage to chat {chat_id}")
        except _DeferError as deferred:
            raise deferred.error from None
        logger.info("telegram: sent message %d to chat %s", sent.message_id, sent.chat_id)
        return sent

    # -- plumbing ------------------------------------------------------------------------------
    def _retrying(self, fn: Callable[[], T], *, what: str) -> T:
        try:
            return self._retry.call(fn, what=what)
        except RetriesExhaustedError as e:
            error = RetriesExhaustedError(  # e's text already starts with "telegram: "
                f"{self._redact(str(e))} Telegram may be down or unreachable from here; "
                f"base URL in use: {self.base_url}"
            )
            error.source = SOURCE
            raise error from e

    def _post(
        self, method: str, payload: Mapping[str, Any], *, chat_id: ChatId | None = None
    ) -> Any:
        """POST ``payload`` as JSON to ``method``; the ``result`` or a translated error."""
        try:
            response = self._http.post(f"/bot{_PLACEHOLDER}/{method}", json=dict(payload))
        except httpx.TimeoutException as e:
            raise TransientError(
                f"{method} timed out ({type(e).__name__})", source=SOURCE
            ) from self._safe(e)
        except httpx.TransportError as e:
            raise TransientError(
                f"{method} failed: {type(e).__name__}: {self._redact(str(e))}", source=SOURCE
            ) from self._safe(e)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {}
        if response.status_code == 200 and body.get("ok") is True and "result" in body:
            return body["result"]
        raise self._translate(method, response, body, chat_id)

    def _translate(
        self, method: str, response: httpx.Response, body: dict[str, Any], chat_id: ChatId | None
    ) -> Exception:
        code = body.get("error_code")
        status = code if isinstance(code, int) else response.status_code
        description = self._redact(str(body.get("description") or response.reason_phrase))[:300]
        target = f"{method} to chat {chat_id}" if chat_id is not None else method
        parameters = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
        if status == 429:
            retry_after = _retry_after(parameters, description, response.headers.get("retry-after"))
            return RateLimitedError(
                f"{target} rate limited (429 {description!r}, retry after {retry_after}s)",
                source=SOURCE,
                retry_after=retry_after,
            )
        if status >= 500 or status == 200:
            return TransientError(
                f"{target} failed with HTTP {response.status_code}: {description!r}", source=SOURCE
            )
        lowered = description.lower()
        hint = next(
            (h for fragment, h in _HINTS.items() if fragment in lowered), _STATUS_HINTS.get(status)
        )
        migrate_to = parameters.get("migrate_to_chat_id")
        if isinstance(migrate_to, int):
            hint = f"the group became a supergroup: change the chat id to {migrate_to}"
        message = f"{target} rejected ({status} {description!r})"
        return TelegramRejectedError(
            f"{message}: {hint}" if hint else message,
            error_code=status,
            description=description,
            migrate_to_chat_id=migrate_to if isinstance(migrate_to, int) else None,
        )

    def _redact(self, text: str) -> str:
        return text.replace(self._token, f"{self.bot_id}:{_PLACEHOLDER}")

    def _safe(self, error: Exception) -> Exception:
        """``error`` to chain from, or a token-free copy of it should its text hold the token."""
        if self._token not in str(error):
            return error
        return TransientError(f"{type(error).__name__}: {self._redact(str(error))}", source=SOURCE)


def _retry_after(
    parameters: Mapping[str, Any], description: str, header: str | None
) -> float | None:
    """Seconds to wait: ``parameters.retry_after``, else the number in old-style descriptions
    ("Too Many Requests: retry after 34", before 2017), else a ``Retry-After`` header."""
    value = parameters.get("retry_after")
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    match = _RETRY_AFTER_TEXT.search(description)
    if match:
        return float(match.group(1))
    try:
        return max(0.0, float(header)) if header else None
    except ValueError:
        return None


def _sent_message(result: Any, chat_id: ChatId) -> SentMessage:
    """The :class:`SentMessage` in a successful ``sendMessage`` result.

    A malformed result is permanent, not transient: Telegram said ``ok``, so the message was
    delivered and sending it again would duplicate it.
    """
    try:
        return SentMessage(
            chat_id=int(result["chat"]["id"]),
            message_id=int(result["message_id"]),
            date=datetime.fromtimestamp(int(result["date"]), tz=UTC),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise PermanentError(
            f"sendMessage to chat {chat_id} succeeded but its result is malformed "
            f"({type(e).__name__}); the message was probably delivered, do not resend it",
            source=SOURCE,
        ) from e
