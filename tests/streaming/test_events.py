"""The Event model and the content digest used to de-duplicate across platforms."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.social.text import content_md5, normalise_content
from streaming.events import SOURCES, Event

PUMP = "GMpuhpZtgguWDJLqhYVS4epZGXjDRiboGSdzAqWupump"
BASE_TOKEN = "0xaF2E4F3E10B8d06ecEcABBB7F8A7022c6EAb7B07"
TS = datetime(2025, 11, 6, 7, 35, tzinfo=UTC)

TELEGRAM = (
    f"🚀 NEW CALL on #Base\nCA: {BASE_TOKEN}\n"
    f"Chart: https://dexscreener.com/base/{BASE_TOKEN.lower()}?utm_source=tg&utm_medium=bot"
)
SAME_CALL_ELSEWHERE = {
    "discord markdown": (
        f"🚀 **NEW CALL** on #Base\n> CA: `{BASE_TOKEN}`\n"
        f"Chart: <https://dexscreener.com/base/{BASE_TOKEN.lower()}>"
    ),
    "x repost": (
        f"🚀 new call on #BASE  CA: {BASE_TOKEN.lower()}  "
        f"chart: www.dexscreener.com/base/{BASE_TOKEN.lower()}/"
    ),
    "whitespace and invisible characters": (
        f"  🚀\u200b NEW   CALL on #Base\r\n\r\nCA:\t{BASE_TOKEN}\n"
        f"Chart: http://dexscreener.com/base/{BASE_TOKEN.lower()}?fbclid=abc\n\n"
    ),
    "full-width and emoji variation selector": f"🚀\ufe0f NEW CALL on ＃Base CA: {BASE_TOKEN} Chart: https://dexscreener.com/base/{BASE_TOKEN.lower()}",
}


@pytest.mark.parametrize("variant", sorted(SAME_CALL_ELSEWHERE))
def test_the_same_call_has_the_same_md5_on_every_platform(variant: str) -> None:
    assert content_md5(SAME_CALL_ELSEWHERE[variant]) == content_md5(TELEGRAM)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (f"CA: {PUMP}", f"CA: {PUMP.lower()}"),  # base58 case is identity
        (f"CA: {PUMP}", f"CA: {PUMP[:-4]}PUMP"),
        ("buy at 0.5", "buy at 0.6"),
        ("LONG BTC", "SHORT BTC"),
        ("https://x.com/a?ref=1", "https://x.com/a?ref=2"),  # only tracking parameters go
    ],
)
def test_different_content_has_different_md5(a: str, b: str) -> None:
    assert content_md5(a) != content_md5(b)


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("  Hello\n\nWORLD  ", "hello world"),
        (f"CA: {PUMP}", f"ca: {PUMP}"),
        (f"CA: {BASE_TOKEN}", f"ca: {BASE_TOKEN.lower()}"),
        ("**bold** __under__ `code` ~~gone~~ ||spoiler||", "bold under code gone spoiler"),
        ("see <https://Example.com/Path?utm_source=x&id=7>", "see example.com/path?id=7"),
        ("https://www.example.com/", "example.com"),
        ("[chart](https://dexscreener.com/base)", "chart dexscreener.com/base"),
        ("Straße ＡＢＣ", "strasse abc"),
        ("a\u200bb\u00adc", "abc"),
        ("> quoted\n> twice", "quoted twice"),
    ],
)
def test_normalise_content(text: str, normalised: str) -> None:
    assert normalise_content(text) == normalised


@given(st.text(max_size=200))
@settings(max_examples=300, deadline=None, derandomize=True)
def test_normalisation_is_idempotent(text: str) -> None:
    once = normalise_content(text)
    assert normalise_content(once) == once


@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Z", "C")), min_size=1, max_size=12), min_size=1, max_size=8),
       st.lists(st.sampled_from((" ", "  ", "\n", "\t", "\r\n", " \n\n ", "\u00a0", "\u3000")), min_size=8, max_size=8))
@settings(max_examples=200, deadline=None, derandomize=True)
def test_whitespace_never_changes_the_md5(words: list[str], gaps: list[str]) -> None:
    spaced = "".join(word + gap for word, gap in zip(words, gaps, strict=False))
    assert content_md5(" ".join(words)) == content_md5("\n" + spaced)


def test_media_only_messages_hash_their_attachments() -> None:
    assert content_md5("", ["photo-a"]) != content_md5("", ["photo-b"])
    assert content_md5(" ", ["b", "a"]) == content_md5("", ["a", "b"])
    assert content_md5("same text", ["a"]) == content_md5("same text", ["b"])


def make(**changes: object) -> Event:
    fields: dict[str, object] = {
        "source": "telegram", "channel": "-1001234567890", "message_id": "477",
        "author": "rscibabat", "text": TELEGRAM, "ts": TS,
    }
    fields.update(changes)
    return Event.from_message(**fields)  # type: ignore[arg-type]


def test_from_message_extracts_tokens_and_digest() -> None:
    event = make()
    assert [(t.chain, t.address) for t in event.tokens] == [("base", BASE_TOKEN)]
    assert event.content_md5 == content_md5(TELEGRAM)
    assert event.key == ("telegram", "-1001234567890", "477")


def test_same_call_from_two_platforms_is_one_content() -> None:
    telegram = make()
    discord = make(source="discord", channel="727947198481956945", message_id="732582724170285086",
                   text=SAME_CALL_ELSEWHERE["discord markdown"])
    assert telegram.key != discord.key
    assert telegram.content_md5 == discord.content_md5
    assert telegram.tokens[0].key == discord.tokens[0].key


def test_ts_is_converted_to_utc() -> None:
    local = datetime(2025, 11, 6, 9, 35, tzinfo=timezone(timedelta(hours=2)))
    event = make(ts=local)
    assert event.ts == TS
    assert event.ts.tzinfo is UTC


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"ts": datetime(2025, 11, 6, 7, 35)}, ValueError),  # naive
        ({"source": "slack"}, ValueError),
        ({"message_id": 477}, TypeError),
        ({"text": None}, TypeError),
    ],
)
def test_invalid_events_are_rejected(changes: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        make(**changes)


def test_a_bad_digest_is_rejected() -> None:
    with pytest.raises(ValueError, match="content_md5"):
        Event(source="x", channel="c", message_id="1", author="a", text="t", ts=TS, content_md5="XYZ")


def test_events_are_frozen_and_raw_is_read_only() -> None:
    event = make(raw={"chat_type": "channel"})
    with pytest.raises(AttributeError):
        event.text = "changed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        event.raw["chat_type"] = "group"  # type: ignore[index]
    assert event == make(raw={"other": 1})  # raw is not part of equality
    assert hash(event) == hash(make())


def test_record_round_trip_through_json() -> None:
    event = make(attachments=("file-id-1",), raw={"entities": [{"type": "url", "offset": 0}]})
    record = json.loads(json.dumps(event.to_record()))
    assert Event.from_record(record) == event
    assert Event.from_record(record).raw == event.raw


def test_sources() -> None:
    assert {"telegram", "discord", "x", "replay"} == SOURCES


def test_pure_streaming_modules_import_no_dagster() -> None:
    """The extraction and event modules stay importable without the Dagster layers."""
    import subprocess
    import sys

    code = (
        "import sys, streaming.events, streaming.extract;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'dagster', 'orchestration', 'assets', 'sensors', 'resources'});"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
