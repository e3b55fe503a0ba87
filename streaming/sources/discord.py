"""Discord source: a bot account through discord.py's ``Client`` (gateway v10).

Import this module only in the sidecar (it imports discord.py). Conversion and routing are the
pure :mod:`streaming.sources.discord_convert`; this module runs the client and turns each
routed ``on_message`` into an awaited ``emit`` call, in arrival order, from
:meth:`DiscordSource.run` itself (discord.py runs every ``on_message`` as its own task and only
logs their errors, so events go through a queue and a handler error ends ``run``).

Reconnects: the client is started with ``reconnect=False``, so discord.py does not retry with
its own backoff. It still *resumes* the session by itself when the gateway asks it to (op 7
Reconnect, op 9 Invalid Session) or drops the socket with a resumable close code, because that
happens inside one ``connect`` call; when resuming fails (gateway unreachable) or the close is
not resumable, ``run`` raises :class:`DiscordDisconnectedError` and the supervisor's backoff
takes over. An authentication or intents problem raises :class:`DiscordAuthError` instead.

Endpoints: ``http_base`` replaces ``https://discord.com/api/v10`` and ``gateway_url`` replaces
``wss://gateway.discord.gg/`` (what discord.py 2.x's ``Client`` connects to; it does not ask
``/gateway/bot``). Both are per client, through an ``HTTPClient`` subclass.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import HTTPClient, Route

from resources.social_config import DiscordSourceConfig
from streaming.events import Event
from streaming.extract import DEFAULT_CONFIG, ExtractionConfig
from streaming.sources.base import Emit, SourceFatalError, SourceHealth, drain_queue
from streaming.sources.discord_convert import DiscordRoutes, discord_message_to_event

__all__ = [
    "DiscordAuthError",
    "DiscordDisconnectedError",
    "DiscordRoutes",
    "DiscordSource",
    "build_discord_source",
    "discord_message_to_event",
    "source_intents",
]

logger = logging.getLogger(__name__)

#: Gateway close codes that retrying cannot fix (bad token, sharding, API version, intents).
FATAL_CLOSE_CODES = frozenset({4004, 4010, 4011, 4012, 4013, 4014})


class DiscordSourceError(RuntimeError):
    """A Discord source failure (base class)."""


class DiscordDisconnectedError(DiscordSourceError):
    """Transient: the gateway connection ended and discord.py could not resume it."""


class DiscordAuthError(DiscordSourceError, SourceFatalError):
    """Permanent: token rejected or intents not allowed; fix the configuration.

    A :class:`~streaming.sources.base.SourceFatalError`: the supervisor stops the source.
    """


def source_intents() -> discord.Intents:
    """Guilds, guild messages and message content (privileged: enable it for the bot)."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.message_content = True
    return intents


class _RedirectedHTTPClient(HTTPClient):
    """discord.py's HTTP client with the REST base and the default gateway moved elsewhere."""

    def __init__(self, loop: Any, *, api_base: str | None, gateway_url: str | None) -> None:
        super().__init__(loop)
        self._api_base = api_base.rstrip("/") if api_base else None
        self._gateway_url = yarl.URL(gateway_url) if gateway_url else None

    async def request(self, route: Route, **kwargs: Any) -> Any:
        if self._api_base and route.url.startswith(Route.BASE):
            route.url = self._api_base + route.url[len(Route.BASE) :]
        return await super().request(route, **kwargs)

    async def ws_connect(self, url: str, *, compress: int = 0) -> aiohttp.ClientWebSocketResponse:
        target = yarl.URL(url)
        if self._gateway_url is not None and target.host == DiscordWebSocket.DEFAULT_GATEWAY.host:
            url = str(self._gateway_url.with_query(target.query))
        return await super().ws_connect(url, compress=compress)


class _SourceClient(discord.Client):
    """The ``discord.Client`` of one :meth:`DiscordSource.run`."""

    def __init__(
        self,
        *,
        routes: DiscordRoutes,
        deliver: Callable[[Event], None],
        health: SourceHealth,
        ignore_bots: bool,
        extraction: ExtractionConfig,
        api_base: str | None,
        gateway_url: str | None,
    ) -> None:
        super().__init__(intents=source_intents(), max_messages=None, chunk_guilds_at_startup=False)
        if api_base or gateway_url:
            self.http = _RedirectedHTTPClient(self.loop, api_base=api_base, gateway_url=gateway_url)
            self._connection.http = self.http  # the state issues REST calls through the same client
        self._routes = routes
        self._deliver = deliver
        self._health = health
        self._ignore_bots = ignore_bots
        self._extraction = extraction
        self.failure: BaseException | None = None
        self._closer: asyncio.Future[None] | None = None

    async def on_connect(self) -> None:  # READY received: the session is live
        self._health.mark_connected()
        logger.info("discord source connected as %s", self.user)

    async def on_ready(self) -> None:  # guilds cached (after discord.py's guild_ready_timeout)
        logger.info("discord source ready: %d guilds", len(self.guilds))

    async def on_resumed(self) -> None:
        self._health.mark_connected()
        logger.info("discord source resumed its gateway session")

    async def on_message(self, message: discord.Message) -> None:
        if self.user is not None and message.author.id == self.user.id:
            return
        if self._ignore_bots and message.author.bot:
            return
        entry = self._routes.route_message(message)
        if entry is None:
            return
        event = discord_message_to_event(message, weight=entry.weight, configured_id=entry.id, extraction=self._extraction)
        if event is not None:
            self._deliver(event)

    async def on_error(self, event_method: str, /, *args: Any, **kwargs: Any) -> None:
        # discord.py would only log a handler's error; a lost message must end the run instead.
        self.failure = sys.exc_info()[1]
        logger.error("discord source: error in %s; closing the client", event_method, exc_info=self.failure)
        self._closer = asyncio.ensure_future(self.close())


class DiscordSource:
    """Discord servers and channels through a bot (implements ``streaming.sources.base.Source``).

    Parameters
    ----------
    config
        Channel and server (guild) ids with weights (:class:`DiscordRoutes`).
    token
        The bot token (never logged or shown in ``repr``).
    http_base, gateway_url
        Replace Discord's REST base and gateway (a loopback stand-in in tests).
    ignore_bots
        Drop messages written by bots and webhooks' bot users (default False: call bots post
        many of the calls worth following). The bot's own messages are always dropped.
    """

    def __init__(
        self,
        config: DiscordSourceConfig,
        *,
        token: str,
        http_base: str | None = None,
        gateway_url: str | None = None,
        ignore_bots: bool = False,
        extraction: ExtractionConfig = DEFAULT_CONFIG,
        name: str = "discord",
    ) -> None:
        self.name = name
        self.config = config
        self.routes = DiscordRoutes.from_channels(config.channels)
        self.health = SourceHealth()
        self._token = token
        self._http_base = http_base
        self._gateway_url = gateway_url
        self._ignore_bots = ignore_bots
        self._extraction = extraction

    def __repr__(self) -> str:
        return f"DiscordSource(name={self.name!r}, channels={len(self.config.channels)})"

    async def run(self, emit: Emit) -> None:
        """Listen until cancelled (then close the client); raise when the connection ends.

        Raises
        ------
        DiscordAuthError
            The token was rejected, or the gateway refused the intents (close codes 4004, 4010-4014).
        DiscordDisconnectedError
            The connection ended and could not be resumed (``from`` discord.py's error).
        """
        queue: asyncio.Queue[Event] = asyncio.Queue()
        client = _SourceClient(
            routes=self.routes, deliver=queue.put_nowait, health=self.health, ignore_bots=self._ignore_bots,
            extraction=self._extraction, api_base=self._http_base, gateway_url=self._gateway_url,
        )
        start = asyncio.ensure_future(client.start(self._token, reconnect=False))
        try:
            await drain_queue(queue, emit, start)
            try:
                start.result()
            except discord.LoginFailure as error:
                raise DiscordAuthError("Discord rejected the bot token") from error
            except discord.PrivilegedIntentsRequired as error:
                raise DiscordAuthError("enable the Message Content intent for the bot in the developer portal") from error
            except discord.ConnectionClosed as error:
                if error.code in FATAL_CLOSE_CODES:
                    raise DiscordAuthError(f"Discord closed the gateway with {error.code}: {error.reason}") from error
                raise DiscordDisconnectedError(f"Discord gateway closed with {error.code}") from error
            except (discord.GatewayNotFound, discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as error:
                raise DiscordDisconnectedError(f"Discord connection lost: {type(error).__name__}: {error}") from error
            if client.failure is not None:
                raise client.failure
            raise DiscordDisconnectedError("Discord gateway closed the connection")
        finally:
            self.health.connected = False
            # Stop the receive loop first, so close() is the one closing the socket (code 1000);
            # closing under a pending receive makes discord.py close it with 4000 instead.
            start.cancel()
            await asyncio.gather(start, return_exceptions=True)
            await client.close()


def build_discord_source(config: DiscordSourceConfig, *, home: Path | None = None) -> DiscordSource:
    """A :class:`DiscordSource` with the bot token from the variable named by ``config.token_env``.

    ``home`` (the data home) is accepted for symmetry with :func:`build_telegram_source`
    (``streaming.listen`` passes it to every builder); Discord keeps no local state.

    Raises
    ------
    ValueError
        When that variable is unset or empty (the message names it).
    """
    token = os.environ.get(config.token_env, "").strip()
    if not token:
        raise ValueError(f"Discord source is enabled but the environment variable {config.token_env} is not set")
    return DiscordSource(config, token=token)
