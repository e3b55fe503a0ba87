"""SlidingWindowLimit and SharedRateLimit (a real SQLite file): at most N requests in any window.

Clocks are virtual: a wait advances the clock instead of sleeping.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from resources.rate_limit import RateLimit, SharedRateLimit, SlidingWindowLimit, next_slot
from tests.support.clocks import VirtualClock

START = 1_750_000_000.0


Factory = Callable[[VirtualClock, int, float], RateLimit]


def _local(clock: VirtualClock, limit: int, period_s: float) -> RateLimit:
    return SlidingWindowLimit(limit, period_s, clock=clock, sleep=clock.sleep)


@pytest.fixture(params=["in-process", "shared-file"])
def make_limit(request: pytest.FixtureRequest, tmp_path: Path) -> Factory:
    if request.param == "in-process":
        return _local
    return lambda clock, limit, period_s: SharedRateLimit(tmp_path / "limits.sqlite", name="api", limit=limit,
                                                          period_s=period_s, clock=clock, sleep=clock.sleep)


def test_a_burst_of_the_limit_then_a_window_later(make_limit: Factory) -> None:
    clock = VirtualClock(START)
    limit = make_limit(clock, 3, 10.0)
    times = []
    for _ in range(7):
        limit.acquire()
        times.append(clock.now - START)
    assert times == [0, 0, 0, 10, 10, 10, 20]


def test_requests_spread_out_wait_only_as_much_as_the_window_needs(make_limit: Factory) -> None:
    clock = VirtualClock(START)
    limit = make_limit(clock, 2, 10.0)
    waits = []
    for gap in (0, 4, 4, 4, 20):
        clock.now += gap
        waits.append(limit.acquire())
    # slots at 0, 4; the third (at 8) waits for 0 + 10; the fourth (at 14) for 4 + 10 -> none
    assert waits == [0.0, 0.0, 2.0, 0.0, 0.0]


def test_two_instances_on_one_file_share_the_limit_and_it_survives_reopening(tmp_path: Path) -> None:
    clock = VirtualClock(START)
    path = tmp_path / "limits.sqlite"
    one = SharedRateLimit(path, name="api", limit=2, period_s=60, clock=clock, sleep=clock.sleep)
    two = SharedRateLimit(path, name="api", limit=2, period_s=60, clock=clock, sleep=clock.sleep)
    other = SharedRateLimit(path, name="other-api", limit=2, period_s=60, clock=clock, sleep=clock.sleep)
    assert [one.acquire(), two.acquire(), other.acquire()] == [0.0, 0.0, 0.0]
    again = SharedRateLimit(path, name="api", limit=2, period_s=60, clock=clock, sleep=clock.sleep)
    assert again.acquire() == 60.0  # the third request of "api" within the minute, whoever sends it
    assert other.acquire() == 0.0  # another API's limit is its own


def test_threads_on_one_shared_limit_never_exceed_it(tmp_path: Path) -> None:
    path = tmp_path / "limits.sqlite"
    slots: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        clock = VirtualClock(START)
        limit = SharedRateLimit(path, name="api", limit=5, period_s=60, clock=clock, sleep=clock.sleep)
        for _ in range(10):
            limit.acquire()
            with lock:
                slots.append(clock.now - START)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert sorted(slots) == [60.0 * (i // 5) for i in range(30)]  # exactly 5 per minute


def test_a_clock_that_went_back_does_not_stall_requests(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = VirtualClock(START)
    limit = SharedRateLimit(tmp_path / "limits.sqlite", name="api", limit=1, period_s=60, clock=clock,
                            sleep=clock.sleep, max_ahead_s=600)
    limit.acquire()
    clock.now -= 7200  # the machine's clock moved back two hours
    with caplog.at_level(logging.WARNING, logger="resources.rate_limit"):
        assert limit.acquire() == 0.0
    assert "the clock went back" in caplog.text


def test_next_slot_and_bad_limits() -> None:
    assert next_slot(None, 5.0, 60) == 5.0
    assert next_slot(1.0, 5.0, 60) == 61.0
    assert next_slot(1.0, 100.0, 60) == 100.0
    with pytest.raises(ValueError, match="limit >= 1"):
        SlidingWindowLimit(0, 60)
    with pytest.raises(ValueError, match="period_s > 0"):
        SlidingWindowLimit(1, 0)
