"""Seeded builders and small loopback helpers shared by the sidecar tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from streaming.events import Event

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def make_event(index: int, *, channel: str = "alpha", source: str = "replay", text: str | None = None,
               seconds: float | None = None) -> Event:
    """Event ``index`` of a channel: distinct text and id unless ``text`` is given."""
    return Event.from_message(
        source=source,  # type: ignore[arg-type]
        channel=channel,
        message_id=str(index),
        author="tester",
        text=text if text is not None else f"message number {index} on {channel}",
        ts=T0 + timedelta(seconds=index if seconds is None else seconds),
    )


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.01) -> None:
    """Poll ``predicate`` until true; fail after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)
