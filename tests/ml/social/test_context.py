"""Context of a call: distinct channels/authors within the window, echoes, no look-ahead."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.social.context import Context, Mention, mention_context, mention_contexts

from .builders import T0, at

W = 120.0


def m(
    event_id: str, channel: str, seconds: float, token: str = "solana:AAA", author: str = ""
) -> Mention:
    return Mention(event_id=event_id, channel=channel, author=author, ts=at(seconds), token=token)


CALL = m("call", "alpha", 0, author="al")
CASES = {
    "alone": ([], Context(1, 1, 1, T0, None)),
    "the call itself in the list counts once": ([CALL], Context(1, 1, 1, T0, None)),
    "echoes in the window": (
        [m("1", "beta", 30, author="bo"), m("2", "gamma", 119), m("3", "beta", 60, author="bo")],
        Context(3, 3, 4, T0, None),
    ),
    "window end is inclusive": ([m("1", "beta", 120)], Context(2, 2, 2, T0, None)),
    "after the window: ignored": (
        [m("1", "beta", 120.001), m("2", "gamma", 3600)],
        Context(1, 1, 1, T0, None),
    ),
    "other tokens: ignored": ([m("1", "beta", 10, token="solana:BBB")], Context(1, 1, 1, T0, None)),
    "anonymous posts count as their channel": (
        [m("1", "beta", 10), m("2", "beta", 20)],
        Context(2, 2, 3, T0, None),
    ),
    "one author in two channels": (
        [m("1", "beta", 10, author="al"), m("2", "gamma", 20, author="al")],
        Context(3, 1, 3, T0, None),
    ),
    "an echo of an earlier call": (
        [m("0", "beta", -90), m("1", "gamma", -30), m("2", "delta", 30)],
        Context(2, 2, 2, at(-90), 0),
    ),
    "earlier than one window: not an echo, but first seen": (
        [m("old", "beta", -500), m("1", "gamma", -130)],
        Context(1, 1, 1, at(-500), None),
    ),
    "simultaneous post is not an echo": ([m("1", "beta", 0)], Context(2, 2, 2, T0, None)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_context_cases(name: str) -> None:
    mentions, expected = CASES[name]
    assert mention_context(CALL, mentions, window_s=W) == expected
    assert mention_contexts([CALL], mentions, window_s=W) == [expected]


def test_echo_index_points_into_the_given_list() -> None:
    mentions = [m("late", "x", 50), m("b", "y", -20), m("a", "z", -60)]
    assert mention_context(CALL, mentions, window_s=W).echo_of == 2


def test_negative_window_is_refused() -> None:
    with pytest.raises(ValueError):
        mention_context(CALL, [], window_s=-1)


def test_naive_timestamp_is_refused() -> None:
    with pytest.raises(ValueError):
        Mention("x", "a", "", T0.replace(tzinfo=None), "t")


def naive_context(call: Mention, mentions: list[Mention], window_s: float) -> Context:
    end = call.ts + timedelta(seconds=window_s)
    inside = {call.event_id: call}
    for mention in mentions:
        if mention.token == call.token and call.ts <= mention.ts <= end:
            inside.setdefault(mention.event_id, mention)
    earlier = [
        (mention.ts, i)
        for i, mention in enumerate(mentions)
        if mention.token == call.token
        and call.ts - timedelta(seconds=window_s) <= mention.ts < call.ts
        and mention.event_id != call.event_id
    ]
    seen = [
        mention.ts for mention in mentions if mention.token == call.token and mention.ts <= call.ts
    ]
    return Context(
        channels=len({x.channel for x in inside.values()}),
        authors=len({x.author or f"#{x.channel}" for x in inside.values()}),
        mentions=len(inside),
        first_seen=min([*seen, call.ts]),
        echo_of=min(earlier)[1] if earlier else None,
    )


_MENTION = st.builds(
    m,
    event_id=st.uuids().map(str),
    channel=st.sampled_from("abcd"),
    seconds=st.integers(-400, 400),
    token=st.sampled_from(["solana:AAA", "solana:BBB", "usdc"]),
    author=st.sampled_from(["", "u1", "u2"]),
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    mentions=st.lists(_MENTION, max_size=30),
    call_index=st.integers(0, 29),
    window_s=st.sampled_from([0.0, 60.0, 120.0, 300.0]),
    later=st.lists(_MENTION, max_size=5),
)
def test_context_equals_naive_loop_and_never_looks_ahead(
    mentions: list[Mention], call_index: int, window_s: float, later: list[Mention]
) -> None:
    call = mentions[call_index] if call_index < len(mentions) else CALL
    expected = naive_context(call, mentions, window_s)
    assert mention_context(call, mentions, window_s=window_s) == expected
    # Mentions posted after the window closes change nothing.
    end = call.ts + timedelta(seconds=window_s)
    future = [
        Mention(
            x.event_id + "-future",
            x.channel,
            x.author,
            end + timedelta(seconds=1 + abs(x.ts - T0).seconds),
            x.token,
        )
        for x in later
    ]
    assert mention_context(call, mentions + future, window_s=window_s) == expected
    assert mention_contexts([call, call], mentions + future, window_s=window_s) == [
        expected,
        expected,
    ]
