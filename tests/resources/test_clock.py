"""The clocks validation runs read and wait on: a stream's own clock moves only when told to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from resources.clock import FrozenClock, StreamClock, parse_instant

START = datetime(2025, 1, 1, tzinfo=UTC)


def test_a_stream_clock_waits_in_stream_time_and_scales_real_time_by_its_speed() -> None:
    slept: list[float] = []
    clock = StreamClock(START, speed=60, real_sleep=slept.append)
    clock.sleep(60)
    clock.sleep(0.5)
    clock.sleep(0)
    clock.sleep(-3)
    assert slept == [1.0, 0.5 / 60]  # a 60 s window at speed 60 costs one second
    assert clock.now() == START + timedelta(seconds=60.5)


def test_a_replay_moves_the_stream_clock_forward_only() -> None:
    clock = StreamClock(START)
    clock.advance_to(START + timedelta(minutes=3))
    clock.advance_to(START + timedelta(minutes=1))  # a late re-delivery does not turn it back
    assert clock.now() == START + timedelta(minutes=3)
    clock.sleep(1e6)  # speed inf: no real time
    assert clock.now() == START + timedelta(minutes=3, seconds=1e6)


def test_a_frozen_clock_stands_still() -> None:
    clock = FrozenClock(START)
    clock.sleep(30)
    assert clock.now() == START


@pytest.mark.parametrize("bad", [lambda: StreamClock(datetime(2025, 1, 1)), lambda: StreamClock(START, speed=0),
                                 lambda: FrozenClock(datetime(2025, 1, 1))])
def test_bad_clocks_are_refused(bad) -> None:
    with pytest.raises(ValueError):
        bad()


def test_instants_parse_to_aware_utc() -> None:
    assert parse_instant("2025-01-01T00:00:00Z") == START
    assert parse_instant("2025-01-01T01:00:00+01:00") == START
    assert parse_instant("2025-01-01T00:00:00") == START
