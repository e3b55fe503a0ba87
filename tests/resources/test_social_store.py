"""social_events on both engines: idempotent appends, id-ordered reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from resources.warehouse.engine import make_engine
from resources.warehouse.social import SocialStore
from streaming.events import Event

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)
MINT = "EKpQGSJtjMFqKZ9KQanSqYXRcF8fBopzLHYxdM65zcjm"


def _event(i: int, channel: str = "alpha", text: str | None = None) -> Event:
    return Event.from_message(source="telegram", channel=channel, message_id=str(i), author="caller",
                              text=text or f"call {i}: {MINT} pump.fun/coin/{MINT}", ts=T0 + timedelta(seconds=i))


def test_append_is_idempotent_and_ordered(warehouse_url: str) -> None:
    store = SocialStore(make_engine(warehouse_url))
    first = store.append([_event(i).to_record() for i in range(3)])
    assert first == sorted(first) and len(first) == 3
    again = store.append([_event(i).to_record() for i in range(5)])  # 0..2 replayed, 3..4 new
    assert len(again) == 2 and min(again) > max(first)
    stored = store.after(0)
    assert [e.message_id for e in stored] == ["0", "1", "2", "3", "4"]
    assert stored[0].tokens[0]["address"] == MINT and stored[0].ts == T0
    assert [e.message_id for e in store.after(first[-1])] == ["3", "4"]
    assert store.max_event_id() == again[-1] and store.count() == 5
    assert [e.event_id for e in store.by_ids([again[0], first[0]])] == [first[0], again[0]]


def test_the_same_message_id_in_another_channel_is_another_event(warehouse_url: str) -> None:
    store = SocialStore(make_engine(warehouse_url))
    store.append([_event(1, "alpha").to_record(), _event(1, "beta").to_record()])
    events = store.after(0)
    assert [e.channel for e in events] == ["alpha", "beta"]
    assert events[0].md5 == events[1].md5  # a cross-channel echo: same content, two events
