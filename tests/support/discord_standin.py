"""A loopback stand-in for Discord's REST API and gateway (v10), for driving discord.py itself.

What is real and what is not:

* Gateway frames are the real captures of ``../shared/fixtures/discord/gateway`` (Discord4J's
  recordings): ``Hello.json`` is sent verbatim on connect, ``HeartbeatAck.json`` answers every
  heartbeat (op 1), ``Ready.json`` answers Identify (op 2) with only what ties it to this
  stand-in changed (``v`` 10, a fresh ``session_id``, ``resume_gateway_url`` pointing here so a
  resume comes back, ``guilds`` = the stand-in's guilds, sequence numbers), ``InvalidSession.json``
  answers a Resume (op 6) of an unknown session, and :meth:`DiscordStandIn.message_frame` turns
  a ``MessageCreate.*.json`` capture into a frame for a given channel/guild.
* **Synthetic:** the ``GUILD_CREATE`` frames (id, name, ``@everyone`` role and text channels,
  so discord.py caches the channels), ``RESUMED``, the REST bodies of ``/users/@me`` (the user
  of ``Ready.json``), ``/oauth2/applications/@me`` (shape of Discord's documented application
  object) and ``/gateway(/bot)``; ``401: Unauthorized`` is Discord's real wording.
* Transport: the socket speaks JSON text frames, or zlib-stream (one zlib context per
  connection, every frame ending in a sync flush) when the URL asks ``compress=zlib-stream``
  as discord.py does; an Identify with a wrong token is closed with 4004 like Discord does.

Control from a test: :meth:`dispatch` / :meth:`send_message` push frames to the live session,
:meth:`drop` closes the socket with a close code (4000: resumable, 4004: fatal),
:meth:`send_fixture` sends a capture such as ``Reconnect.json`` (op 7), ``refuse_gateway``
answers new gateway connections 503 (Discord unreachable), :meth:`wait_sessions` waits for an identified or resumed session; ``identifies``, ``resumes``,
``heartbeats``, ``rest_calls``, ``gateway_queries`` and ``client_close_codes`` record what the
client did.
"""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

API_PREFIX = "/api/v10"
EVERYONE_PERMISSIONS = "1071698660929"


@dataclass(frozen=True)
class StandInGuild:
    """A guild the stand-in's bot is in: ``channels`` maps channel id -> channel name."""

    id: str
    name: str
    channels: Mapping[str, str]


@dataclass
class _Session:
    id: str
    sequence: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)


class _Connection:
    """One gateway socket, with its own zlib-stream context when the client asked for one."""

    def __init__(self, ws: web.WebSocketResponse, *, compress: bool) -> None:
        self.ws = ws
        self._zlib = zlib.compressobj() if compress else None
        self.session: _Session | None = None

    async def send(self, frame: Mapping[str, Any]) -> None:
        text = json.dumps(frame, separators=(",", ":"))
        if self._zlib is None:
            await self.ws.send_str(text)
        else:
            data = self._zlib.compress(text.encode()) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
            await self.ws.send_bytes(data)


class DiscordStandIn:
    """Discord's REST endpoints discord.py logs in with, and its gateway, on 127.0.0.1.

    Use as ``async with DiscordStandIn(fixtures, token=..., guilds=[...]) as discord_api:``;
    point the client at :attr:`http_base` and :attr:`gateway_url`.
    """

    def __init__(self, fixtures: Path, *, token: str, guilds: Sequence[StandInGuild]) -> None:
        self._gateway_dir = fixtures / "discord" / "gateway"
        self.token = token
        self.guilds = tuple(guilds)
        self._ready = self._fixture("Ready.json")
        self.bot_user: dict[str, Any] = self._ready["d"]["user"]
        self.identifies: list[dict[str, Any]] = []
        self.resumes: list[dict[str, Any]] = []
        self.heartbeats = 0
        self.rest_calls: list[str] = []
        self.gateway_queries: list[dict[str, str]] = []
        self.client_close_codes: list[int | None] = []
        self.refuse_gateway = False
        self._sessions: dict[str, _Session] = {}
        self._live: _Connection | None = None
        self._changed = asyncio.Condition()
        self._session_starts = 0
        self._runner: web.AppRunner | None = None
        self.port = 0

    # lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> DiscordStandIn:
        app = web.Application()
        app.router.add_get(f"{API_PREFIX}/users/@me", self._users_me)
        app.router.add_get(f"{API_PREFIX}/oauth2/applications/@me", self._application)
        app.router.add_get(f"{API_PREFIX}/gateway", self._gateway_info)
        app.router.add_get(f"{API_PREFIX}/gateway/bot", self._gateway_info)
        app.router.add_get("/", self._gateway)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def http_base(self) -> str:
        """What replaces ``https://discord.com/api/v10``."""
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        """What replaces ``wss://gateway.discord.gg/`` (also returned by ``/gateway/bot``)."""
        return f"ws://127.0.0.1:{self.port}/"

    def _fixture(self, name: str) -> dict[str, Any]:
        return json.loads((self._gateway_dir / name).read_text())

    # REST ------------------------------------------------------------------------------------

    def _authorised(self, request: web.Request) -> bool:
        self.rest_calls.append(f"{request.method} {request.path.removeprefix(API_PREFIX)}")
        return request.headers.get("Authorization") == f"Bot {self.token}"

    @staticmethod
    def _json(body: Any, status: int = 200) -> web.Response:
        # Discord answers exactly "application/json" (discord.py compares the header verbatim).
        return web.Response(status=status, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})

    def _unauthorised(self) -> web.Response:
        return self._json({"message": "401: Unauthorized", "code": 0}, status=401)

    async def _users_me(self, request: web.Request) -> web.Response:
        return self._json(self.bot_user) if self._authorised(request) else self._unauthorised()

    async def _application(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._unauthorised()
        owner = {"id": "134127815531560960", "username": "quantic", "discriminator": "5520", "avatar": None}
        return self._json({
            "id": self.bot_user["id"], "name": self.bot_user["username"], "icon": None, "description": "",
            "bot_public": True, "bot_require_code_grant": False, "owner": owner, "verify_key": "0" * 64,
            "flags": 0, "team": None, "summary": "", "rpc_origins": [], "interactions_endpoint_url": None,
        })

    async def _gateway_info(self, request: web.Request) -> web.Response:
        if request.path.endswith("/bot") and not self._authorised(request):
            return self._unauthorised()
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return self._json({"url": self.gateway_url, "shards": 1, "session_start_limit": limit})

    # gateway ---------------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        self.gateway_queries.append(dict(request.query))
        if self.refuse_gateway:
            return web.Response(status=503, text="stand-in: gateway unavailable")
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        connection = _Connection(ws, compress=request.query.get("compress") == "zlib-stream")
        await connection.send(self._fixture("Hello.json"))
        try:
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    continue
                frame = json.loads(message.data)
                if frame["op"] == 1:
                    self.heartbeats += 1
                    await connection.send(self._fixture("HeartbeatAck.json"))
                elif frame["op"] == 2:
                    await self._identify(connection, frame["d"])
                elif frame["op"] == 6:
                    await self._resume(connection, frame["d"])
        finally:
            self.client_close_codes.append(ws.close_code)
            async with self._changed:
                if self._live is connection:
                    self._live = None
                self._changed.notify_all()
        return ws

    async def _identify(self, connection: _Connection, payload: dict[str, Any]) -> None:
        self.identifies.append(payload)
        if payload.get("token") != self.token:
            await connection.ws.close(code=4004, message=b"Authentication failed.")
            return
        session = _Session(uuid.uuid4().hex)
        self._sessions[session.id] = session
        connection.session = session
        ready = copy.deepcopy(self._ready)
        ready["d"].update(
            v=10, session_id=session.id, resume_gateway_url=self.gateway_url,
            guilds=[{"id": guild.id, "unavailable": True} for guild in self.guilds],
        )
        await self._send_dispatch(connection, ready)
        for guild in self.guilds:
            await self._send_dispatch(connection, {"op": 0, "t": "GUILD_CREATE", "d": self._guild_payload(guild)})
        await self._go_live(connection)

    async def _resume(self, connection: _Connection, payload: dict[str, Any]) -> None:
        self.resumes.append(payload)
        session = self._sessions.get(payload.get("session_id", ""))
        if session is None or payload.get("token") != self.token:
            await connection.send(self._fixture("InvalidSession.json"))
            return
        connection.session = session
        for frame in session.sent:  # replay what the client missed, then RESUMED
            if frame["s"] > (payload.get("seq") or 0):
                await connection.send(frame)
        await self._send_dispatch(connection, {"op": 0, "t": "RESUMED", "d": {"_trace": ["stand-in"]}})
        await self._go_live(connection)

    async def _go_live(self, connection: _Connection) -> None:
        async with self._changed:
            self._live = connection
            self._session_starts += 1
            self._changed.notify_all()

    async def _send_dispatch(self, connection: _Connection, frame: dict[str, Any]) -> int:
        session = connection.session
        assert session is not None
        session.sequence += 1
        frame = {**frame, "s": session.sequence}
        session.sent.append(frame)
        await connection.send(frame)
        return session.sequence

    @staticmethod
    def _guild_payload(guild: StandInGuild) -> dict[str, Any]:
        everyone = {
            "id": guild.id, "name": "@everyone", "permissions": EVERYONE_PERMISSIONS, "position": 0,
            "color": 0, "hoist": False, "managed": False, "mentionable": False, "flags": 0,
        }
        channels = [
            {"id": channel_id, "type": 0, "name": name, "position": index, "permission_overwrites": [],
             "parent_id": None, "nsfw": False, "topic": None, "last_message_id": None, "rate_limit_per_user": 0}
            for index, (channel_id, name) in enumerate(guild.channels.items())
        ]
        return {
            "id": guild.id, "name": guild.name, "icon": None, "owner_id": "134127815531560960",
            "unavailable": False, "large": False, "member_count": 2, "roles": [everyone],
            "channels": channels, "threads": [], "members": [], "voice_states": [], "presences": [],
            "emojis": [], "stickers": [], "features": [], "stage_instances": [],
            "guild_scheduled_events": [], "soundboard_sounds": [], "joined_at": "2020-03-30T15:24:39.828000+00:00",
        }

    # control from tests ----------------------------------------------------------------------

    async def wait_sessions(self, count: int, timeout: float = 10.0) -> None:
        """Wait until ``count`` sessions (identified or resumed) have gone live in total."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: self._session_starts >= count and self._live is not None)

    async def dispatch(self, event: str, data: Mapping[str, Any]) -> int:
        """Send a dispatch (op 0) frame on the live session; returns its sequence number."""
        if self._live is None:
            raise RuntimeError("stand-in: no live gateway session")
        return await self._send_dispatch(self._live, {"op": 0, "t": event, "d": dict(data)})

    def message_frame(
        self,
        fixture: str,
        *,
        channel_id: str,
        guild_id: str | None,
        message_id: str | None = None,
        content: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """The ``d`` of a ``MessageCreate.*.json`` capture, moved to ``channel_id``/``guild_id``."""
        data = copy.deepcopy(self._fixture(fixture)["d"])
        data["channel_id"] = channel_id
        if guild_id is None:
            data.pop("guild_id", None)
            data.pop("member", None)
        else:
            data["guild_id"] = guild_id
        if message_id is not None:
            data["id"] = message_id
        if content is not None:
            data["content"] = content
        data.update(fields)
        return data

    async def send_message(self, data: Mapping[str, Any]) -> int:
        """Send a ``MESSAGE_CREATE`` with ``data`` (see :meth:`message_frame`)."""
        return await self.dispatch("MESSAGE_CREATE", data)

    async def send_fixture(self, name: str) -> None:
        """Send a gateway capture verbatim on the live socket (``Reconnect.json``, ...)."""
        if self._live is None:
            raise RuntimeError("stand-in: no live gateway session")
        await self._live.send(self._fixture(name))

    async def drop(self, code: int = 4000) -> None:
        """Close the live gateway socket with ``code`` (4000 resumable, 4004 fatal)."""
        live = self._live
        if live is None:
            raise RuntimeError("stand-in: no live gateway session")
        await live.ws.close(code=code, message=b"stand-in: dropped")
