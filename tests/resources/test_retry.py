"""RetryPolicy: jitter differs between processes by default, and a seed reproduces it.

Each process runs the real retry loop against a call that keeps failing transiently; the waits
it asks for are recorded instead of slept. Processes are started with ``spawn`` (forking after
polars can hang).
"""

from __future__ import annotations

import multiprocessing
import os

import pytest

from resources.exchanges.errors import RateLimitedError, RetriesExhaustedError, TransientError
from resources.retry import RetryPolicy
from tests.support.processes import results_of_spawned

ATTEMPTS = 6


def retry_waits(seed: int | None) -> list[float]:
    """The waits of one exhausted :meth:`RetryPolicy.call` (every attempt fails transiently)."""
    waits: list[float] = []
    policy = RetryPolicy(attempts=ATTEMPTS, base_delay=1.0, max_delay=30.0, sleep=waits.append, seed=seed)

    def always_failing() -> None:
        raise TransientError("connection reset", source="test")

    with pytest.raises(RetriesExhaustedError):
        policy.call(always_failing, what="GET /thing")
    return waits


def _child(seed: int | None, results: multiprocessing.Queue) -> None:
    results.put((os.getpid(), retry_waits(seed)))


def waits_in_two_processes(seed: int | None) -> list[list[float]]:
    found = results_of_spawned(_child, [(seed,), (seed,)])
    assert len({pid for pid, _ in found}) == 2  # really two processes
    return [waits for _, waits in found]


def test_two_processes_draw_different_jitter_by_default() -> None:
    first, second = waits_in_two_processes(None)
    assert len(first) == len(second) == ATTEMPTS - 1
    for n, (a, b) in enumerate(zip(first, second, strict=True)):
        assert 0 <= a <= min(30.0, 2**n) and 0 <= b <= min(30.0, 2**n)  # full jitter within the cap
    assert first != second  # not in lockstep


def test_an_injected_seed_reproduces_the_same_waits_in_any_process() -> None:
    first, second = waits_in_two_processes(1234)
    assert first == second == retry_waits(1234)
    assert retry_waits(1234) != retry_waits(4321)


def test_retry_after_is_a_floor_whatever_the_jitter() -> None:
    policy = RetryPolicy(base_delay=0.01, seed=1)
    assert policy.delay(0, RateLimitedError("slow down", source="test", retry_after=7.0)) == 7.0
