"""DiscordSource end to end: discord.py itself against the loopback Discord stand-in.

The stand-in serves the REST calls discord.py logs in with and the gateway, answering with the
real captures in ``../shared/fixtures/discord/gateway`` (Hello, Ready, HeartbeatAck,
MESSAGE_CREATE...); see :mod:`tests.support.discord_standin` for what is synthetic.
"""

from __future__ import annotations

import asyncio
import gc
import json
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from resources.social_config import ChannelConfig, DiscordSourceConfig
from streaming.events import Event
from streaming.sources.base import Source, SourceFatalError
from streaming.sources.discord import (
    DiscordAuthError,
    DiscordDisconnectedError,
    DiscordRoutes,
    DiscordSource,
    build_discord_source,
    source_intents,
)
from tests.support.discord_standin import DiscordStandIn, StandInGuild
from tests.support.fixtures import shared_fixtures_dir

pytestmark = [pytest.mark.fixtures, pytest.mark.timeout(30)]

T = TypeVar("T")
TOKEN = "MzQ0NDg3ODMwODI0OTQzNjE4.stand-in.token"
MINT = "7GCihgDB8fe6KNjn2MYtkzZcRjQy3t9GHdC8uHYmW2hr"
# Ids of MessageCreate.Type0.json (guild 694205451682978886, channel 727947198481956945).
CALLS_GUILD = StandInGuild("694205451682978886", "Calls HQ", {"727947198481956945": "calls", "727947198481956946": "general"})
ALPHA_GUILD = StandInGuild("185949590652977152", "Alpha", {"563557393640849437": "alpha-calls"})
OTHER_GUILD = StandInGuild("123456789012345678", "Noise", {"123456789012345678": "memes"})
CONFIG = DiscordSourceConfig(
    enabled=True,
    channels=(
        ChannelConfig(id="727947198481956945", weight=0.7, name="calls"),
        ChannelConfig(id="185949590652977152", weight=0.4, name="alpha server"),  # a whole server
    ),
)


@pytest.fixture
def fixtures() -> Path:
    return shared_fixtures_dir()


def run_clean(scenario: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``asyncio.run`` that fails on anything left unclosed (sessions, sockets, pending tasks).

    aiohttp reports an unclosed ``ClientSession``/connector through the loop's exception
    handler ("Unclosed client session"), asyncio a pending task ("Task was destroyed but it is
    pending!"), Python an unclosed socket or transport as a ``ResourceWarning`` ("unclosed ...").
    """
    problems: list[str] = []

    async def main() -> T:
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: problems.append(context["message"]))
        return await scenario()

    gc.collect()  # earlier tests' garbage is not this test's business
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = asyncio.run(main())
        gc.collect()
    problems += [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    ours = [p for p in problems if any(s in p.lower() for s in ("unclosed", "destroyed", "never awaited", "socket", "transport"))]
    assert ours == [], ours
    return result


@asynccontextmanager
async def running(source: DiscordSource, emit: Callable[[Event], Awaitable[None]]) -> AsyncIterator[asyncio.Task[None]]:
    """``source.run(emit)`` as a task, cancelled (and awaited) on exit unless it already ended."""
    task = asyncio.create_task(source.run(emit))
    try:
        yield task
    finally:
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def _source(api: DiscordStandIn, *, token: str = TOKEN, **kwargs: Any) -> DiscordSource:
    return DiscordSource(CONFIG, token=token, http_base=api.http_base, gateway_url=api.gateway_url, **kwargs)


def _collector() -> tuple[list[Event], Callable[[Event], Awaitable[None]]]:
    received: list[Event] = []

    async def emit(event: Event) -> None:
        await asyncio.sleep(0)  # back-pressure point: must not reorder
        received.append(event)

    return received, emit


def test_message_create_frames_become_events(fixtures: Path) -> None:
    embed = json.loads((fixtures / "discord/gateway/MessageUpdate.Embeds.json").read_text())["d"]["embeds"]
    attachment = {  # synthetic: no capture has an attachment
        "id": "732582724170285999", "filename": "chart.png", "size": 48213, "content_type": "image/png",
        "url": "https://cdn.discordapp.com/attachments/727947198481956945/732582724170285999/chart.png",
        "proxy_url": "https://media.discordapp.net/attachments/727947198481956945/732582724170285999/chart.png",
    }

    async def scenario() -> tuple[list[Event], DiscordStandIn]:
        async with DiscordStandIn(fixtures, token=TOKEN, guilds=[CALLS_GUILD, ALPHA_GUILD, OTHER_GUILD]) as api:
            received, emit = _collector()
            source = _source(api)
            assert isinstance(source, Source)
            async with running(source, emit):
                await api.wait_sessions(1)
                frames = [
                    api.message_frame("MessageCreate.Type0.json", channel_id="727947198481956945", guild_id=CALLS_GUILD.id, content=f"CA: {MINT}"),
                    api.message_frame("MessageCreate.Type6.json", channel_id="123456789012345678", guild_id=OTHER_GUILD.id),  # not configured
                    api.message_frame("MessageCreate.Type0.json", channel_id="727947198481956946", guild_id=CALLS_GUILD.id, message_id="732582724170285087"),  # other channel, same server
                    api.message_frame("MessageCreate.Type19.json", channel_id="563557393640849437", guild_id=ALPHA_GUILD.id),  # reply, routed by server
                    api.message_frame("MessageCreate.Type0.json", channel_id="727947198481956945", guild_id=CALLS_GUILD.id, message_id="732582724170285088",
                                      content="", embeds=embed, attachments=[attachment]),
                    api.message_frame("MessageCreate.Type0.json", channel_id="727947198481956945", guild_id=CALLS_GUILD.id, message_id="732582724170285089",
                                      author=api.bot_user),  # the bot's own message
                ]
                for frame in frames:
                    await api.send_message(frame)
                await _until(lambda: len(received) == 3)
                await asyncio.sleep(0.1)  # nothing else arrives
                assert source.health.connected
            assert source.health.connected is False
            return received, api

    received, api = run_clean(scenario)

    first, reply, media = received
    assert (first.source, first.channel, first.message_id, first.author) == ("discord", "727947198481956945", "732582724170285086", "Username")
    assert first.text == f"CA: {MINT}" and [t.address for t in first.tokens] == [MINT]
    assert first.ts == datetime(2020, 7, 14, 13, 2, 12, 171000, tzinfo=UTC)
    assert first.attachments == ()
    assert {k: first.raw[k] for k in ("guild_id", "guild_name", "channel_name", "configured_id", "channel_weight", "author_id")} == {
        "guild_id": "694205451682978886", "guild_name": "Calls HQ", "channel_name": "calls",
        "configured_id": "727947198481956945", "channel_weight": 0.7, "author_id": "562268917771413264",
    }

    assert (reply.channel, reply.message_id, reply.author, reply.text) == ("563557393640849437", "779520963116400721", "quantic", "cool.")
    assert reply.raw["reply_to"] == "775214933398782002" and reply.raw["message_type"] == 19
    assert (reply.raw["configured_id"], reply.raw["channel_weight"], reply.raw["channel_name"]) == ("185949590652977152", 0.4, "alpha-calls")

    assert media.text == "Jake Chudnow - Moon Men (Instrumental)\nThis is the instrumental"
    assert media.attachments == (attachment["url"],)
    assert media.raw["files"] == [{"filename": "chart.png", "content_type": "image/png", "size": 48213}]

    (identify,) = api.identifies
    assert identify["token"] == TOKEN and identify["intents"] == source_intents().value == (1 << 0) | (1 << 9) | (1 << 15)
    assert api.gateway_queries[0] == {"v": "10", "encoding": "json", "compress": "zlib-stream"}
    assert api.rest_calls == ["GET /users/@me", "GET /oauth2/applications/@me"]
    assert api.heartbeats >= 1  # discord.py beats right after Hello
    assert api.client_close_codes == [1000]  # cancelling run closed the socket cleanly


def test_dropped_socket_and_reconnect_request_are_resumed_by_discord_py(fixtures: Path) -> None:
    async def scenario() -> tuple[list[Event], DiscordStandIn, bool]:
        async with DiscordStandIn(fixtures, token=TOKEN, guilds=[CALLS_GUILD]) as api:
            received, emit = _collector()
            async with running(_source(api), emit) as task:
                await api.wait_sessions(1)
                await api.send_message(api.message_frame("MessageCreate.Type0.json", channel_id="727947198481956945", guild_id=CALLS_GUILD.id, message_id="1"))
                await api.drop(4000)  # resumable close code
                await api.wait_sessions(2)
                await api.send_message(api.message_frame("MessageCreate.Type0.json", channel_id="727947198481956945", guild_id=CALLS_GUILD.id, message_id="2"))
                await api.send_fixture("Reconnect.json")  # op 7
                await api.wait_sessions(3)
                await api.send_message(api.message_frame("MessageCreate.Type0.json", channel_id="727947198481956945", guild_id=CALLS_GUILD.id, message_id="3"))
                await _until(lambda: len(received) == 3)
                still_running = not task.done()
            return received, api, still_running

    received, api, still_running = run_clean(scenario)
    assert still_running
    assert [e.message_id for e in received] == ["1", "2", "3"]  # none lost, none twice
    assert len(api.identifies) == 1
    assert len(api.resumes) == 2 and all(r["token"] == TOKEN for r in api.resumes)
    assert len({r["session_id"] for r in api.resumes}) == 1  # the session READY opened
    assert api.resumes[0]["seq"] < api.resumes[1]["seq"]


def test_run_raises_when_the_session_cannot_be_resumed(fixtures: Path) -> None:
    async def scenario() -> BaseException:
        async with DiscordStandIn(fixtures, token=TOKEN, guilds=[CALLS_GUILD]) as api:
            _, emit = _collector()
            source = _source(api)
            async with running(source, emit) as task:
                await api.wait_sessions(1)
                api.refuse_gateway = True  # Discord unreachable from now on
                await api.drop(4000)
                with pytest.raises(DiscordDisconnectedError) as raised:
                    await task
            assert source.health.connected is False
            return raised.value

    error = run_clean(scenario)
    assert error.__cause__ is not None  # discord.py's own error, chained


@pytest.mark.parametrize("code", [4004, 4014])
def test_fatal_close_codes_are_permanent_errors(fixtures: Path, code: int) -> None:
    async def scenario() -> None:
        async with DiscordStandIn(fixtures, token=TOKEN, guilds=[CALLS_GUILD]) as api:
            _, emit = _collector()
            async with running(_source(api), emit) as task:
                await api.wait_sessions(1)
                await api.drop(code)
                with pytest.raises(DiscordAuthError, match=str(code)):
                    await task
            assert api.resumes == []

    run_clean(scenario)


def test_rejected_token_is_a_permanent_error(fixtures: Path) -> None:
    async def scenario() -> DiscordStandIn:
        async with DiscordStandIn(fixtures, token=TOKEN, guilds=[CALLS_GUILD]) as api:
            _, emit = _collector()
            with pytest.raises(DiscordAuthError, match="token"):
                await _source(api, token="wrong").run(emit)
            return api

    api = run_clean(scenario)
    assert api.rest_calls == ["GET /users/@me"] and api.identifies == []


def test_emit_failure_ends_run_and_closes_the_client(fixtures: Path) -> None:
    async def scenario() -> DiscordStandIn:
        async with DiscordStandIn(fixtures, token=TOKEN, guilds=[CALLS_GUILD]) as api:
            async def emit(event: Event) -> None:
                raise OSError("spool disk full")

            async with running(_source(api), emit) as task:
                await api.wait_sessions(1)
                await api.send_message(api.message_frame("MessageCreate.Type0.json", channel_id="727947198481956945", guild_id=CALLS_GUILD.id))
                with pytest.raises(OSError, match="spool disk full"):
                    await task
            await _until(lambda: api.client_close_codes == [1000])
            return api

    run_clean(scenario)


def test_ignore_bots(fixtures: Path) -> None:
    bot_author = {"id": "344487830824943619", "username": "CallBot", "discriminator": "0001", "avatar": None, "bot": True}

    async def scenario() -> list[Event]:
        async with DiscordStandIn(fixtures, token=TOKEN, guilds=[CALLS_GUILD]) as api:
            received, emit = _collector()
            async with running(_source(api, ignore_bots=True), emit):
                await api.wait_sessions(1)
                await api.send_message(api.message_frame("MessageCreate.Type0.json", channel_id="727947198481956945", guild_id=CALLS_GUILD.id, message_id="1", author=bot_author))
                await api.send_message(api.message_frame("MessageCreate.Type0.json", channel_id="727947198481956945", guild_id=CALLS_GUILD.id, message_id="2"))
                await _until(lambda: len(received) == 1)
                await asyncio.sleep(0.1)
            return received

    assert [e.message_id for e in run_clean(scenario)] == ["2"]


@pytest.mark.parametrize(
    ("channel_id", "parent_id", "guild_id", "expected"),
    [
        ("10", None, "99", "10"),  # channel entry
        ("11", None, "20", "20"),  # server entry
        ("10", None, "20", "10"),  # channel beats its server
        ("30", "10", "99", "10"),  # thread of a configured channel
        ("30", "31", "20", "20"),  # thread in a configured server
        ("30", "31", "99", None),
    ],
)
def test_routes(channel_id: str, parent_id: str | None, guild_id: str, expected: str | None) -> None:
    routes = DiscordRoutes.from_channels([ChannelConfig(id="10", weight=0.9), ChannelConfig(id="20", weight=0.2)])
    found = routes.route(channel_id, parent_id=parent_id, guild_id=guild_id)
    assert (found.id if found else None) == expected


def test_build_names_the_missing_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SIGNALWORKS_DISCORD_TOKEN", raising=False)
    with pytest.raises(ValueError, match="SIGNALWORKS_DISCORD_TOKEN"):
        build_discord_source(CONFIG, home=tmp_path)  # streaming.listen passes home to every builder
    monkeypatch.setenv("SIGNALWORKS_DISCORD_TOKEN", TOKEN)
    source = build_discord_source(CONFIG)
    assert TOKEN not in repr(source)


def test_permanent_errors_stop_the_source_in_the_supervisor() -> None:
    assert issubclass(DiscordAuthError, SourceFatalError)
    assert not issubclass(DiscordDisconnectedError, SourceFatalError)
