"""Publishers: where a signal's rendered message goes (console, Telegram bot, Telethon, webhook).

Each publisher has a name, routing rules and ``send(message) -> external reference``. Sending
raises on failure (translated into :mod:`resources.exchanges.errors`), which rolls the outbox's
claim back so a later run can retry.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

from ml.signals.routing import MAX_SIGNAL_AGE_S, RoutingRules
from resources.exchanges.errors import PermanentError, RateLimitedError, TransientError
from resources.publishers.flood import FloodGate
from resources.publishers.render import fit_message, visible_text
from resources.retry import RetryPolicy
from resources.social_config import PublisherConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    """One rendered signal: Telegram HTML plus the structured payload (for webhooks).

    ``send_within_s``: seconds left, from when the publish op checked the signal's age, before a
    market signal turns older than MAX_SIGNAL_AGE; a publisher that would have to hold the message
    longer (Telegram's flood limits) raises :class:`~resources.publishers.flood.SendWindowClosedError` instead of sending it.
    """

    signal_id: int
    html: str
    payload: dict[str, Any]
    review: bool = False
    send_within_s: float | None = None

    @property
    def text(self) -> str:
        """What a chat shows for :attr:`html` (tags removed, entities decoded)."""
        return visible_text(self.html)


class Publisher(Protocol):
    name: str
    rules: RoutingRules
    priority: int
    blacklist_exceptions: tuple[str, ...]
    expiry_hours: float | None
    max_signal_age_s: float
    templates: dict[str, str | None]

    def send(self, message: Message) -> str | None: ...

    def close(self) -> None: ...


def rules_of(config: PublisherConfig) -> RoutingRules:
    return RoutingRules(min_confidence=config.min_confidence, chains=config.chains, sources=config.sources,
                        has_review_chat=config.review_chat_id is not None or config.kind == "console",
                        review_margin=config.review_margin, kinds=config.kinds, strategies=config.strategies,
                        symbols=config.symbols, muted_symbols=config.muted_symbols, risk_levels=config.risk_levels)


class _Base:
    def __init__(self, config: PublisherConfig, *, max_signal_age_s: float = MAX_SIGNAL_AGE_S) -> None:
        self.name = config.name
        self.rules = rules_of(config)
        self.priority = config.priority
        self.blacklist_exceptions = config.token_exceptions
        self.expiry_hours = config.expiry_hours
        self.max_signal_age_s = config.max_signal_age_s or max_signal_age_s
        self.templates = {"social": config.template, "market": config.market_template,
                          "funding": config.funding_template}

    def close(self) -> None:
        return None


class ConsolePublisher(_Base):
    """Writes what would have been sent to a log file (one JSON line each) and the logger."""

    def __init__(self, config: PublisherConfig, *, log_path: Path, max_signal_age_s: float = MAX_SIGNAL_AGE_S) -> None:
        super().__init__(config, max_signal_age_s=max_signal_age_s)
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)

    def send(self, message: Message) -> str | None:
        line = json.dumps({"publisher": self.name, "signal_id": message.signal_id, "review": message.review,
                           "kind": message.payload.get("kind"), "html": message.html, "text": message.text,
                           "at": time.time()}, ensure_ascii=False)
        with open(self.log_path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
        logger.info("[%s]%s %s", self.name, " (review)" if message.review else "", message.html)
        return f"console:{message.signal_id}"


class TelegramBotPublisher(_Base):
    """A chat (and optional manual-review chat) through the Bot API."""

    def __init__(self, config: PublisherConfig, *, token: str, base_url: str, flood: FloodGate,
                 max_signal_age_s: float = MAX_SIGNAL_AGE_S) -> None:
        super().__init__(config, max_signal_age_s=max_signal_age_s)
        from resources.publishers.telegram_bot import TelegramBotClient

        if not config.chat_id:
            raise ValueError(f"publisher {config.name}: telegram_bot needs chat_id")
        self.chat_id, self.chat_kind, self.review_chat_id = config.chat_id, config.chat_kind, config.review_chat_id
        self.client = TelegramBotClient(token, base_url=base_url, flood=flood)

    def send(self, message: Message) -> str | None:
        chat = self.review_chat_id if message.review else self.chat_id
        deadline = None if message.send_within_s is None else self.client.flood.now() + message.send_within_s
        sent = self.client.send_message(chat, fit_message(message.html), chat_kind=self.chat_kind,
                                        deadline=deadline)
        return f"{sent.chat_id}:{sent.message_id}"

    def close(self) -> None:
        self.client.close()


class TelethonPublisher(_Base):
    """Posts from a Telegram user account (Telethon session) — for chats a bot cannot post in."""

    def __init__(self, config: PublisherConfig, *, api_id: int, api_hash: str, session: str,
                 max_signal_age_s: float = MAX_SIGNAL_AGE_S) -> None:
        super().__init__(config, max_signal_age_s=max_signal_age_s)
        if not config.chat_id:
            raise ValueError(f"publisher {config.name}: telethon needs chat_id")
        self.chat_id, self.review_chat_id = config.chat_id, config.review_chat_id
        self._credentials = (api_id, api_hash, session)

    def send(self, message: Message) -> str | None:
        import asyncio

        from telethon import TelegramClient
        from telethon.errors import FloodWaitError, RPCError
        from telethon.sessions import StringSession

        api_id, api_hash, session = self._credentials
        chat = self.review_chat_id if message.review else self.chat_id

        async def post() -> str:
            async with TelegramClient(StringSession(session), api_id, api_hash) as client:
                sent = await client.send_message(chat, fit_message(message.html), parse_mode="html",
                                                 link_preview=False)
                return f"{chat}:{sent.id}"

        try:
            return asyncio.run(post())
        except FloodWaitError as error:
            raise RateLimitedError(str(error), source=self.name, retry_after=float(error.seconds)) from error
        except RPCError as error:
            raise PermanentError(f"Telegram refused the message: {error}", source=self.name) from error
        except OSError as error:
            raise TransientError(str(error), source=self.name) from error


class WebhookPublisher(_Base):
    """POSTs the signal as JSON to a trading bot, signed with HMAC-SHA256.

    Headers: ``X-Signalworks-Timestamp`` (unix seconds) and ``X-Signalworks-Signature:
    sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>``; the receiver recomputes it and
    rejects stale timestamps, so a captured request cannot be replayed later.
    """

    def __init__(self, config: PublisherConfig, *, secret: str, retry: RetryPolicy | None = None,
                 timeout_s: float = 10.0, max_signal_age_s: float = MAX_SIGNAL_AGE_S) -> None:
        super().__init__(config, max_signal_age_s=max_signal_age_s)
        if not config.url:
            raise ValueError(f"publisher {config.name}: webhook needs url")
        self.url = config.url
        self._secret = secret.encode()
        self.retry = retry or RetryPolicy(attempts=4, base_delay=0.5, max_delay=10)
        self.http = httpx.Client(timeout=timeout_s)

    def sign(self, timestamp: str, body: bytes) -> str:
        return "sha256=" + hmac.new(self._secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()

    def send(self, message: Message) -> str | None:
        body = json.dumps({"signal_id": message.signal_id, "review": message.review, "text": message.text,
                           **message.payload},
                          sort_keys=True, default=str).encode()

        def attempt() -> str | None:
            timestamp = str(int(time.time()))
            headers = {"content-type": "application/json", "x-signalworks-timestamp": timestamp,
                       "x-signalworks-signature": self.sign(timestamp, body)}
            try:
                response = self.http.post(self.url, content=body, headers=headers)
            except httpx.TransportError as error:
                raise TransientError(f"webhook {self.url} unreachable: {error}", source=self.name) from error
            if response.status_code == 429:
                raise RateLimitedError("webhook rate limited", source=self.name,
                                       retry_after=float(response.headers.get("retry-after", "1") or 1))
            if response.status_code >= 500:
                raise TransientError(f"webhook answered {response.status_code}", source=self.name)
            if response.status_code >= 400:
                raise PermanentError(f"webhook refused the signal ({response.status_code}): {response.text[:200]}",
                                     source=self.name)
            return response.headers.get("x-request-id") or f"webhook:{response.status_code}"

        return self.retry.call(attempt, what=f"webhook {self.name}")

    def close(self) -> None:
        self.http.close()


def _env(name: str | None, publisher: str) -> str:
    if not name or not os.environ.get(name):
        raise PermanentError(f"publisher {publisher}: set the environment variable {name or '(unnamed)'}")
    return os.environ[name]


def build_publishers(configs: tuple[PublisherConfig, ...], *, home: Path,
                     telegram_base_url: str = "https://api.telegram.org", dry_run: bool = False,
                     max_signal_age_s: float = MAX_SIGNAL_AGE_S) -> list[Publisher]:
    """Publishers for the enabled configs; secrets are read from their environment variables now.

    ``max_signal_age_s`` is MAX_SIGNAL_AGE for publishers whose config sets none.

    ``dry_run`` turns every configured publisher (enabled or not) into a console publisher with
    the same name and rules: the outbox, claims and deliveries behave exactly as they would,
    and ``publications.jsonl`` shows what each would have sent (the offline twin of publishing).
    """
    publishers: list[Publisher] = []
    gates: dict[str, FloodGate] = {}  # one flood gate per bot: Telegram's limits are per bot
    age = {"max_signal_age_s": max_signal_age_s}
    for config in configs:
        if dry_run:
            publishers.append(ConsolePublisher(config, log_path=home / "publications.jsonl", **age))
            continue
        if not config.enabled:
            continue
        if config.kind == "console":
            publishers.append(ConsolePublisher(config, log_path=home / "publications.jsonl", **age))
        elif config.kind == "telegram_bot":
            token = _env(config.token_env, config.name)
            publishers.append(TelegramBotPublisher(config, token=token, base_url=telegram_base_url,
                                                   flood=gates.setdefault(token, FloodGate()), **age))
        elif config.kind == "telethon":
            publishers.append(TelethonPublisher(
                config, api_id=int(_env("SIGNALWORKS_TELEGRAM_API_ID", config.name)),
                api_hash=_env("SIGNALWORKS_TELEGRAM_API_HASH", config.name),
                session=_env(config.token_env or "SIGNALWORKS_TELEGRAM_SESSION", config.name), **age))
        elif config.kind == "webhook":
            publishers.append(WebhookPublisher(config, secret=_env(config.secret_env, config.name), **age))
    return publishers
