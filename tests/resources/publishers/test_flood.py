"""FloodGate against a fake clock: every limit, penalties, thread safety, and a property test
that no schedule of sends ever breaks a limit while no send waits longer than it must."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resources.publishers.flood import ChatKind, FloodGate, SendWindowClosedError
from tests.resources.publishers.fake_clock import FakeClock

EPS = 1e-9  # float slack when checking window arithmetic


def make_gate(clock: FakeClock, **limits: float) -> FloodGate:
    return FloodGate(clock=clock, sleep=clock.sleep, **limits)  # type: ignore[arg-type]


def test_first_send_goes_at_once_and_same_chat_waits_one_second() -> None:
    clock = FakeClock()
    gate = make_gate(clock)
    assert gate.wait(-100, "group") == 0.0
    assert gate.time_until_allowed(-100) == pytest.approx(1.0)
    assert gate.wait(-100, "group") == pytest.approx(1.0)
    assert clock.now == pytest.approx(1001.0)
    assert gate.wait(-200, "group") == 0.0  # another chat is not held back


def test_waits_only_the_remainder_of_the_interval() -> None:
    clock = FakeClock()
    gate = make_gate(clock)
    gate.wait(1, "private")
    clock.advance(0.7)
    assert gate.wait(1, "private") == pytest.approx(0.3)


def test_chat_ids_as_int_and_str_are_one_chat() -> None:
    clock = FakeClock()
    gate = make_gate(clock)
    gate.wait(-100123, "group")
    assert gate.time_until_allowed("-100123") == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("kind", "limited"), [("group", True), ("channel", True), ("private", False)]
)
def test_twenty_per_minute_applies_to_groups_and_channels_only(
    kind: ChatKind, limited: bool
) -> None:
    clock = FakeClock()
    gate = make_gate(clock)
    for _ in range(20):
        gate.wait("@chat", kind)
    assert clock.now == pytest.approx(1019.0)  # one per second so far
    gate.wait("@chat", kind)
    # the 21st send to a group waits until the 1st leaves the 60 s window
    assert clock.now == pytest.approx(1060.0 if limited else 1020.0)


def test_thirty_per_second_overall() -> None:
    clock = FakeClock()
    gate = make_gate(clock)
    for chat in range(30):
        assert gate.wait(chat, "private") == 0.0
    assert gate.time_until_allowed(99, "private") == pytest.approx(1.0)
    assert gate.wait(99, "private") == pytest.approx(1.0)


def test_penalty_holds_one_chat_and_a_shorter_one_does_not_shorten_it() -> None:
    clock = FakeClock()
    gate = make_gate(clock)
    gate.penalise(-100, 30)
    gate.penalise(-100, 5)
    assert gate.time_until_allowed(-100) == pytest.approx(30.0)
    assert gate.wait(-200) == 0.0
    assert gate.wait(-100) == pytest.approx(30.0)


def test_global_penalty_holds_every_chat() -> None:
    clock = FakeClock()
    gate = make_gate(clock)
    gate.penalise(None, 12)
    assert gate.wait(1, "private") == pytest.approx(12.0)
    assert gate.wait(2, "group") == 0.0


@pytest.mark.parametrize(
    "limits",
    [
        {"per_chat_interval_s": -1.0},
        {"per_chat_interval_s": float("nan")},
        {"group_per_minute": 0},
        {"global_per_second": 0},
    ],
)
def test_rejects_nonsense_limits(limits: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        FloodGate(**limits)  # type: ignore[arg-type]


@pytest.mark.parametrize("retry_after", [-1.0, float("inf"), float("nan")])
def test_rejects_nonsense_penalties(retry_after: float) -> None:
    with pytest.raises(ValueError):
        FloodGate().penalise(1, retry_after)


# -- properties --------------------------------------------------------------------------------

CHATS: list[tuple[int | str, ChatKind]] = [
    (-1001, "group"),
    (-1002, "group"),
    ("@signals", "channel"),
    (42, "private"),
    (43, "private"),
]


@dataclass
class History:
    """Everything that happened, for the brute-force checks."""

    interval: float
    group_limit: int
    global_limit: int
    sends: list[tuple[float, int]] = field(default_factory=list)  # (time, chat index)
    pauses: list[tuple[int | None, float, float]] = field(default_factory=list)  # (chat, from, to)

    def violation(self, t: float, chat: int) -> str | None:
        """Which limit a send of ``chat`` at ``t`` would break, given the sends so far."""
        mine = [s for s, c in self.sends if c == chat]
        if mine and t - mine[-1] < self.interval - EPS:
            return "per-chat interval"
        if (
            CHATS[chat][1] != "private"
            and sum(1 for s in mine if s > t - 60.0 + EPS) >= self.group_limit
        ):
            return "group per minute"
        if sum(1 for s, _ in self.sends if s > t - 1.0 + EPS) >= self.global_limit:
            return "global per second"
        for who, start, end in self.pauses:
            if who in (None, chat) and start <= t < end - EPS:
                return "penalty"
        return None


_OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("send"),
            st.integers(0, len(CHATS) - 1),
            st.sampled_from([0.0, 0.0, 0.01, 0.3, 1.0, 2.5, 61.0]),
        ),
        st.tuples(
            st.just("penalise"),
            st.sampled_from([None, 0, 1, 2, 3]),
            st.sampled_from([0.5, 3.0, 40.0]),
        ),
    ),
    max_size=90,
)


@settings(max_examples=200, deadline=None)
@given(
    ops=_OPS,
    interval=st.sampled_from([0.0, 0.5, 1.0]),
    group_limit=st.sampled_from([1, 3, 20]),
    global_limit=st.sampled_from([2, 5, 30]),
)
def test_no_schedule_breaks_a_limit_and_no_send_waits_longer_than_needed(
    ops: list[tuple[str, int | None, float]], interval: float, group_limit: int, global_limit: int
) -> None:
    clock = FakeClock()
    gate = make_gate(
        clock,
        per_chat_interval_s=interval,
        group_per_minute=group_limit,
        global_per_second=global_limit,
    )
    history = History(interval, group_limit, global_limit)
    for op, chat, amount in ops:
        if op == "penalise":
            gate.penalise(None if chat is None else CHATS[chat][0], amount)
            history.pauses.append((chat, clock.now, clock.now + amount))
            continue
        assert chat is not None
        clock.advance(amount)
        asked = clock.now
        waited = gate.wait(*CHATS[chat])
        sent = clock.now
        assert waited == pytest.approx(sent - asked, abs=1e-6)
        assert history.violation(sent, chat) is None
        if sent > asked:  # it waited: a moment earlier the send would have broken a limit
            assert history.violation(sent - 1e-5, chat) is not None
        history.sends.append((sent, chat))


def test_threads_sharing_a_gate_never_break_a_limit() -> None:
    clock = FakeClock()
    gate = make_gate(clock, group_per_minute=5, global_per_second=4)
    history = History(1.0, 5, 4)
    lock = threading.Lock()

    def worker(worker_id: int) -> None:
        for n in range(12):
            chat = (worker_id + n) % len(CHATS)
            gate.wait(*CHATS[chat])
            with lock:
                history.sends.append((clock.local.last, chat))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(history.sends) == 72
    replay = History(1.0, 5, 4)
    for t, chat in sorted(history.sends):
        assert replay.violation(t, chat) is None, (t, chat)
        replay.sends.append((t, chat))


@pytest.mark.parametrize(("deadline_in_s", "goes"), [(0.5, False), (1.0, True), (5.0, True)])
def test_a_send_past_its_deadline_is_refused_and_counts_nothing(deadline_in_s: float, goes: bool) -> None:
    clock = FakeClock()
    gate = make_gate(clock)
    gate.wait(-100, "group")
    if goes:
        assert gate.wait(-100, "group", deadline=gate.now() + deadline_in_s) == pytest.approx(1.0)
        return
    with pytest.raises(SendWindowClosedError) as refused:
        gate.wait(-100, "group", deadline=gate.now() + deadline_in_s)
    assert refused.value.ready_in_s == pytest.approx(1.0) and refused.value.deadline_in_s == pytest.approx(0.5)
    assert clock.sleeps == [] and clock.now == 1000.0  # refused at once, without sleeping
    assert gate.time_until_allowed(-100) == pytest.approx(1.0)  # the refused send left no trace


def test_a_penalty_past_the_deadline_refuses_the_send() -> None:
    clock = FakeClock()
    gate = make_gate(clock)
    gate.penalise(-100, 30.0)
    with pytest.raises(SendWindowClosedError, match=r"in 30\.0s, after its deadline in 10\.0s"):
        gate.wait(-100, "group", deadline=gate.now() + 10.0)
    assert gate.wait(-200, "group", deadline=gate.now()) == 0.0  # another chat still goes
