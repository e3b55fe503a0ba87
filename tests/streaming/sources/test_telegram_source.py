"""TelegramSource: channel references, routing and weights, run's lifecycle, credentials from env."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from telethon import events, types

from resources.social_config import ChannelConfig, TelegramSourceConfig
from streaming.events import Event
from streaming.sources.base import Source, SourceFatalError
from streaming.sources.telegram import (
    ChannelRef,
    TelegramAuthError,
    TelegramDisconnectedError,
    TelegramSource,
    build_telegram_source,
    make_handler,
    parse_channel_ref,
    resolve_routes,
)
from tests.streaming.sources.telethon_objects import (
    OfflineTelegramClient,
    broadcast,
    channel_message,
    channel_update,
    new_message_event,
    offline_client,
)

pytestmark = pytest.mark.timeout(30)

PUBLIC = broadcast(1_506_000_321, "Degen Calls", "degencalls")
PRIVATE = broadcast(2_011_223_344, "Inner Circle")
INVITED = broadcast(1_900_000_077, "Invite Only")
OTHER = broadcast(1_111_111_111, "Not configured", "noise")
CONFIG = TelegramSourceConfig(
    enabled=True,
    channels=(
        ChannelConfig(id="@DegenCalls", weight=0.8),
        ChannelConfig(id="-1002011223344", weight=0.4, name="inner circle"),
        ChannelConfig(id="https://t.me/+AbCdEf123", weight=0.6),
    ),
)


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("@degencalls", ChannelRef("username", "degencalls")),
        ("DegenCalls", ChannelRef("username", "degencalls")),
        ("https://t.me/degencalls", ChannelRef("username", "degencalls")),
        ("t.me/degencalls/", ChannelRef("username", "degencalls")),
        ("-1002011223344", ChannelRef("id", "-1002011223344")),
        ("2011223344", ChannelRef("id", "2011223344")),
        ("https://t.me/+AbCdEf123", ChannelRef("invite", "AbCdEf123")),
        ("https://t.me/joinchat/AbCdEf123", ChannelRef("invite", "AbCdEf123")),
        ("+AbCdEf123", ChannelRef("invite", "AbCdEf123")),
    ],
)
def test_parse_channel_ref(ref: str, expected: ChannelRef) -> None:
    assert parse_channel_ref(ref) == expected


@pytest.mark.parametrize("ref", ["", "@ab", "https://example.com/x", "two words"])
def test_parse_channel_ref_rejects_garbage(ref: str) -> None:
    with pytest.raises(ValueError, match="Telegram channel"):
        parse_channel_ref(ref)


def test_bare_and_marked_private_ids_are_the_same_peer() -> None:
    assert parse_channel_ref("2011223344").peer_id == parse_channel_ref("-1002011223344").peer_id == -1002011223344


def test_resolve_routes_offline_for_ids_and_through_the_session_cache_for_names() -> None:
    async def scenario() -> dict[int, ChannelConfig]:
        client = OfflineTelegramClient(known=[PUBLIC], invites={"AbCdEf123": INVITED})
        return await resolve_routes(client, CONFIG.channels)

    routes = asyncio.run(scenario())
    assert {peer: channel.weight for peer, channel in routes.items()} == {
        -1001506000321: 0.8, -1002011223344: 0.4, -1001900000077: 0.6,
    }


def test_an_invite_link_not_joined_yet_is_joined() -> None:
    async def scenario() -> tuple[dict[int, ChannelConfig], OfflineTelegramClient]:
        client = OfflineTelegramClient(invites={"AbCdEf123": INVITED})
        client.joined.clear()
        return await resolve_routes(client, (CONFIG.channels[2],)), client

    routes, client = asyncio.run(scenario())
    assert list(routes) == [-1001900000077]
    assert client.calls == ["CheckChatInviteRequest", "ImportChatInviteRequest"]


def test_unknown_username_is_a_permanent_error_naming_the_channel() -> None:
    async def scenario() -> None:
        client = OfflineTelegramClient(known=[])
        await resolve_routes(client, (ChannelConfig(id="@degencalls"),))

    with pytest.raises(TelegramAuthError, match="@degencalls"):
        asyncio.run(scenario())


def test_chat_filter_and_weights_with_telethons_builder() -> None:
    """NewMessage(chats=...) drops other chats; the handler stamps each channel's weight."""
    routes = {-1001506000321: CONFIG.channels[0], -1002011223344: CONFIG.channels[1]}
    delivered: list[Event] = []

    async def scenario() -> None:
        client = offline_client()
        builder = events.NewMessage(chats=list(routes))
        await builder.resolve(client)  # marked ids: no network
        handler = make_handler(routes, delivered.append)
        for channel, message_id in [(PUBLIC, 1), (OTHER, 2), (PRIVATE, 3)]:
            event = new_message_event(client, channel_update(channel_message(channel, message_id, f"call {message_id}"), chats=[channel]))
            if builder.filter(event):
                await handler(event)

    asyncio.run(scenario())
    assert [(e.channel, e.message_id, e.raw["channel_weight"]) for e in delivered] == [
        ("@DegenCalls", "1", 0.8), ("-1002011223344", "3", 0.4),
    ]


async def _wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def _start(client: OfflineTelegramClient) -> tuple[TelegramSource, asyncio.Task[None], list[Event]]:
    source = TelegramSource(CONFIG, api_id=1, api_hash="0" * 32, session="", client_factory=lambda: client)
    received: list[Event] = []

    async def emit(event: Event) -> None:
        await asyncio.sleep(0)  # emit may await: back-pressure must not reorder
        received.append(event)

    task = asyncio.create_task(source.run(emit))
    await _wait_for(lambda: source.health.connected or task.done())
    return source, task, received


def _client() -> OfflineTelegramClient:
    return OfflineTelegramClient(known=[PUBLIC], invites={"AbCdEf123": INVITED})


def test_run_emits_routed_messages_in_order_through_telethons_dispatch() -> None:
    async def scenario() -> tuple[list[Event], OfflineTelegramClient, TelegramSource]:
        client = _client()
        source, task, received = await _start(client)
        assert isinstance(source, Source)
        for channel, message_id in [(PUBLIC, 10), (OTHER, 11), (PRIVATE, 12), (INVITED, 13), (PUBLIC, 14)]:
            update = channel_update(channel_message(channel, message_id, f"CA 7GCihgDB8fe6KNjn2MYtkzZcRjQy3t9GHdC8uHYmW2hr #{message_id}"), chats=[channel])
            await client._dispatch_update(update)  # Telethon's own dispatch: build, filter, callback
        await _wait_for(lambda: len(received) == 4)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return received, client, source

    received, client, source = asyncio.run(scenario())
    assert [(e.channel, e.message_id) for e in received] == [
        ("@DegenCalls", "10"), ("-1002011223344", "12"), ("https://t.me/+AbCdEf123", "13"), ("@DegenCalls", "14"),
    ]
    assert all(e.tokens for e in received)
    assert client.calls[0] == "connect" and client.calls[-1] == "disconnect"
    assert "GetStateRequest" in client.calls  # run_until_disconnected asked for updates
    assert client.list_event_handlers() == []
    assert source.health.connected is False


@pytest.mark.parametrize("error", [None, ConnectionError("Connection to Telegram failed 5 time(s)")])
def test_run_raises_when_telethon_gives_up_and_can_run_again(error: BaseException | None) -> None:
    async def scenario() -> None:
        clients = [_client(), _client()]
        source = TelegramSource(CONFIG, api_id=1, api_hash="0" * 32, session="", client_factory=clients.pop)
        emitted: list[Event] = []

        async def emit(event: Event) -> None:
            emitted.append(event)

        for _ in range(2):  # the supervisor calls run again on the same object
            client = clients[-1]
            task = asyncio.create_task(source.run(emit))
            await _wait_for(lambda: source.health.connected)
            await client._dispatch_update(channel_update(channel_message(PUBLIC, 20 + len(emitted), "gm"), chats=[PUBLIC]))
            await asyncio.sleep(0.05)
            client.drop(error)
            with pytest.raises(TelegramDisconnectedError) as raised:
                await task
            assert (raised.value.__cause__ is error) if error else raised.value.__cause__ is None
            assert client.calls[-1] == "disconnect"
        assert [e.message_id for e in emitted] == ["20", "21"]  # queued before the drop: not lost

    asyncio.run(scenario())


@pytest.mark.parametrize("error", [RuntimeError("spool full"), OSError("spool disk full")])
def test_emit_failure_ends_run_untranslated_and_disconnects(error: Exception) -> None:
    async def scenario() -> OfflineTelegramClient:
        client = _client()
        source = TelegramSource(CONFIG, api_id=1, api_hash="0" * 32, session="", client_factory=lambda: client)

        async def emit(event: Event) -> None:
            raise error

        task = asyncio.create_task(source.run(emit))
        await _wait_for(lambda: source.health.connected)
        await client._dispatch_update(channel_update(channel_message(PUBLIC, 30, "gm"), chats=[PUBLIC]))
        with pytest.raises(type(error)) as raised:
            await task
        assert raised.value is error  # not mistaken for a Telegram disconnection
        return client

    assert asyncio.run(scenario()).calls[-1] == "disconnect"


def test_unauthorised_session_is_a_clear_permanent_error() -> None:
    client = OfflineTelegramClient(authorized=False)
    source = TelegramSource(CONFIG, api_id=1, api_hash="0" * 32, session="", client_factory=lambda: client)
    emit: Callable[[Event], Awaitable[None]] = lambda event: asyncio.sleep(0)  # noqa: E731
    with pytest.raises(TelegramAuthError, match="not logged in"):
        asyncio.run(source.run(emit))
    assert client.calls == ["connect", "disconnect"]


@pytest.mark.parametrize("missing", ["SIGNALWORKS_TELEGRAM_API_ID", "SIGNALWORKS_TELEGRAM_API_HASH"])
def test_build_names_the_missing_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, missing: str) -> None:
    monkeypatch.setenv("SIGNALWORKS_TELEGRAM_API_ID", "12345")
    monkeypatch.setenv("SIGNALWORKS_TELEGRAM_API_HASH", "0123456789abcdef0123456789abcdef")
    monkeypatch.delenv(missing)
    with pytest.raises(ValueError, match=missing):
        build_telegram_source(CONFIG, home=tmp_path)


def test_build_uses_the_session_string_or_a_file_in_the_data_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SIGNALWORKS_TELEGRAM_API_ID", "12345")
    monkeypatch.setenv("SIGNALWORKS_TELEGRAM_API_HASH", "0123456789abcdef0123456789abcdef")
    monkeypatch.delenv("SIGNALWORKS_TELEGRAM_SESSION", raising=False)
    from_file = build_telegram_source(CONFIG, home=tmp_path)
    assert from_file.session_file == tmp_path / "telegram" / "signalworks"
    assert "0123456789abcdef" not in repr(from_file)

    monkeypatch.setenv("SIGNALWORKS_TELEGRAM_SESSION", "1BVtsOK4Bu0")
    from_string = build_telegram_source(CONFIG, home=tmp_path)
    assert from_string.session_file is None and "1BVtsOK4Bu0" not in repr(from_string)


def test_build_rejects_a_non_numeric_api_id(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SIGNALWORKS_TELEGRAM_API_ID", "abc")
    monkeypatch.setenv("SIGNALWORKS_TELEGRAM_API_HASH", "x")
    with pytest.raises(ValueError, match="SIGNALWORKS_TELEGRAM_API_ID"):
        build_telegram_source(CONFIG, home=tmp_path)


def test_permanent_errors_stop_the_source_in_the_supervisor() -> None:
    assert issubclass(TelegramAuthError, SourceFatalError)
    assert not issubclass(TelegramDisconnectedError, SourceFatalError)


def test_types_message_is_telethons_custom_message() -> None:
    """Guards the premise of these tests: tl.types.Message is the object handlers receive."""
    from telethon.tl.custom.message import Message

    assert issubclass(types.Message, Message)
