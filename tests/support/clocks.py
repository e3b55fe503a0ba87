"""Clocks for tests: time that moves only when code under test waits, so no test sleeps."""

from __future__ import annotations


class VirtualClock:
    """Epoch seconds that move only when something sleeps: waits are taken, never slept."""

    def __init__(self, start: float) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
