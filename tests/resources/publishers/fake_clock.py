"""A fake monotonic clock shared by the flood gate, the stand-in and the tests."""

from __future__ import annotations

import threading


class FakeClock:
    """Seconds that only move when someone sleeps or the test advances them; thread-safe.

    ``local.last`` is the last reading taken by the calling thread (the moment a gate let a send
    through, when read right after :meth:`FloodGate.wait`).
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self.local = threading.local()
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            self.local.last = self.now
            return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0, seconds
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds
