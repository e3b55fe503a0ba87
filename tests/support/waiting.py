"""Waiting on a condition observed in another process or thread: with a deadline, never a bare sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], *, timeout_s: float, message: str | Callable[[], str],
               every_s: float = 0.05) -> T:
    """Return ``condition()``'s first truthy value; fail with ``message`` after ``timeout_s``.

    The condition lives elsewhere (a run record, a child's output), so it is polled every ``every_s``
    until the deadline; a ``message`` callable is evaluated only on failure, to describe the state then.
    """
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        if time.monotonic() > deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"after {timeout_s:.0f} s: {text}")
        time.sleep(every_s)
    return value
