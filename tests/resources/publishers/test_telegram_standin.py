"""The Bot API stand-in itself, spoken to with raw HTTP: it must answer the way Telegram does
(recorded bodies, Telegram's error wording) or the client tests prove nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.resources.publishers.fake_clock import FakeClock
from tests.support.fixtures import shared_fixtures_dir
from tests.support.telegram_standin import TelegramStandIn, parse_html

pytestmark = pytest.mark.fixtures


@pytest.fixture
def bot_api_dir() -> Path:
    return shared_fixtures_dir() / "telegram" / "bot_api"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def standin(bot_api_dir: Path, clock: FakeClock) -> Iterator[TelegramStandIn]:
    with TelegramStandIn(bot_api_dir, clock=clock) as server:
        yield server


@pytest.fixture
def http(standin: TelegramStandIn) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{standin.base_url}/bot{standin.token}") as client:
        yield client


def send(http: httpx.Client, **parameters: object) -> httpx.Response:
    return http.post("/sendMessage", json={"chat_id": -100, "parse_mode": "HTML", **parameters})


def test_get_me_is_the_recorded_body_by_get_or_post(http: httpx.Client, bot_api_dir: Path) -> None:
    recorded = json.loads((bot_api_dir / "silikidi" / "getMe.json").read_text())
    assert http.get("/getMe").json() == recorded
    assert http.post("/getme", json={}).json() == recorded  # method names are case-insensitive


@pytest.mark.parametrize("path", ["/sendMessages", "/sendPhoto", "/"])
def test_unknown_methods_are_404_not_found(http: httpx.Client, path: str) -> None:
    response = http.post(path, json={})
    assert response.status_code == 404
    assert response.json() == {"ok": False, "error_code": 404, "description": "Not Found"}


def test_a_wrong_token_is_the_recorded_401(standin: TelegramStandIn) -> None:
    response = httpx.post(f"{standin.base_url}/bot1:wrong/getMe")
    assert response.status_code == 401
    assert response.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}


@pytest.mark.parametrize(
    ("parameters", "description"),
    [
        ({"chat_id": None, "text": "x"}, "Bad Request: chat_id is empty"),
        ({"chat_id": "not a chat", "text": "x"}, "Bad Request: chat not found"),
        ({}, "Bad Request: message text is empty"),
        ({"text": "  \n "}, "Bad Request: message text is empty"),
        ({"text": "<b></b>"}, "Bad Request: message text is empty"),
        ({"text": "x", "parse_mode": "Bogus"}, "Bad Request: unsupported parse_mode"),
        (
            {"text": "x", "reply_parameters": {"message_id": 7}},
            "Bad Request: reply message not found",
        ),
        (
            {"text": "x", "disable_preview": True},
            "stand-in: unknown parameter(s) ['disable_preview']",
        ),
        (
            {"text": "x", "link_preview_options": "yes"},
            "Bad Request: can't parse link preview options JSON object",
        ),
    ],
)
def test_required_parameters(
    http: httpx.Client, parameters: dict[str, object], description: str
) -> None:
    response = send(http, **parameters)
    assert response.status_code == 400
    assert response.json() == {"ok": False, "error_code": 400, "description": description}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        # the two descriptions quoted from real reports (errors_quoted_in_issues.json)
        ("x" * 84 + "<</b>", 'Unsupported start tag "</b" at byte offset 84'),
        ("<b>x", 'Can\'t find end tag corresponding to start tag "b"'),
        ("a < b", 'Unsupported start tag "" at byte offset 2'),
        ("€ <script>", 'Unsupported start tag "script" at byte offset 4'),  # byte, not character
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<b", "Unclosed start tag at byte offset 0"),
        ("<b>x</b", "Unclosed end tag at byte offset 4"),
        ('<a href="x', "Unclosed start tag at byte offset 0"),
        (
            "<b x>y</b>",
            'Expected equal sign in declaration of an attribute of the tag "b" at byte offset 0',
        ),
        ('<span class="x">y</span>', 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        ("<a href=x!>y</a>", "Unexpected end of name token at byte offset 8"),
    ],
)
def test_malformed_html_gets_telegrams_can_t_parse_entities(
    http: httpx.Client, text: str, reason: str
) -> None:
    response = send(http, text=text)
    assert response.status_code == 400
    assert response.json()["description"] == f"Bad Request: can't parse entities: {reason}"


@pytest.mark.parametrize(
    ("text", "plain", "entities"),
    [
        ("a &amp; b &lt;3 &#x1F680; &#39;", "a & b <3 🚀 '", []),
        ("AT&T &nbsp;", "AT&T &nbsp;", []),  # Telegram keeps what is not an entity
        (
            '🚀 <b>bold <i>both</i></b> <a href="https://x.io/?a=1&amp;b=2">link</a>',
            "🚀 bold both link",
            [
                {"type": "bold", "offset": 3, "length": 9},
                {"type": "italic", "offset": 8, "length": 4},
                {"type": "text_link", "offset": 13, "length": 4, "url": "https://x.io/?a=1&b=2"},
            ],
        ),
        (
            '<pre><code class="language-python">x</code></pre>',
            "x",
            [
                {"type": "code", "offset": 0, "length": 1, "language": "python"},
                {"type": "pre", "offset": 0, "length": 1},
            ],
        ),
        (
            "<blockquote expandable>q</blockquote>",
            "q",
            [{"type": "expandable_blockquote", "offset": 0, "length": 1}],
        ),
    ],
)
def test_parses_entities_with_utf16_offsets(
    text: str, plain: str, entities: list[dict[str, object]]
) -> None:
    assert parse_html(text) == (plain, entities)


def test_the_text_limit_is_4096_utf16_units_after_parsing(
    http: httpx.Client, clock: FakeClock
) -> None:
    assert send(http, text="<b>" + "x" * 4096 + "</b>").status_code == 200
    clock.advance(5)
    too_long = send(http, text="🚀" * 2049)  # 2049 characters, 4098 units
    assert too_long.status_code == 400
    assert too_long.json()["description"] == "Bad Request: message is too long"


def test_a_second_message_within_a_second_is_answered_429(
    http: httpx.Client, standin: TelegramStandIn, clock: FakeClock
) -> None:
    assert send(http, text="one").status_code == 200
    clock.advance(0.5)
    flooded = send(http, text="two")
    assert flooded.status_code == 429
    assert flooded.json() == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1},
    }
    assert standin.violations == [("-100", "per-chat interval")]
    clock.advance(0.5)
    assert send(http, text="two").status_code == 200


def test_twenty_first_group_message_in_a_minute_is_answered_429(
    http: httpx.Client, clock: FakeClock
) -> None:
    for _ in range(20):
        assert send(http, text="x").status_code == 200
        clock.advance(1.0)
    flooded = send(http, text="x")
    assert flooded.status_code == 429
    assert flooded.json()["parameters"]["retry_after"] == 40  # the first send leaves at +60 s


def test_sent_message_result_has_the_shape_of_a_recorded_message(http: httpx.Client) -> None:
    body = send(http, text="<b>hi</b>").json()
    assert body["ok"] is True
    message = body["result"]
    assert set(message) == {"message_id", "from", "chat", "date", "text", "entities"}
    assert message["from"]["username"] == "mybot" and message["from"]["is_bot"] is True
    assert message["chat"] == {
        "id": -100,
        "title": "Signalworks stand-in group",
        "type": "supergroup",
    }
