"""TelegramBotClient against the loopback Bot API stand-in (tests/support/telegram_standin.py).

The stand-in answers with the real recorded bodies of ``../shared/fixtures/telegram`` and
enforces Telegram's flood limits on the same fake clock the client's flood gate uses, so no test
really sleeps through a back-off. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import socket
import time
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from resources.exchanges.errors import (
    PermanentError,
    RateLimitedError,
    RetriesExhaustedError,
    TransientError,
)
from resources.publishers.flood import FloodGate
from resources.publishers.render import fit_message, render_template, utf16_length
from resources.publishers.telegram_bot import (
    SentMessage,
    TelegramBotClient,
    TelegramRejectedError,
)
from resources.retry import RetryPolicy
from tests.resources.publishers.fake_clock import FakeClock
from tests.support.fixtures import shared_fixtures_dir
from tests.support.telegram_standin import Fault, TelegramStandIn

pytestmark = pytest.mark.fixtures

GROUP = -1001234567890
OTHER_GROUP = -1009876543210
USER = 1297094036
SECRET = "AAE-stand-in-secret-token_0123456789"


@pytest.fixture
def bot_api_dir() -> Path:
    return shared_fixtures_dir() / "telegram" / "bot_api"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def standin(bot_api_dir: Path, clock: FakeClock) -> Iterator[TelegramStandIn]:
    with TelegramStandIn(bot_api_dir, token=f"123456789:{SECRET}", clock=clock) as server:
        yield server


@pytest.fixture
def waits() -> list[float]:
    """Every back-off the retry policy asked for (recorded, not slept, and not on the clock)."""
    return []


def make_client(
    standin: TelegramStandIn, clock: FakeClock, waits: list[float], **overrides: object
) -> TelegramBotClient:
    token = str(overrides.pop("token", standin.token))
    options: dict[str, object] = {
        "base_url": standin.base_url,
        "timeout_s": 2.0,
        "flood": FloodGate(clock=clock, sleep=clock.sleep),
        "retry": RetryPolicy(attempts=4, base_delay=0.01, sleep=waits.append, rng=random.Random(7)),
    }
    options.update(overrides)
    return TelegramBotClient(token, **options)  # type: ignore[arg-type]


@pytest.fixture
def client(
    standin: TelegramStandIn, clock: FakeClock, waits: list[float]
) -> Iterator[TelegramBotClient]:
    with make_client(standin, clock, waits) as live:
        yield live


def everything_shown(error: BaseException) -> str:
    """All a log or traceback could show about an error, its causes included."""
    return "".join(traceback.format_exception(error))


# -- the happy path ----------------------------------------------------------------------------


def test_get_me_returns_the_recorded_bot(client: TelegramBotClient, bot_api_dir: Path) -> None:
    recorded = json.loads((bot_api_dir / "silikidi" / "getMe.json").read_text())["result"]
    assert client.get_me() == recorded


def test_send_message_keeps_the_contract(
    client: TelegramBotClient, standin: TelegramStandIn
) -> None:
    before = int(time.time())
    sent = client.send_message(GROUP, "<b>LONG</b> BTC/USDT")
    reply = client.send_message(
        GROUP, "TP1 hit", disable_web_page_preview=False, reply_to_message_id=sent.message_id
    )

    assert isinstance(sent, SentMessage)
    assert (sent.chat_id, sent.message_id, reply.message_id) == (GROUP, 1, 2)
    assert sent.date.tzinfo == UTC and sent.date >= datetime.fromtimestamp(before, UTC)
    first, second = standin.sent_to(GROUP)
    assert first.parameters == {
        "chat_id": GROUP,
        "text": "<b>LONG</b> BTC/USDT",
        "parse_mode": "HTML",
        "link_preview_options": {"is_disabled": True},
    }
    assert first.plain_text == "LONG BTC/USDT"
    assert first.entities == [{"type": "bold", "offset": 0, "length": 4}]
    assert second.parameters["reply_parameters"] == {"message_id": 1}
    assert second.parameters["link_preview_options"] == {"is_disabled": False}
    assert second.time - first.time >= 1.0  # the gate spaced them


def test_sends_to_a_channel_by_username(
    client: TelegramBotClient, standin: TelegramStandIn
) -> None:
    sent = client.send_message("@signalworks", "hello", chat_kind="channel")
    assert sent.chat_id < 0 and [m.text for m in standin.sent_to("@signalworks")] == ["hello"]


def test_hostile_values_are_escaped_and_shown_verbatim(
    client: TelegramBotClient, standin: TelegramStandIn
) -> None:
    values = {
        "symbol": "<script>alert('pwn')</script>",
        "channel": "Pump & Dump <b>Calls",
        "note": "</b></i>unbalanced<a href='x'>",
        "url": "https://dexscreener.com/solana/abc?ref=1&utm=<x>",
    }
    html = render_template(
        '<b>{symbol}</b> from <i>{channel}</i>: {note} <a href="{url}">chart</a>', values
    )
    client.send_message(GROUP, html)

    (accepted,) = standin.sent_to(GROUP)
    assert accepted.plain_text == (
        "<script>alert('pwn')</script> from Pump & Dump <b>Calls: "
        "</b></i>unbalanced<a href='x'> chart"
    )
    assert {e["type"] for e in accepted.entities} == {"bold", "italic", "text_link"}
    assert next(e["url"] for e in accepted.entities if e["type"] == "text_link") == values["url"]


def test_a_message_over_4096_utf16_units_is_fitted_and_accepted(
    client: TelegramBotClient, standin: TelegramStandIn
) -> None:
    # 2100 rockets are 2100 code points but 4200 UTF-16 units: len() alone would say it fits
    html = render_template("<b>{head}</b>\n{body}", {"head": "A & B", "body": "🚀" * 2100})
    with pytest.raises(TelegramRejectedError, match=r"message is too long.*fit_message"):
        client.send_message(GROUP, html)
    assert len(standin.calls_to("sendMessage")) == 1  # permanent: not retried

    client.send_message(GROUP, fit_message(html))
    (accepted,) = standin.sent_to(GROUP)
    assert utf16_length(accepted.plain_text) <= 4096
    assert accepted.plain_text.startswith("A & B\n🚀🚀") and accepted.plain_text.endswith("🚀…")


# -- 429 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("old_style", [False, True], ids=["parameters.retry_after", "2016 body"])
def test_429_retry_after_is_honoured_and_pauses_the_chat_in_the_gate(
    client: TelegramBotClient,
    standin: TelegramStandIn,
    clock: FakeClock,
    waits: list[float],
    old_style: bool,
) -> None:
    standin.inject(standin.rate_limit_fault(7, chat_id=GROUP, old_style=old_style))
    start = clock.now

    sent = client.send_message(GROUP, "after the flood wait")

    assert sent.message_id == 1
    assert [c.status for c in standin.calls_to("sendMessage")] == [429, 200]
    assert waits and waits[0] >= 7  # the retry policy waited at least retry_after ...
    assert clock.sleeps == [pytest.approx(7.0)]  # ... and the gate held the chat for it too
    assert standin.sent_to(GROUP)[0].time == pytest.approx(start + 7.0)
    assert client.flood.time_until_allowed(OTHER_GROUP) == 0.0  # other chats were not paused


def test_a_long_retry_after_is_raised_at_once_not_waited_out(
    client: TelegramBotClient, standin: TelegramStandIn, waits: list[float]
) -> None:
    standin.inject(standin.rate_limit_fault(2282, chat_id=GROUP))  # as quoted in tdlib#184

    with pytest.raises(RateLimitedError) as caught:
        client.send_message(GROUP, "x")

    assert caught.value.retry_after == 2282
    assert "retry after 2282" in str(caught.value)
    assert len(standin.calls_to("sendMessage")) == 1 and waits == []
    assert client.flood.time_until_allowed(GROUP) == pytest.approx(2282)
    assert client.flood.time_until_allowed(OTHER_GROUP) == 0.0


def test_429_on_every_attempt_exhausts_the_retries(
    client: TelegramBotClient, standin: TelegramStandIn
) -> None:
    standin.inject(*(standin.rate_limit_fault(1) for _ in range(4)))
    with pytest.raises(RetriesExhaustedError, match="4 attempts") as caught:
        client.send_message(GROUP, "x")
    assert isinstance(caught.value.__cause__.__cause__, RateLimitedError)  # type: ignore[union-attr]
    assert len(standin.calls_to("sendMessage")) == 4 and standin.accepted == []


# -- 400 / 403 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("behaviour", "status", "description", "what_to_fix"),
    [
        ("chat_not_found", 400, "Bad Request: chat not found", "bot was added to the chat"),
        ("blocked", 403, "Forbidden: bot was blocked by the user", "unblock the bot"),
        (
            "not_member_channel",
            403,
            "Forbidden: bot is not a member of the channel chat",
            "administrator allowed to post",
        ),
        (
            "not_member_supergroup",
            403,
            "Forbidden: bot is not a member of the supergroup chat",
            "add the bot to the group",
        ),
        ("kicked", 403, "Forbidden: bot was kicked from the group chat", "add it again"),
        (
            "cant_initiate",
            403,
            "Forbidden: bot can't initiate conversation with a user",
            "press Start",
        ),
        ("deactivated", 403, "Forbidden: user is deactivated", "drop this chat"),
    ],
)
def test_recorded_400_and_403_are_permanent_say_what_to_fix_and_are_not_retried(
    client: TelegramBotClient,
    standin: TelegramStandIn,
    waits: list[float],
    behaviour: str,
    status: int,
    description: str,
    what_to_fix: str,
) -> None:
    standin.set_chat(USER, behaviour)
    with pytest.raises(TelegramRejectedError) as caught:
        client.send_message(USER, "hello", chat_kind="private")
    error = caught.value
    assert isinstance(error, PermanentError)
    assert (error.error_code, error.description) == (status, description)
    assert description in str(error) and what_to_fix in str(error)
    assert str(USER) in str(error)
    assert len(standin.calls_to("sendMessage")) == 1 and waits == []


def test_a_migrated_group_names_the_new_chat_id(
    client: TelegramBotClient, standin: TelegramStandIn
) -> None:
    standin.set_chat(GROUP, "migrated")
    with pytest.raises(TelegramRejectedError) as caught:
        client.send_message(GROUP, "x")
    assert caught.value.migrate_to_chat_id == -123456789
    assert "change the chat id to -123456789" in str(caught.value)


def test_malformed_html_is_rejected_with_telegrams_reason(
    client: TelegramBotClient, standin: TelegramStandIn
) -> None:
    with pytest.raises(TelegramRejectedError) as caught:
        client.send_message(GROUP, "Entry <b>0.5 & rising")
    assert caught.value.description == (
        "Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"b\""
    )
    assert "render_template" in str(caught.value)
    assert len(standin.calls_to("sendMessage")) == 1


def test_replying_to_a_missing_message_is_permanent(client: TelegramBotClient) -> None:
    with pytest.raises(TelegramRejectedError, match="reply message not found"):
        client.send_message(GROUP, "x", reply_to_message_id=999)


# -- transient failures ------------------------------------------------------------------------

BAD_GATEWAY = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
INTERNAL = {"ok": False, "error_code": 500, "description": "Internal Server Error"}


def test_5xx_is_retried_until_it_succeeds(
    client: TelegramBotClient, standin: TelegramStandIn, waits: list[float]
) -> None:
    standin.inject(Fault(502, BAD_GATEWAY), Fault(500, INTERNAL))
    assert client.send_message(GROUP, "x").message_id == 1
    assert [c.status for c in standin.calls_to("sendMessage")] == [502, 500, 200]
    assert len(waits) == 2


def test_get_me_is_retried_too(client: TelegramBotClient, standin: TelegramStandIn) -> None:
    standin.inject(Fault(503, BAD_GATEWAY, method="getme"))
    assert client.get_me()["username"] == "mybot"
    assert [c.status for c in standin.calls_to("getMe")] == [503, 200]


def test_persistent_5xx_exhausts_the_retries(
    client: TelegramBotClient, standin: TelegramStandIn
) -> None:
    standin.inject(*(Fault(502, BAD_GATEWAY) for _ in range(4)))
    with pytest.raises(RetriesExhaustedError, match="base URL in use") as caught:
        client.send_message(GROUP, "x")
    assert isinstance(caught.value.__cause__.__cause__, TransientError)  # type: ignore[union-attr]
    assert len(standin.calls_to("sendMessage")) == 4


def test_a_timeout_is_retried(
    standin: TelegramStandIn, clock: FakeClock, waits: list[float]
) -> None:
    standin.inject(Fault(504, INTERNAL, delay_s=1.0))
    with make_client(standin, clock, waits, timeout_s=0.2) as client:
        assert client.send_message(GROUP, "x").message_id == 1
    assert len(waits) == 1 and len(standin.accepted) == 1


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the token never shows ---------------------------------------------------------------------


def test_the_token_never_appears_in_errors_reprs_or_logs(
    standin: TelegramStandIn,
    clock: FakeClock,
    waits: list[float],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, httpx's request log included
    errors: list[BaseException] = []
    wrong_token = "987654321:ZZZ-wrong-token-that-must-stay-secret"
    with make_client(standin, clock, waits, token=wrong_token) as client:
        assert "ZZZ-wrong" not in repr(client)
        with pytest.raises(TelegramRejectedError, match="token was rejected") as unauthorized:
            client.get_me()
        errors.append(unauthorized.value)
    with make_client(standin, clock, waits) as client:
        client.send_message(GROUP, "ok")
        standin.set_chat(USER, "blocked")
        standin.inject(Fault(502, BAD_GATEWAY, chat_id=str(OTHER_GROUP)))
        standin.inject(standin.rate_limit_fault(5000, chat_id=str(OTHER_GROUP)))
        for chat in (USER, OTHER_GROUP):
            with pytest.raises((PermanentError, RateLimitedError)) as caught:
                client.send_message(chat, "x")
            errors.append(caught.value)
    offline = f"http://127.0.0.1:{_closed_port()}"
    with make_client(standin, clock, waits, base_url=offline) as client:
        with pytest.raises(RetriesExhaustedError) as refused:
            client.send_message(GROUP, "x")
        errors.append(refused.value)

    assert len(errors) == 4
    for error in errors:
        shown = everything_shown(error)
        assert SECRET not in shown and "ZZZ-wrong" not in shown, shown
    assert "HTTP Request: POST" in caplog.text  # httpx did log the requests ...
    assert "/bot***/" in caplog.text  # ... with the token masked
    assert SECRET not in caplog.text and "ZZZ-wrong" not in caplog.text


def test_a_malformed_token_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="malformed") as caught:
        TelegramBotClient("not a token with secret-XYZ")
    assert "secret-XYZ" not in str(caught.value)


# -- flood limits end to end -------------------------------------------------------------------


def test_forty_messages_to_two_chats_arrive_in_order_without_a_429(
    client: TelegramBotClient, standin: TelegramStandIn, clock: FakeClock
) -> None:
    start = clock.now
    for n in range(40):
        client.send_message(GROUP if n % 2 == 0 else OTHER_GROUP, f"<b>#{n}</b>")

    assert standin.violations == []
    assert {c.status for c in standin.calls_to("sendMessage")} == {200}
    for chat, first in ((GROUP, 0), (OTHER_GROUP, 1)):
        messages = standin.sent_to(chat)
        assert [m.plain_text for m in messages] == [f"#{n}" for n in range(first, 40, 2)]
        gaps = [b.time - a.time for a, b in itertools.pairwise(messages)]
        assert min(gaps) >= 1.0
    assert clock.now - start == pytest.approx(19.0)  # 20 per chat, one per second, in parallel


def test_forty_messages_in_real_time_with_short_limits(bot_api_dir: Path) -> None:
    """The real clock and sleep; the stand-in sees arrivals, the gate departures, so the
    tolerance absorbs up to 40 ms of loopback jitter between two requests."""
    interval = 0.05
    with TelegramStandIn(bot_api_dir, per_chat_interval_s=interval, tolerance_s=0.04) as standin:
        gate = FloodGate(per_chat_interval_s=interval)
        retry = RetryPolicy(attempts=1)
        with TelegramBotClient(
            standin.token, base_url=standin.base_url, flood=gate, retry=retry
        ) as client:
            started = time.monotonic()
            for n in range(40):
                client.send_message(GROUP if n % 2 == 0 else OTHER_GROUP, f"#{n}")
            elapsed = time.monotonic() - started
    assert standin.violations == [] and len(standin.accepted) == 40
    assert [m.plain_text for m in standin.sent_to(GROUP)] == [f"#{n}" for n in range(0, 40, 2)]
    assert elapsed >= 1.0  # the 31st message waited for the 30-per-second window


def test_the_standin_catches_a_client_that_floods_and_the_client_recovers(
    standin: TelegramStandIn, clock: FakeClock, waits: list[float]
) -> None:
    too_fast = FloodGate(per_chat_interval_s=0.0, clock=clock, sleep=clock.sleep)
    with make_client(standin, clock, waits, flood=too_fast) as client:
        client.send_message(GROUP, "one")
        client.send_message(GROUP, "two")  # same fake instant: Telegram would answer 429
    assert standin.violations == [(str(GROUP), "per-chat interval")]
    assert [c.status for c in standin.calls_to("sendMessage")] == [200, 429, 200]
    assert [m.plain_text for m in standin.sent_to(GROUP)] == ["one", "two"]
    assert clock.sleeps == [pytest.approx(1.0)]  # retry_after 1 paused the chat in the gate
