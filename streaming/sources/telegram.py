"""Telegram source: a Telethon *user* session listening to public and private channels.

Import this module only in the sidecar (it imports Telethon). The conversion of a message is
the pure :func:`~streaming.sources.telegram_convert.message_to_event`; this module connects,
resolves the configured channels, and turns Telethon's ``NewMessage`` events into awaited
``emit`` calls, in arrival order, from :meth:`TelegramSource.run` itself (so an ``emit`` failure
ends ``run`` instead of being logged and dropped by Telethon's handler machinery).

Channel references (``ChannelConfig.id``), see :func:`parse_channel_ref`:

* public: ``@name``, ``name``, ``https://t.me/name`` (resolved once per ``run``);
* private: the marked id Telegram clients and the Bot API show (``-1001234567890``), or a bare
  positive channel id (``1234567890``, taken as a channel); the session must be a member;
* invite links ``https://t.me/+HASH`` / ``t.me/joinchat/HASH``: the channel is joined with the
  invite if the session is not a member yet.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from telethon import TelegramClient, errors, events, functions, types, utils
from telethon.sessions import StringSession

from resources.social_config import ChannelConfig, TelegramSourceConfig
from streaming.events import Event
from streaming.extract import DEFAULT_CONFIG, ExtractionConfig
from streaming.sources.base import Emit, SourceFatalError, SourceHealth, drain_queue
from streaming.sources.telegram_convert import describe_media, message_to_event

__all__ = [
    "ChannelRef",
    "TelegramAuthError",
    "TelegramDisconnectedError",
    "TelegramSource",
    "build_telegram_source",
    "describe_media",
    "message_to_event",
    "parse_channel_ref",
]

logger = logging.getLogger(__name__)

ClientFactory = Callable[[], Any]
"""Makes a fresh (unconnected) Telethon ``TelegramClient`` for one ``run``."""


class TelegramSourceError(RuntimeError):
    """A Telegram source failure (base class)."""


class TelegramDisconnectedError(TelegramSourceError):
    """Transient: the connection ended (Telethon gave up reconnecting); run again later."""


class TelegramAuthError(TelegramSourceError, SourceFatalError):
    """Permanent: the session is not logged in or a channel cannot be resolved; fix the config.

    A :class:`~streaming.sources.base.SourceFatalError`: the supervisor stops the source.
    """


_USERNAME = re.compile(r"^(?:@|(?:https?://)?t(?:elegram)?\.me/)?([A-Za-z][A-Za-z0-9_]{3,31})/?$")
_INVITE = re.compile(r"^(?:(?:https?://)?t(?:elegram)?\.me/(?:\+|joinchat/)|\+)([A-Za-z0-9_-]+)/?$")
_NUMERIC = re.compile(r"^-?\d+$")


@dataclass(frozen=True, slots=True)
class ChannelRef:
    """A parsed ``ChannelConfig.id``: ``kind`` and the username, marked id or invite hash."""

    kind: Literal["username", "id", "invite"]
    value: str

    @property
    def peer_id(self) -> int | None:
        """Marked peer id for ``kind == "id"`` (bare positive ids are taken as channels)."""
        if self.kind != "id":
            return None
        number = int(self.value)
        return number if number < 0 else utils.get_peer_id(types.PeerChannel(number))


def parse_channel_ref(ref: str) -> ChannelRef:
    """Classify a configured Telegram channel reference (module docstring: accepted forms).

    Raises
    ------
    ValueError
        When ``ref`` is none of the accepted forms.
    """
    ref = ref.strip()
    if _NUMERIC.match(ref):
        return ChannelRef("id", ref)
    if match := _INVITE.match(ref):
        return ChannelRef("invite", match.group(1))
    if match := _USERNAME.match(ref):
        return ChannelRef("username", match.group(1).lower())
    raise ValueError(
        f"Telegram channel {ref!r}: expected @username, t.me/username, a numeric id "
        "(-100... or the bare channel id) or an invite link t.me/+HASH"
    )


async def _resolve_one(client: Any, ref: ChannelRef) -> int:
    if ref.kind == "id":
        assert ref.peer_id is not None
        return ref.peer_id
    if ref.kind == "username":
        return utils.get_peer_id(await client.get_input_entity(ref.value))
    invite = await client(functions.messages.CheckChatInviteRequest(hash=ref.value))
    if isinstance(invite, types.ChatInviteAlready | types.ChatInvitePeek):
        return utils.get_peer_id(invite.chat)
    logger.info("joining Telegram channel %r through its invite link", getattr(invite, "title", "?"))
    joined = await client(functions.messages.ImportChatInviteRequest(hash=ref.value))
    return utils.get_peer_id(joined.chats[0])


async def resolve_routes(client: Any, channels: tuple[ChannelConfig, ...]) -> dict[int, ChannelConfig]:
    """Map each configured channel's marked peer id to its :class:`ChannelConfig`.

    Numeric ids need no network; usernames and invite links are resolved through ``client``.

    Raises
    ------
    TelegramAuthError
        When a reference is malformed or Telegram cannot resolve it (names the channel).
    """
    routes: dict[int, ChannelConfig] = {}
    for channel in channels:
        try:
            peer_id = await _resolve_one(client, parse_channel_ref(channel.id))
        except errors.FloodWaitError as error:
            raise TelegramDisconnectedError(f"Telegram flood wait resolving {channel.id!r}: {error}") from error
        except (ValueError, TypeError, errors.BadRequestError, errors.ForbiddenError) as error:
            # Telethon raises ValueError for unknown names; RPC 400/403 for expired invites,
            # private channels the session cannot see, invalid usernames.
            raise TelegramAuthError(f"Telegram channel {channel.id!r} cannot be resolved: {error}") from error
        if peer_id in routes:
            logger.warning("Telegram channels %r and %r are the same chat; keeping the first", routes[peer_id].id, channel.id)
            continue
        routes[peer_id] = channel
    return routes


def make_handler(
    routes: Mapping[int, ChannelConfig],
    deliver: Callable[[Event], None],
    *,
    extraction: ExtractionConfig = DEFAULT_CONFIG,
) -> Callable[[Any], Any]:
    """The ``events.NewMessage`` callback: convert a routed message and ``deliver`` it.

    Messages from chats not in ``routes`` (the event builder already filters them) and messages
    :func:`message_to_event` skips are dropped. ``deliver`` must not block (e.g. ``put_nowait``).
    """

    async def on_new_message(event: Any) -> None:
        channel = routes.get(event.chat_id)
        if channel is None:
            return
        converted = message_to_event(event.message, channel_key=channel.id, weight=channel.weight, extraction=extraction)
        if converted is not None:
            deliver(converted)

    return on_new_message


class TelegramSource:
    """Telegram channels through a Telethon user session (implements ``streaming.sources.base.Source``).

    Parameters
    ----------
    config
        Channels and weights.
    api_id, api_hash
        The application's credentials from my.telegram.org.
    session
        A ``StringSession`` string (``str``) or a session file (``Path``; Telethon adds
        ``.session``). The session must already be logged in.
    client_factory
        Makes the ``TelegramClient`` for a run (default: one from the arguments above, with
        ``sequential_updates=True`` so handlers see messages in arrival order, and
        ``catch_up=True`` so a file session fetches what was missed while disconnected).
    """

    def __init__(
        self,
        config: TelegramSourceConfig,
        *,
        api_id: int,
        api_hash: str,
        session: str | Path,
        client_factory: ClientFactory | None = None,
        extraction: ExtractionConfig = DEFAULT_CONFIG,
        name: str = "telegram",
    ) -> None:
        self.name = name
        self.config = config
        self.health = SourceHealth()
        self._api_id = api_id
        self._api_hash = api_hash
        self._session = session
        self._client_factory = client_factory or self._default_client
        self._extraction = extraction

    @property
    def session_file(self) -> Path | None:
        """The session file, or None when the session is a StringSession (never shown)."""
        return self._session if isinstance(self._session, Path) else None

    def __repr__(self) -> str:  # never show the hash or the session string
        return f"TelegramSource(name={self.name!r}, channels={len(self.config.channels)})"

    def _default_client(self) -> TelegramClient:
        session: Any = StringSession(self._session) if isinstance(self._session, str) else str(self._session)
        return TelegramClient(session, self._api_id, self._api_hash, sequential_updates=True, catch_up=True)

    async def run(self, emit: Emit) -> None:
        """Listen until cancelled; raise :class:`TelegramDisconnectedError` when disconnected.

        Raises
        ------
        TelegramAuthError
            The session is not logged in, or a configured channel cannot be resolved.
        TelegramDisconnectedError
            Telethon lost the connection and gave up reconnecting (``from`` its error).
        """
        queue: asyncio.Queue[Event] = asyncio.Queue()
        client = self._client_factory()
        handler = None
        until: asyncio.Future[Any] | None = None
        try:
            try:
                await client.connect()
                authorized = await client.is_user_authorized()
                if authorized:
                    routes = await resolve_routes(client, self.config.channels)
            except OSError as error:
                raise TelegramDisconnectedError(f"cannot connect to Telegram: {error}") from error
            if not authorized:
                raise TelegramAuthError(
                    "the Telegram session is not logged in: log in once with Telethon to create the "
                    "session (file in the data home, or a StringSession in the session env variable)"
                )
            handler = make_handler(routes, queue.put_nowait, extraction=self._extraction)
            client.add_event_handler(handler, events.NewMessage(chats=list(routes)))
            self.health.mark_connected()
            logger.info("telegram source %s listening to %d channels", self.name, len(routes))
            until = asyncio.ensure_future(client.run_until_disconnected())
            await drain_queue(queue, emit, until)
            try:
                until.result()
            except OSError as error:
                raise TelegramDisconnectedError(f"Telegram connection lost: {error}") from error
            raise TelegramDisconnectedError("Telegram connection closed")
        finally:
            self.health.connected = False
            if handler is not None:
                client.remove_event_handler(handler)
            if until is not None:
                until.cancel()
                await asyncio.gather(until, return_exceptions=True)
            await client.disconnect()


def _required_env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ValueError(f"Telegram source is enabled but the environment variable {name} is not set")
    return value


def build_telegram_source(config: TelegramSourceConfig, *, home: Path) -> TelegramSource:
    """A :class:`TelegramSource` with credentials from the environment variables named in ``config``.

    The session is the StringSession in ``config.session_string_env`` when set, otherwise the
    file ``<home>/telegram/<config.session>.session``.

    Raises
    ------
    ValueError
        When the API id or hash variable is missing (the message names the variable) or the
        API id is not an integer.
    """
    raw_id = _required_env(config.api_id_env)
    try:
        api_id = int(raw_id)
    except ValueError as error:
        raise ValueError(f"{config.api_id_env} must be the numeric api_id from my.telegram.org") from error
    api_hash = _required_env(config.api_hash_env)
    session_string = os.environ.get(config.session_string_env, "").strip()
    session: str | Path
    if session_string:
        session = session_string
    else:
        folder = home / "telegram"
        folder.mkdir(parents=True, exist_ok=True)
        session = folder / config.session
    return TelegramSource(config, api_id=api_id, api_hash=api_hash, session=session)
