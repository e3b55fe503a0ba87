"""Supervisor: independent sources, exponential backoff with jitter, isolation, clean stop."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random

import pytest

from streaming.events import Event
from streaming.sources.base import Emit, Source, SourceFatalError, SourceHealth
from streaming.supervisor import BackoffPolicy, Supervisor
from tests.streaming.sidecar.builders import make_event, wait_for


class Ticker:
    """A healthy live source: one event every ``period`` seconds until cancelled."""

    def __init__(self, name: str, log: list[tuple[str, str]], period: float = 0.002) -> None:
        self.name = name
        self.log = log
        self.period = period
        self.closed = 0
        self.index = 0

    async def run(self, emit: Emit) -> None:
        try:
            while True:
                self.index += 1
                await emit(make_event(self.index, channel=self.name))
                await asyncio.sleep(self.period)
        finally:
            self.closed += 1


class Flaky:
    """Fails ``failures`` times (a disconnect), then emits ``events`` events and stays connected."""

    def __init__(self, log: list[tuple[str, str]], failures: int = 3, events: int = 5) -> None:
        self.name = "flaky"
        self.log = log
        self.failures = failures
        self.events = events
        self.runs = 0
        self.health = SourceHealth()  # its own health object: the supervisor must use it

    async def run(self, emit: Emit) -> None:
        self.runs += 1
        if self.runs <= self.failures:
            self.log.append(("fail", str(self.runs)))
            raise ConnectionError(f"disconnect {self.runs}")
        self.health.mark_connected()
        for index in range(self.events):
            await emit(make_event(index, channel="flaky"))
        await asyncio.Event().wait()


class Crasher:
    """Always crashes with a programming error."""

    name = "crasher"

    def __init__(self) -> None:
        self.runs = 0

    async def run(self, emit: Emit) -> None:
        self.runs += 1
        raise RuntimeError("boom")


def _collector() -> tuple[list[Event], list[tuple[str, str]], Emit]:
    events: list[Event] = []
    log: list[tuple[str, str]] = []

    async def emit(event: Event) -> None:
        events.append(event)
        log.append(("event", event.channel))

    return events, log, emit


def _scaled_sleep(recorded: list[float]):
    async def sleep(seconds: float) -> None:
        recorded.append(seconds)
        await asyncio.sleep(seconds / 200)  # real passage of (scaled) time: other sources run

    return sleep


def test_sources_satisfy_the_protocol() -> None:
    log: list[tuple[str, str]] = []
    assert isinstance(Ticker("t", log), Source)
    assert isinstance(Flaky(log), Source)


@pytest.mark.parametrize(
    ("jitter", "seed"), [(0.0, 1), (1.0, 1), (1.0, 2), (0.5, 3)],
)
def test_backoff_1_2_4_with_jitter_while_another_source_keeps_flowing(jitter: float, seed: int) -> None:
    events, log, emit = _collector()
    flaky, ticker = Flaky(log), Ticker("steady", log)
    slept: list[float] = []

    async def sleep_while_steady_emits(seconds: float) -> None:
        """The backoff wait: (scaled) time passes, during which the steady source keeps emitting."""
        slept.append(seconds)
        target = ticker.index + 3
        await wait_for(lambda: ticker.index >= target)

    supervisor = Supervisor([flaky, ticker], emit, backoff=BackoffPolicy(jitter=jitter),
                            sleep=sleep_while_steady_emits, rng=random.Random(seed), health_interval_s=0)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(supervisor.run(stop))
        await wait_for(lambda: sum(e.channel == "flaky" for e in events) == 5)
        stop.set()
        await task

    asyncio.run(scenario())
    delays = supervisor.delays["flaky"]
    assert delays == slept and len(delays) == 3
    for delay, nominal in zip(delays, (1.0, 2.0, 4.0), strict=True):
        assert nominal * (1 - jitter) <= delay <= nominal
    if jitter == 0:
        assert delays == [1.0, 2.0, 4.0]
    # the steady source emitted between every pair of failures
    failures = [i for i, entry in enumerate(log) if entry[0] == "fail"]
    for before, after in itertools.pairwise(failures):
        assert ("event", "steady") in log[before:after]
    health = supervisor.health["flaky"]
    assert health is flaky.health
    assert (health.errors, health.reconnects, health.events) == (3, 3, 5)
    assert "ConnectionError: disconnect 3" in (health.last_error or "")
    assert ticker.closed == 1, "the live source's finally ran exactly once on stop"
    assert supervisor.health["steady"].errors == 0


def test_backoff_is_capped_and_reproducible() -> None:
    policy = BackoffPolicy(initial_s=1, max_s=60, jitter=1.0)
    assert [policy.nominal(n) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    first = [policy.delay(n, random.Random(9)) for n in range(8)]
    assert first == [policy.delay(n, random.Random(9)) for n in range(8)]
    assert all(0 < d <= policy.nominal(n) for n, d in enumerate(first))
    with pytest.raises(ValueError):
        BackoffPolicy(jitter=1.5)


def test_default_jitter_differs_between_supervisors() -> None:
    """Sidecars restarted together (one process each) must not reconnect in lockstep: without an
    injected ``rng`` the jitter comes from the OS's entropy, not a seed every process shares."""

    def reconnect_delays() -> list[float]:
        events, log, emit = _collector()
        flaky = Flaky(log, failures=4, events=1)

        async def no_wait(_seconds: float) -> None:
            return None

        supervisor = Supervisor([flaky], emit, backoff=BackoffPolicy(jitter=1.0), sleep=no_wait,
                                health_interval_s=0)

        async def scenario() -> None:
            stop = asyncio.Event()
            task = asyncio.create_task(supervisor.run(stop))
            await wait_for(lambda: len(events) == 1)
            stop.set()
            await task

        asyncio.run(scenario())
        assert len(supervisor.delays["flaky"]) == 4
        return supervisor.delays["flaky"]

    assert reconnect_delays() != reconnect_delays()


def test_attempts_reset_after_a_healthy_period() -> None:
    now = [0.0]
    runs = [0]

    class LongThenFail:
        name = "long"

        async def run(self, emit: Emit) -> None:
            runs[0] += 1
            if runs[0] == 3:
                now[0] += 120.0  # this run stayed up for two minutes before dropping
            raise ConnectionError("drop")

    slept: list[float] = []
    _, _, emit = _collector()
    supervisor = Supervisor([LongThenFail()], emit, backoff=BackoffPolicy(jitter=0.0, reset_after_s=60),
                            sleep=_scaled_sleep(slept), clock=lambda: now[0], health_interval_s=0)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(supervisor.run(stop))
        await wait_for(lambda: len(slept) >= 5)
        stop.set()
        await task

    asyncio.run(scenario())
    assert slept[:5] == [1.0, 2.0, 1.0, 2.0, 4.0]


def test_a_crashing_or_fatal_source_never_stops_the_others(caplog: pytest.LogCaptureFixture) -> None:
    events, log, emit = _collector()

    class Fatal:
        name = "fatal"

        async def run(self, emit: Emit) -> None:
            raise SourceFatalError("set SIGNALWORKS_SOMETHING")

    crasher, ticker = Crasher(), Ticker("steady", log)
    supervisor = Supervisor([crasher, Fatal(), ticker], emit, backoff=BackoffPolicy(initial_s=0.01, max_s=0.02),
                            health_interval_s=0.05)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(supervisor.run(stop))
        await wait_for(lambda: crasher.runs >= 5 and len(events) >= 50)
        stop.set()
        await task

    with caplog.at_level(logging.INFO, logger="streaming.supervisor"):
        asyncio.run(scenario())
    assert supervisor.health["crasher"].errors >= 5
    assert supervisor.health["fatal"].errors == 1 and "fatal" in supervisor.finished
    assert supervisor.health["steady"].events == len(events) >= 50
    assert ticker.closed == 1
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("health ")]
    assert any("source=steady connected=yes" in line for line in lines), "periodic health lines"
    assert any("source=crasher" in line and "RuntimeError: boom" in line for line in lines)
    assert any("failed permanently" in r.getMessage() for r in caplog.records)


def test_until_finished_stops_when_finite_sources_are_done() -> None:
    _events, log, emit = _collector()

    class Finite:
        name = "finite"
        finite = True

        async def run(self, emit: Emit) -> None:
            for index in range(10):
                await emit(make_event(index, channel="finite"))

    ticker = Ticker("live", log)
    supervisor = Supervisor([Finite(), ticker], emit, health_interval_s=0)
    health = asyncio.run(asyncio.wait_for(supervisor.run(until_finished=True), 10))
    assert health["finite"].events == 10 and not health["finite"].connected
    assert ticker.closed == 1


def test_duplicate_source_names_are_refused() -> None:
    log: list[tuple[str, str]] = []
    with pytest.raises(ValueError, match="unique"):
        Supervisor([Ticker("a", log), Ticker("a", log)], _collector()[2])
