"""validations and tokens on both engines: idempotent writes, a channel's realised outcomes
(from signal_outcomes) compared at the stored precision, and what became of each validated call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from ml.signals.outcome_rows import OUTCOME_COLUMNS
from resources.publishers.outbox import Outbox
from resources.warehouse.engine import make_engine
from resources.warehouse.outcomes import upsert_outcomes
from resources.warehouse.social import SocialStore
from resources.warehouse.validations import ValidationStore, stored_instant
from streaming.events import Event

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)
MINT = "EKpQGSJtjMFqKZ9KQanSqYXRcF8fBopzLHYxdM65zcjm"


def _row(event_id: int, *, channel: str = "alpha", validated_at: datetime = T0, reaction: float | None = 4.0,
         score: float = 0.7) -> dict:
    return {"event_id": event_id, "chain": "solana", "address": MINT, "base_token": f"solana:{MINT}",
            "symbol": "GEM", "source": "telegram", "channel": channel, "author": "a", "called_at": T0,
            "window_s": 60.0, "validated_at": validated_at, "reaction_pct": reaction, "score": score,
            "threshold": 0.6, "passed": score >= 0.6, "factors": "{}"}


def test_a_call_is_recorded_once_and_its_token_remembered_once(warehouse_url: str) -> None:
    store = ValidationStore(make_engine(warehouse_url))
    assert not store.is_validated(1, "solana", MINT)
    store.record(_row(1, score=0.7))
    store.record(_row(1, score=0.1))  # a second run of the same call keeps the first row
    assert store.is_validated(1, "solana", MINT) and not store.is_validated(2, "solana", MINT)
    for symbol in ("GEM", "OTHER"):
        store.remember_token(chain="solana", address=MINT, base_token=f"solana:{MINT}", symbol=symbol, first_seen=T0)


def _outcome(signal_id: int, publisher: str, *, published: datetime, entry: datetime, r15: float | None,
             channel: str | None = "alpha", kind: str = "social") -> dict:
    row = dict.fromkeys(OUTCOME_COLUMNS)
    row.update(signal_id=signal_id, publisher=publisher, kind=kind, strategy=kind, exchange="solana", symbol="GEM",
               source="telegram", channel=channel, direction="long", published_at=published, entry_ts=entry,
               return_15m=r15, missing=0, settled=r15 is not None)
    return row


def test_channel_outcomes_are_the_realised_returns_of_published_calls(warehouse_url: str) -> None:
    engine = make_engine(warehouse_url)
    store = ValidationStore(engine)
    entry = T0 + timedelta(microseconds=700)  # SQLite keeps 12:00:00.000, PostgreSQL .000700
    upsert_outcomes(engine, pl.DataFrame([
        _outcome(1, "late", published=T0 + timedelta(seconds=50), entry=entry + timedelta(minutes=1), r15=-0.2),
        _outcome(1, "early", published=T0 - timedelta(seconds=10), entry=entry, r15=0.04),  # counts, once
        _outcome(2, "early", published=T0, entry=entry, r15=None),  # +15 min not known: no outcome
        _outcome(3, "early", published=T0, entry=entry, r15=0.5, channel="beta"),
        _outcome(4, "chat", published=T0, entry=entry, r15=0.5, kind="market", channel=None),
    ]), now=T0)
    known = entry + timedelta(minutes=16)  # the end of the minute of its +15 min snapshot
    assert store.channel_outcomes("alpha", known) == []  # not before it is known, on either engine
    (outcome,) = store.channel_outcomes("alpha", known + timedelta(milliseconds=1))
    assert (outcome.channel, outcome.return_pct) == ("alpha", pytest.approx(4.0))
    assert stored_instant(outcome.ts) == stored_instant(known)  # entry_ts as each engine keeps it, + 16 min
    assert [o.return_pct for o in store.channel_outcomes("beta", T0 + timedelta(days=1))] == [50.0]
    assert store.channel_outcomes("gamma", T0 + timedelta(days=1)) == []
    assert stored_instant(entry) == T0


def test_calls_of_events_joins_each_call_to_its_event_key_and_deliveries(warehouse_url: str) -> None:
    engine = make_engine(warehouse_url)
    events = SocialStore(engine).append([
        Event.from_message(source="telegram", channel=channel, message_id="7", author="a",
                           text=f"gem {MINT} pump.fun/coin/{MINT}", ts=T0).to_record() for channel in ("alpha", "beta")])
    store = ValidationStore(engine)
    for event_id, channel in zip(events, ("alpha", "beta"), strict=True):
        store.record(_row(event_id, channel=channel))
    outbox = Outbox(engine)
    outbox.enqueue(kind="social", origin=f"call:{events[0]}:solana:{MINT}", base_token=f"solana:{MINT}",
                   confidence=0.7, payload={}, now=T0)
    (signal,) = outbox.pending()
    outbox.skip(signal, "console", "routing", now=T0)
    records = store.calls_of_events({("telegram", "alpha", "7"), ("telegram", "beta", "7"), ("telegram", "gamma", "7")})
    assert [(r.key, r.row["event_id"]) for r in records] == [(("telegram", "alpha", "7"), events[0]),
                                                             (("telegram", "beta", "7"), events[1])]
    assert records[0].deliveries == {"console": ("skipped", "routing")} and records[1].deliveries == {}
    assert store.calls_of_events({("telegram", "beta", "8")}) == []
