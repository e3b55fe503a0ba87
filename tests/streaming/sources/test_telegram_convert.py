"""Telethon messages become Events: real Telethon objects, built as Telethon's update loop builds them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from telethon import types

from streaming.sources.telegram import describe_media, message_to_event
from streaming.sources.telegram_convert import text_with_hidden_links
from tests.streaming.sources.telethon_objects import (
    TS,
    broadcast,
    channel_message,
    channel_update,
    document,
    megagroup,
    new_message_event,
    offline_client,
    photo,
    user,
)

MINT = "7GCihgDB8fe6KNjn2MYtkzZcRjQy3t9GHdC8uHYmW2hr"
BASE_TOKEN = "0xaF2E4F3E10B8d06ecEcABBB7F8A7022c6EAb7B07"
CALLS = broadcast(1_506_000_321, "Degen Calls", "degencalls", signatures=True)
PRIVATE = broadcast(2_011_223_344, "Inner Circle (private)")
GROUP = megagroup(1_733_000_999, "Alpha Chat", "alphachat")


def event_for(message: types.Message, *, users: list[types.User] = (), chats: list[types.Channel] = ()):  # type: ignore[assignment]
    """The NewMessage event Telethon builds for ``message`` (entities attached, client set)."""
    built = new_message_event(offline_client(), channel_update(message, users=list(users), chats=list(chats)))
    assert built is not None
    return built


def test_public_channel_post_with_hidden_link_views_and_signature() -> None:
    text = f"🚀 NEW CALL\nCA: {MINT}\nChart"
    chart = f"https://dexscreener.com/solana/{MINT}"
    message = channel_message(
        CALLS, 4521, text,
        entities=[types.MessageEntityBold(offset=3, length=8), types.MessageEntityTextUrl(offset=len("🚀 NEW CALL\nCA: ") + 1 + len(MINT) + 1, length=5, url=chart)],
        views=18234, forwards=57, post_author="Max", replies=types.MessageReplies(replies=4, replies_pts=9),
    )
    event = event_for(message, chats=[CALLS])

    converted = message_to_event(event.message, channel_key="@degencalls", weight=0.8)

    assert converted is not None
    assert (converted.source, converted.channel, converted.message_id) == ("telegram", "@degencalls", "4521")
    assert converted.author == "Max"
    assert converted.text == f"{text} {chart}"
    assert converted.ts == TS and converted.ts.tzinfo == UTC
    assert converted.attachments == ()
    assert [t.address for t in converted.tokens] == [MINT]
    assert converted.raw["channel_weight"] == 0.8
    assert converted.raw["chat_id"] == -1001506000321
    assert converted.raw["chat_title"] == "Degen Calls" and converted.raw["chat_username"] == "degencalls"
    assert (converted.raw["views"], converted.raw["forwards"], converted.raw["replies"]) == (18234, 57, 4)
    assert converted.raw["links"] == [chart]
    assert converted.raw["post"] is True


def test_photo_caption_is_the_text_and_the_photo_an_attachment() -> None:
    message = channel_message(PRIVATE, 88, f"ape this {BASE_TOKEN} on base", media=photo(5_312_000_000_000_000_001), grouped_id=13_798_000_000_000_000_123)
    converted = message_to_event(event_for(message, chats=[PRIVATE]).message, channel_key="-1002011223344", weight=1.0)

    assert converted is not None
    assert converted.channel == "-1002011223344"
    assert converted.author == ""  # unsigned channel post
    assert converted.text == f"ape this {BASE_TOKEN} on base"
    assert converted.attachments == ("photo:5312000000000000001",)
    assert converted.raw["grouped_id"] == "13798000000000000123"  # int64 kept exact as a string
    assert [t.chain for t in converted.tokens] == ["base"]


def test_document_caption_names_mime_type_and_file() -> None:
    message = channel_message(CALLS, 90, "whitepaper", media=document(4_410_001, "application/pdf", "wp.pdf"))
    converted = message_to_event(event_for(message, chats=[CALLS]).message, channel_key="@degencalls", weight=0.5)

    assert converted is not None
    assert converted.attachments == ("document:application/pdf:4410001",)
    assert converted.raw["file_name"] == "wp.pdf"


def test_media_without_caption_is_an_event_hashed_by_its_attachment() -> None:
    one = message_to_event(event_for(channel_message(CALLS, 91, "", media=photo(1)), chats=[CALLS]).message, channel_key="@degencalls", weight=1.0)
    other = message_to_event(event_for(channel_message(CALLS, 92, "", media=photo(2)), chats=[CALLS]).message, channel_key="@degencalls", weight=1.0)

    assert one is not None and other is not None
    assert one.text == "" and one.attachments == ("photo:1",)
    assert one.content_md5 != other.content_md5


def test_forwarded_reply_in_a_group_keeps_sender_and_forward_header() -> None:
    trader = user(5_550_001, "whale_watch")
    message = channel_message(
        GROUP, 3021, f"CA {MINT}", from_id=types.PeerUser(trader.id),
        fwd_from=types.MessageFwdHeader(date=TS - timedelta(minutes=3), from_id=types.PeerChannel(CALLS.id), channel_post=4521, post_author="Max"),
        reply_to=types.MessageReplyHeader(reply_to_msg_id=3019),
    )
    converted = message_to_event(event_for(message, users=[trader], chats=[GROUP, CALLS]).message, channel_key="@alphachat", weight=0.3)

    assert converted is not None
    assert converted.author == "whale_watch"
    assert converted.raw["sender_id"] == trader.id and converted.raw["post"] is False
    assert converted.raw["reply_to"] == 3019
    assert converted.raw["fwd_from"] == {
        "from_id": -1001506000321, "from_name": None, "channel_post": 4521, "post_author": "Max",
        "date": (TS - timedelta(minutes=3)).isoformat(),
    }


def test_sender_without_username_is_its_id() -> None:
    anonymous = user(5_550_002, None)
    message = channel_message(GROUP, 3022, "gm", from_id=types.PeerUser(anonymous.id))
    converted = message_to_event(event_for(message, users=[anonymous], chats=[GROUP]).message, channel_key="@alphachat", weight=1.0)
    assert converted is not None and converted.author == "5550002"


def test_date_is_converted_to_utc() -> None:
    local = datetime(2025, 11, 6, 9, 35, 12, tzinfo=timezone(timedelta(hours=2)))
    converted = message_to_event(channel_message(CALLS, 93, "hi", date=local), channel_key="@degencalls", weight=1.0)
    assert converted is not None and converted.ts == TS and converted.ts.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "message",
    [
        types.MessageService(id=5, peer_id=types.PeerChannel(CALLS.id), date=TS, action=types.MessageActionPinMessage()),
        channel_message(CALLS, 6, "   "),
        channel_message(CALLS, 7, "", media=types.MessageMediaEmpty()),
    ],
    ids=["service message", "blank text", "empty media"],
)
def test_messages_without_content_are_skipped(message: types.TypeMessage) -> None:
    assert message_to_event(message, channel_key="@degencalls", weight=1.0) is None


def test_service_messages_never_reach_the_handler() -> None:
    service = types.MessageService(id=5, peer_id=types.PeerChannel(CALLS.id), date=TS, action=types.MessageActionPinMessage())
    assert new_message_event(offline_client(), channel_update(service, chats=[CALLS])) is None


def test_hidden_link_offsets_count_utf16_units_after_astral_emoji() -> None:
    # "🚀" is 2 UTF-16 units: the link label "chart" starts at offset 3, not 2.
    text, links = text_with_hidden_links("🚀 chart now", [types.MessageEntityTextUrl(offset=3, length=5, url="https://t.co/x")])
    assert (text, links) == ("🚀 chart https://t.co/x now", ["https://t.co/x"])


def test_visible_links_are_listed_and_not_repeated() -> None:
    shown = "https://pump.fun/coin/abc"
    text, links = text_with_hidden_links(
        f"see {shown}", [types.MessageEntityUrl(offset=4, length=len(shown)), types.MessageEntityTextUrl(offset=4, length=len(shown), url=shown)]
    )
    assert text == f"see {shown}" and links == [shown, shown]


@pytest.mark.parametrize(
    ("media", "expected"),
    [
        (None, ()),
        (types.MessageMediaWebPage(webpage=types.WebPageEmpty(id=1)), ()),
        (photo(42), ("photo:42",)),
        (types.MessageMediaPhoto(photo=types.PhotoEmpty(id=1)), ("photo",)),
        (document(43, "video/mp4", "clip.mp4"), ("document:video/mp4:43",)),
        (types.MessageMediaGeo(geo=types.GeoPointEmpty()), ("geo",)),
        (types.MessageMediaDice(value=6, emoticon="🎲"), ("dice",)),
    ],
)
def test_describe_media(media: object, expected: tuple[str, ...]) -> None:
    assert describe_media(media) == expected
