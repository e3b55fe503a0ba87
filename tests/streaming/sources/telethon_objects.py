"""Real Telethon objects for the Telegram source tests, built without a network.

Messages are ``telethon.tl.types.Message`` (Telethon's patched ``custom.Message``), wrapped in
``UpdateNewChannelMessage`` with the ``users``/``chats`` Telegram sends beside them, and turned
into ``events.NewMessage.Event`` by Telethon's own ``EventBuilderDict`` (which calls
``Message._finish_init`` through ``Event._set_client``), exactly as the update loop does.

:class:`OfflineTelegramClient` is a real ``TelegramClient`` whose *network* methods (the public
``connect``, ``is_user_authorized``, ``get_me``, ``__call__`` and the ``disconnected`` future)
answer locally, so ``TelegramSource.run`` and Telethon's dispatch path (``_dispatch_update``:
build, resolve, chat filter, callback) run for real. MTProto itself is not stood in for.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from telethon import TelegramClient, errors, functions, types, utils
from telethon.client.updates import EventBuilderDict
from telethon.events import NewMessage
from telethon.sessions import StringSession

SELF_ID = 777000111
TS = datetime(2025, 11, 6, 7, 35, 12, tzinfo=UTC)


def broadcast(channel_id: int, title: str, username: str | None = None, *, signatures: bool = False) -> types.Channel:
    """A broadcast channel as Telegram sends it in ``chats``."""
    return types.Channel(
        id=channel_id, title=title, photo=types.ChatPhotoEmpty(), date=TS, broadcast=True,
        signatures=signatures, access_hash=channel_id * 7 + 3, username=username,
    )


def megagroup(channel_id: int, title: str, username: str | None = None) -> types.Channel:
    """A supergroup (megagroup) as Telegram sends it in ``chats``."""
    return types.Channel(
        id=channel_id, title=title, photo=types.ChatPhotoEmpty(), date=TS, megagroup=True,
        access_hash=channel_id * 7 + 3, username=username,
    )


def user(user_id: int, username: str | None, first_name: str = "Trader") -> types.User:
    return types.User(id=user_id, access_hash=user_id * 11 + 5, first_name=first_name, username=username)


def photo(photo_id: int = 5_312_000_000_000_000_001) -> types.MessageMediaPhoto:
    return types.MessageMediaPhoto(
        photo=types.Photo(
            id=photo_id, access_hash=1, file_reference=b"\x01", date=TS,
            sizes=[types.PhotoSize(type="x", w=800, h=600, size=51234)], dc_id=4,
        )
    )


def document(document_id: int, mime: str, file_name: str) -> types.MessageMediaDocument:
    return types.MessageMediaDocument(
        document=types.Document(
            id=document_id, access_hash=2, file_reference=b"\x02", date=TS, mime_type=mime,
            size=2048, dc_id=4, attributes=[types.DocumentAttributeFilename(file_name=file_name)],
        )
    )


def channel_message(channel: types.Channel, message_id: int, text: str, **fields: Any) -> types.Message:
    """A message in ``channel`` (a broadcast post unless ``from_id`` is given)."""
    fields.setdefault("date", TS)
    if "from_id" not in fields:
        fields.setdefault("post", bool(channel.broadcast))
    return types.Message(id=message_id, peer_id=types.PeerChannel(channel.id), message=text, **fields)


def channel_update(message: types.Message | types.MessageService, *, users: list[Any] = (), chats: list[Any] = ()) -> types.UpdateNewChannelMessage:  # type: ignore[assignment]
    """The update Telegram pushes, with ``_entities`` attached as Telethon's update loop does."""
    update = types.UpdateNewChannelMessage(message=message, pts=100 + message.id, pts_count=1)
    update._entities = {utils.get_peer_id(entity): entity for entity in [*users, *chats]}
    return update


def new_message_event(client: TelegramClient, update: types.UpdateNewChannelMessage) -> Any:
    """``events.NewMessage.Event`` for ``update``, built by Telethon (None for service messages)."""
    return EventBuilderDict(client, update, None)[NewMessage]


def offline_client() -> TelegramClient:
    """A real, never-connected ``TelegramClient`` (enough for building events)."""
    return TelegramClient(StringSession(), 1, "0" * 32)


class OfflineTelegramClient(TelegramClient):
    """A real ``TelegramClient`` whose network edges answer locally (module docstring).

    ``known`` entities are put into the session cache, so ``get_input_entity("@name")`` resolves
    them the way a client that has seen them before does; ``invites`` maps invite hashes to
    their channel, which ``CheckChatInviteRequest`` reports as already joined when the hash is
    in ``joined`` (all of them by default) and as a ``ChatInvite`` to accept otherwise.
    """

    def __init__(self, *, known: list[Any] = (), invites: dict[str, types.Channel] | None = None, authorized: bool = True) -> None:  # type: ignore[assignment]
        super().__init__(StringSession(), 1, "0" * 32)
        self.session.process_entities(types.contacts.ResolvedPeer(peer=types.PeerUser(SELF_ID), chats=list(known), users=[]))
        self._invites = invites or {}
        self.joined: set[str] = set(self._invites)  # invite hashes the account is a member through
        self._authorized = authorized
        self._gone: asyncio.Future[None] | None = None
        self.calls: list[str] = []

    async def connect(self) -> None:
        self.calls.append("connect")
        self._gone = asyncio.get_running_loop().create_future()

    async def is_user_authorized(self) -> bool:
        return self._authorized

    async def get_me(self, input_peer: bool = False) -> Any:
        return types.InputPeerUser(SELF_ID, 1) if input_peer else user(SELF_ID, "me")

    async def __call__(self, request: Any, ordered: bool = False, flood_sleep_threshold: Any = None) -> Any:
        self.calls.append(type(request).__name__)
        if isinstance(request, functions.updates.GetStateRequest):
            return types.updates.State(pts=1, qts=0, date=TS, seq=1, unread_count=0)
        if isinstance(request, functions.messages.CheckChatInviteRequest):
            channel = self._invites[request.hash]
            if request.hash in self.joined:
                return types.ChatInviteAlready(chat=channel)
            return types.ChatInvite(title=channel.title, photo=types.PhotoEmpty(id=0), participants_count=120, color=0, channel=True, broadcast=True)
        if isinstance(request, functions.messages.ImportChatInviteRequest):
            self.joined.add(request.hash)
            return types.Updates(updates=[], users=[], chats=[self._invites[request.hash]], date=TS, seq=0)
        if isinstance(request, functions.contacts.ResolveUsernameRequest):
            raise errors.UsernameNotOccupiedError(request=request)  # Telegram's 400 for unknown names
        raise ConnectionError(f"offline client cannot send {type(request).__name__}")

    @property
    def disconnected(self) -> asyncio.Future[None]:
        assert self._gone is not None, "connect() first"
        return asyncio.shield(self._gone)

    def drop(self, error: BaseException | None = None) -> None:
        """End the 'connection' as Telethon does when it gives up reconnecting."""
        assert self._gone is not None
        if error is None:
            self._gone.set_result(None)
        else:
            self._gone.set_exception(error)

    async def disconnect(self) -> None:  # type: ignore[override]
        self.calls.append("disconnect")
        if self._gone is not None and not self._gone.done():
            self._gone.set_result(None)
        await super().disconnect()
