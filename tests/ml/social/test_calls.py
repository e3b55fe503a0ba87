"""Calls, the order a run handles them in, which cached snapshot is an arrival snapshot, and the
verdict of a scored call (pure)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.social.base_token import base_token_key
from ml.social.calls import (
    Call,
    arrival_is_usable,
    calls_of,
    context_span,
    mention_key,
    on_chain,
    validation_timeline,
)
from ml.social.validation import REVIEW_MARGIN, verdict_of

from .builders import T0, at, make_evm, make_mint


@dataclass(frozen=True)
class Event:
    event_id: int
    ts: datetime
    tokens: list[dict[str, Any]] = field(default_factory=list)
    source: str = "replay"
    channel: str = "alpha"
    author: str | None = None
    text: str = ""


def _call(event_id: int, seconds: float, window_s: float) -> Call:
    address = make_mint(event_id)
    return Call(Event(event_id, at(seconds)), "solana", address, base_token_key("solana", address), window_s, 1.0)


def test_calls_of_gives_one_call_per_token_with_its_channels_window_and_weight() -> None:
    mint, evm = make_mint(1), make_evm(2)
    events = [Event(1, at(0), [{"chain": "solana", "address": mint}, {"chain": "evm", "address": evm}], channel="a"),
              Event(2, at(5), [], channel="b"), Event(3, at(9), [{"chain": "solana", "address": mint}], channel="b")]
    windows = {"a": (60.0, 1.0), "b": (30.0, 0.5)}
    calls = calls_of(events, lambda source, channel: windows[channel])
    assert [(c.event.event_id, c.chain, c.window_s, c.channel_weight) for c in calls] == [
        (1, "solana", 60.0, 1.0), (1, "evm", 60.0, 1.0), (3, "solana", 30.0, 0.5)]
    assert calls[0].closes_at == at(60) and calls[2].closes_at == at(39)
    resolved = on_chain(calls[1], "base")
    assert resolved.chain == "base" and resolved.base_token == base_token_key("base", evm)
    assert mention_key({"chain": "evm", "address": evm.upper().replace("0X", "0x")}, resolved) == resolved.base_token


def test_the_timeline_meets_arrivals_and_closes_in_time_order() -> None:
    calls = [_call(1, 0, 60), _call(2, 30, 60), _call(3, 60, 0), _call(4, 200, 10)]
    steps = [(s.kind, s.index, (s.at - at(0)).total_seconds()) for s in validation_timeline(calls)]
    assert steps == [("arrival", 0, 0), ("arrival", 1, 30), ("arrival", 2, 60), ("close", 0, 60), ("close", 2, 60),
                     ("close", 1, 90), ("arrival", 3, 200), ("close", 3, 210)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3_600_000), st.sampled_from([0, 1, 5, 60, 300])), min_size=1, max_size=30))
def test_every_call_closes_after_it_arrives_and_time_never_goes_back(spec: list[tuple[int, int]]) -> None:
    calls = [_call(i, ms / 1000, window) for i, (ms, window) in enumerate(spec)]
    steps = validation_timeline(calls)
    assert [s.at for s in steps] == sorted(s.at for s in steps)
    assert sorted((s.index, s.kind) for s in steps) == sorted(
        [(i, "arrival") for i in range(len(calls))] + [(i, "close") for i in range(len(calls))])
    position = {(s.index, s.kind): n for n, s in enumerate(steps)}
    assert all(position[(i, "arrival")] < position[(i, "close")] for i in range(len(calls)))
    shuffled = calls[:]
    random.Random(len(calls)).shuffle(shuffled)  # the order of the input only breaks ties
    assert [(s.at, s.kind) for s in validation_timeline(shuffled)] == [(s.at, s.kind) for s in steps]


@pytest.mark.parametrize(("fetched_s", "now_s", "usable"), [
    (-15, 0, True), (-15.001, 0, False), (0, 0, True), (3, 10, True), (10, 10, True),
    (10.001, 10, False),  # fetched after the run's present: a later echo's snapshot, not this call's
    (120, 60, False),
])
def test_a_cached_snapshot_is_an_arrival_snapshot_only_from_just_before_the_call_to_now(
        fetched_s: float, now_s: float, usable: bool) -> None:
    assert arrival_is_usable(at(fetched_s), T0, at(now_s)) is usable


def test_the_context_span_looks_one_window_back_and_nothing_past_the_close() -> None:
    assert context_span(_call(1, 100, 60), 120) == (at(-20), at(160))
    assert context_span(_call(1, 100, 300), 120) == (at(-200), at(400))


@pytest.mark.parametrize(("kwargs", "outcome", "reason"), [
    ({"passed": True, "score": 0.61, "rejections": []}, "passed", "score 0.61 >= 0.60"),
    ({"passed": False, "score": 0.55, "rejections": []}, "review", "score 0.55, within 0.10 under 0.60"),
    ({"passed": False, "score": 0.60 - REVIEW_MARGIN, "rejections": []}, "review", "score 0.50, within 0.10 under 0.60"),
    ({"passed": False, "score": 0.49, "rejections": []}, "rejected", "score 0.49 < 0.60"),
    ({"passed": False, "score": 0.9, "rejections": ["low_liquidity"], "liquidity_usd": 1234.4}, "rejected",
     "liquidity $1,234 under $5,000"),
    ({"passed": False, "score": 0.55, "rejections": ["not_listed", "spam"]}, "rejected",
     "not listed on DexScreener, spam"),
])
def test_verdicts_say_why(kwargs: dict, outcome: str, reason: str) -> None:
    verdict = verdict_of(threshold=0.6, **kwargs)
    assert (verdict.outcome, verdict.reason) == (outcome, reason)


def test_timeline_steps_are_at_the_calls_own_instants() -> None:
    call = _call(7, 12.345, 60)
    arrival, close = validation_timeline([call])
    assert (arrival.at, close.at) == (call.event.ts, call.event.ts + timedelta(seconds=60))


@dataclass(frozen=True)
class Pair:
    created_at: datetime
    fetched_at: datetime
    price_usd: float | None = 1e-5
    liquidity_usd: float | None = 40_000.0
    volume_24h_usd: float | None = 90_000.0
    market_cap_usd: float | None = 80_000.0
    fdv_usd: float | None = 80_000.0
    dex: str = "raydium"
    pair_address: str = "pair"
    base_symbol: str = "GEM"

    def age(self, at: datetime | None = None) -> float | None:
        return ((at or self.fetched_at) - self.created_at).total_seconds()


def test_a_pool_that_took_over_inside_the_window_counts_as_brand_new_not_as_an_error() -> None:
    from ml.social.scoring import ScoringParams
    from ml.social.validation import SpamRules, validate_call

    call = _call(1, 0, 60)
    arrival = Pair(created_at=at(-7200), fetched_at=at(0))
    closing = Pair(created_at=at(30), fetched_at=at(60), price_usd=1.2e-5, pair_address="new")
    result = validate_call(call, arrival, closing, nearby=[call.event], past=[],
                           spam=SpamRules((), 120.0, 3, 0.9), params=ScoringParams(), now=at(60))
    assert result.row["pair_age_h"] == 0.0 and result.row["pair_address"] == "new"
    assert result.row["reaction_pct"] == pytest.approx(20.0) and result.row["validated_at"] == at(60)
