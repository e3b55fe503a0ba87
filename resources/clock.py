"""Clocks that social validation runs and the simulated DexScreener read, and wait on.

A validation run reads the time (``now``) and waits for windows to close (``sleep``). Three
clocks do that:

* :class:`WallClock`: the real time; live sources.
* :class:`FrozenClock`: time stands still at one instant and waits return at once (tests that
  look at one moment of the simulated market).
* :class:`StreamClock`: a replayed stream's own clock. It stands at an instant of the stream and
  moves only when told to: a replay advances it to each event it emits, a run by the time it
  waits. Each wait of ``s`` stream seconds also takes ``s / speed`` real seconds, so a 60 s
  window replayed at speed 60 costs one second. Nothing read from it depends on how fast the
  machine is, so a replay gives the same outcome on every run and every day.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["FrozenClock", "RunClock", "StreamClock", "WallClock", "parse_instant"]


class RunClock(Protocol):
    """What a validation run reads and waits on (aware UTC datetimes, seconds)."""

    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...


def parse_instant(text: str) -> datetime:
    """An ISO-8601 instant as an aware UTC datetime (a naive one is taken as UTC)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class WallClock:
    """The real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class FrozenClock:
    """Always ``at``; a wait returns at once and moves nothing."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError(f"naive datetime {at!r}: the clock needs an aware UTC instant")
        self.at = at

    def now(self) -> datetime:
        return self.at

    def sleep(self, seconds: float) -> None:
        del seconds


class StreamClock:
    """A stream's own clock (see the module docstring); thread-safe.

    Parameters
    ----------
    start
        The stream time it stands at first (aware).
    speed
        Stream seconds per real second while waiting (``float("inf")``: waits take no real time).
    real_sleep
        How real time passes (injectable).
    """

    def __init__(self, start: datetime, *, speed: float = float("inf"),
                 real_sleep: Callable[[float], None] = time.sleep) -> None:
        if start.tzinfo is None:
            raise ValueError(f"naive datetime {start!r}: the clock needs an aware UTC instant")
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.start = start
        self.speed = speed
        self._now = start
        self._real_sleep = real_sleep
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"StreamClock(now={self.now().isoformat()}, speed={self.speed})"

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance_to(self, moment: datetime) -> None:
        """Move to ``moment`` (never backwards: an earlier moment leaves the clock where it is)."""
        with self._lock:
            self._now = max(self._now, moment)

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of stream time: ``seconds / speed`` real seconds, then exactly
        ``seconds`` later on this clock."""
        if seconds <= 0:
            return
        if self.speed != float("inf"):
            self._real_sleep(seconds / self.speed)
        with self._lock:
            self._now += timedelta(seconds=seconds)
