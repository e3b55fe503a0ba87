"""X (Twitter) Account Activity webhook receiver as a sidecar source (aiohttp server).

* ``GET <path>?crc_token=T`` answers the challenge-response check with
  ``{"response_token": "sha256=" + base64(HMAC-SHA256(consumer_secret, T))}``.
* ``POST <path>`` verifies ``x-twitter-webhooks-signature: sha256=<base64 HMAC-SHA256(
  consumer_secret, raw body)>`` in constant time (:func:`hmac.compare_digest`). A missing or
  forged signature is answered 403, counted in :attr:`XWebhookSource.rejected` and in the
  health errors, and nothing is emitted.
* ``tweet_create_events`` become :class:`~streaming.events.Event` s: source ``"x"``, channel
  = the configured account id as written in ``config/sources.yaml`` (``ChannelConfig.id``;
  the lower-case screen name when no accounts are configured, in which case every author
  is accepted), message id = the tweet id, text = the full text (``extended_tweet`` for
  long tweets, the retweeted tweet's full text for a retweet) with ``t.co`` links replaced
  by their ``expanded_url`` from the entities, ``ts`` from ``timestamp_ms`` (else
  ``created_at``), attachments = media URLs.

Outbound calls to X (fetching a tweet, resolving a link) go through :class:`XClient`, an httpx
client configured with the ``proxy`` of the configuration. Secrets are read from the
environment variables *named* in the configuration when :meth:`XWebhookSource.run` starts, and
are never logged.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from aiohttp import web

from resources.social_config import XSourceConfig
from streaming.events import Event
from streaming.extract import DEFAULT_CONFIG, ExtractionConfig
from streaming.sources.base import Emit, SourceFatalError, SourceHealth

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-twitter-webhooks-signature"
_CREATED_AT = "%a %b %d %H:%M:%S %z %Y"


def _digest(secret: str, message: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(mac).decode("ascii")


def crc_response_token(consumer_secret: str, crc_token: str) -> str:
    """``"sha256=" + base64(HMAC-SHA256(consumer_secret, crc_token))``."""
    return _digest(consumer_secret, crc_token.encode("utf-8"))


def sign_body(consumer_secret: str, body: bytes) -> str:
    """The ``x-twitter-webhooks-signature`` header value X sends with ``body``."""
    return _digest(consumer_secret, body)


def verify_signature(consumer_secret: str, body: bytes, header: str | None) -> bool:
    """True when ``header`` is the signature of ``body`` (constant-time comparison)."""
    if not header:
        return False
    return hmac.compare_digest(sign_body(consumer_secret, body).encode("ascii"), header.strip().encode("utf-8", "replace"))


def _full_text(tweet: Mapping[str, Any]) -> tuple[str, list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """(text, url entities, media entities) of a tweet, long and retweeted forms resolved."""
    retweeted = tweet.get("retweeted_status")
    if isinstance(retweeted, Mapping):
        text, urls, media = _full_text(retweeted)
        author = (retweeted.get("user") or {}).get("screen_name", "")
        return f"RT @{author}: {text}", urls, media
    extended = tweet.get("extended_tweet") if isinstance(tweet.get("extended_tweet"), Mapping) else None
    body = extended or tweet
    text = str(body.get("full_text") or tweet.get("full_text") or tweet.get("text") or "")
    entities = body.get("entities") or {}
    media_entities = (body.get("extended_entities") or {}).get("media") or entities.get("media") or []
    return text, list(entities.get("urls") or []), list(media_entities)


def _expand(text: str, urls: list[Mapping[str, Any]], media: list[Mapping[str, Any]]) -> str:
    for entity in urls:
        short, expanded = entity.get("url"), entity.get("expanded_url")
        if short and expanded:
            text = text.replace(str(short), str(expanded))
    for entity in media:  # the media link is noise: the media is an attachment
        short = entity.get("url")
        if short:
            text = text.replace(str(short), "")
    return text.strip()


def _tweet_time(tweet: Mapping[str, Any]) -> datetime:
    if tweet.get("timestamp_ms"):
        return datetime.fromtimestamp(int(tweet["timestamp_ms"]) / 1000, UTC)
    return datetime.strptime(str(tweet["created_at"]), _CREATED_AT).astimezone(UTC)


def tweet_to_event(tweet: Mapping[str, Any], *, channel: str, for_user_id: str | None = None,
                   config: ExtractionConfig = DEFAULT_CONFIG) -> Event:
    """One Account Activity tweet object as an Event on ``channel`` (see the module docstring)."""
    text, urls, media = _full_text(tweet)
    user = tweet.get("user") or {}
    raw: dict[str, Any] = {
        "tweet_id": str(tweet.get("id_str") or tweet.get("id")),
        "user_id": str(user.get("id_str") or user.get("id") or ""),
        "screen_name": user.get("screen_name"),
        "lang": tweet.get("lang"),
        "in_reply_to_status_id": tweet.get("in_reply_to_status_id_str"),
        "is_retweet": "retweeted_status" in tweet,
        "is_quote": bool(tweet.get("is_quote_status")),
    }
    if for_user_id:
        raw["for_user_id"] = for_user_id
    return Event.from_message(
        source="x", channel=channel, message_id=raw["tweet_id"], author=str(user.get("screen_name") or ""),
        text=_expand(text, urls, media), ts=_tweet_time(tweet),
        attachments=[str(m.get("media_url_https") or m.get("media_url")) for m in media
                     if m.get("media_url_https") or m.get("media_url")],
        raw=raw, config=config,
    )


class XClient:
    """Outbound calls to X through the configured proxy (httpx).

    Parameters
    ----------
    proxy
        Proxy URL (``http://``, ``https://``, ``socks5://``) or None for direct calls.
    bearer_token
        App bearer token for the v2 API (sent as ``Authorization``; never logged).
    api_base
        Base URL of the API.
    """

    def __init__(self, *, proxy: str | None, bearer_token: str | None = None,
                 api_base: str = "https://api.twitter.com", timeout_s: float = 10.0) -> None:
        headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else {}
        self.proxy = proxy
        self.api_base = api_base.rstrip("/")
        self.http = httpx.AsyncClient(proxy=proxy, headers=headers, timeout=timeout_s, follow_redirects=False)

    async def resolve_link(self, url: str) -> str:
        """Where a short link (``t.co``) points: its redirect target, or ``url`` itself."""
        response = await self.http.head(url)
        return response.headers.get("location", url) if response.is_redirect else url

    async def fetch_tweet(self, tweet_id: str) -> dict[str, Any]:
        """The v2 tweet object (``note_tweet`` and entities included)."""
        response = await self.http.get(
            f"{self.api_base}/2/tweets/{tweet_id}",
            params={"tweet.fields": "created_at,author_id,entities,note_tweet"},
        )
        response.raise_for_status()
        return dict(response.json())

    async def aclose(self) -> None:
        await self.http.aclose()


class XWebhookSource:
    """The X Account Activity webhook receiver (a :class:`~streaming.sources.base.Source`).

    Parameters
    ----------
    config
        The ``sources.x`` section: host, port (0 = any free port; see :attr:`port` once
        :attr:`ready` is set), path, secret variable names, proxy, accounts.
    consumer_secret, bearer_token
        Override the environment (tests); otherwise read from ``environ`` at ``run``.
    """

    def __init__(self, config: XSourceConfig, *, consumer_secret: str | None = None,
                 bearer_token: str | None = None, environ: Mapping[str, str] | None = None,
                 extraction: ExtractionConfig = DEFAULT_CONFIG, name: str = "x") -> None:
        self.name = name
        self.config = config
        self.health = SourceHealth()
        self.extraction = extraction
        self.rejected = 0
        self.ready = asyncio.Event()
        self.port: int | None = None
        self.client: XClient | None = None
        self._secret = consumer_secret
        self._bearer = bearer_token
        self._environ = environ
        self._accounts = {a.id.lstrip("@").lower(): a.id for a in config.accounts}
        self._emit_lock = asyncio.Lock()
        self._active: tuple[str, Emit] | None = None

    def __repr__(self) -> str:  # never show a secret
        return f"XWebhookSource(name={self.name!r}, path={self.config.path!r}, accounts={len(self._accounts)})"

    def _resolve_secrets(self) -> tuple[str, str | None]:
        environ = self._environ if self._environ is not None else os.environ
        secret = self._secret or environ.get(self.config.consumer_secret_env)
        if not secret:
            raise SourceFatalError(
                f"X webhook: set the consumer secret in ${self.config.consumer_secret_env} "
                "(the app's API secret, used to answer CRC checks and verify signatures)"
            )
        return secret, self._bearer or environ.get(self.config.bearer_token_env) or None

    def channel_for(self, screen_name: str) -> str | None:
        """The channel key of an author, or None when the author is not followed."""
        handle = screen_name.lstrip("@").lower()
        if not self._accounts:
            return handle
        return self._accounts.get(handle)

    async def run(self, emit: Emit) -> None:
        """Serve the webhook until cancelled; closes the server and the outbound client."""
        secret, bearer = self._resolve_secrets()
        self._active = (secret, emit)
        self._emit_lock = asyncio.Lock()  # bound to this run's loop
        app = web.Application()
        app.router.add_get(self.config.path, self._crc)
        app.router.add_post(self.config.path, self._activity)
        runner = web.AppRunner(app, access_log=None)
        self.client = XClient(proxy=self.config.proxy, bearer_token=bearer)
        try:
            await runner.setup()
            site = web.TCPSite(runner, self.config.host, self.config.port)
            await site.start()
            addresses = runner.addresses
            self.port = int(addresses[0][1]) if addresses else self.config.port
            self.health.mark_connected()
            self.ready.set()
            logger.info("X webhook listening on http://%s:%d%s", self.config.host, self.port, self.config.path)
            await asyncio.Event().wait()  # until cancelled
        finally:
            self.ready.clear()
            self.health.connected = False
            await runner.cleanup()
            await self.client.aclose()
            self._active = None

    async def _crc(self, request: web.Request) -> web.Response:
        assert self._active is not None
        secret = self._active[0]
        token = request.query.get("crc_token")
        if not token:
            return web.json_response({"error": "crc_token missing"}, status=400)
        return web.json_response({"response_token": crc_response_token(secret, token)})

    async def _activity(self, request: web.Request) -> web.Response:
        assert self._active is not None
        secret, emit = self._active
        body = await request.read()
        if not verify_signature(secret, body, request.headers.get(SIGNATURE_HEADER)):
            self.rejected += 1
            self.health.record_error("rejected a webhook POST with a missing or invalid signature")
            logger.warning("X webhook: rejected a POST from %s (missing or invalid signature)", request.remote)
            return web.json_response({"error": "invalid signature"}, status=403)
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return web.json_response({"error": "body is not a JSON object"}, status=400)
        for_user = str(payload.get("for_user_id") or "") or None
        events: list[Event] = []
        for tweet in payload.get("tweet_create_events") or ():
            if not isinstance(tweet, Mapping):
                continue
            channel = self.channel_for(str((tweet.get("user") or {}).get("screen_name") or ""))
            if channel is None:
                continue
            try:
                events.append(tweet_to_event(tweet, channel=channel, for_user_id=for_user, config=self.extraction))
            except (KeyError, TypeError, ValueError) as error:
                self.health.record_error(error)
                logger.error("X webhook: tweet %s skipped (%s: %s)", tweet.get("id_str"), type(error).__name__, error)
        async with self._emit_lock:
            for event in events:
                await emit(event)
        return web.json_response({"accepted": len(events)})
