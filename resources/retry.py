"""Retry transient failures with exponential backoff and full jitter."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from resources.exchanges.errors import RateLimitedError, RetriesExhaustedError, TransientError

logger = logging.getLogger(__name__)

T = TypeVar("T")


def jitter_rng(seed: int | None = None) -> random.Random:
    """The random source of retry jitter: ``random.Random(seed)`` when a seed is given
    (reproducible), else :class:`random.SystemRandom` (the OS's entropy: no state a fork copies,
    so no two processes draw the same delays)."""
    return random.Random(seed) if seed is not None else random.SystemRandom()


@dataclass
class RetryPolicy:
    """How often and how long to retry a :class:`TransientError`.

    The n-th retry waits ``uniform(0, min(max_delay, base_delay * 2**n))`` seconds (full jitter),
    except after a :class:`RateLimitedError` carrying ``retry_after``, which waits at least that.

    The jitter must differ between processes, or every worker that hit the same outage retries
    in lockstep: by default it comes from the operating system (:func:`jitter_rng`), fresh in
    every process and after a fork. Pass ``seed`` (or an ``rng``) for reproducible delays in tests.
    """

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    seed: int | None = None
    rng: random.Random = field(default=None)  # type: ignore[assignment]  # set in __post_init__

    def __post_init__(self) -> None:
        if self.rng is None:
            self.rng = jitter_rng(self.seed)

    def delay(self, retry_number: int, error: TransientError) -> float:
        cap = min(self.max_delay, self.base_delay * (2**retry_number))
        wait = self.rng.uniform(0, cap)
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            wait = max(wait, min(error.retry_after, self.max_delay * 4))
        return wait

    def call(self, fn: Callable[[], T], *, what: str, log: logging.Logger | None = None) -> T:
        """Run ``fn``; retry it on :class:`TransientError`; re-raise anything else at once.

        Each retry is logged as a warning on ``log`` (e.g. a Dagster step's ``context.log``, so
        it reaches the run log), or on this module's logger.
        """
        for retry_number in range(self.attempts):
            try:
                return fn()
            except TransientError as error:
                if retry_number == self.attempts - 1:
                    raise RetriesExhaustedError(
                        f"{what} still failing after {self.attempts} attempts: {error}. "
                        "Check the network, the exchange status page and the configured base URL.",
                        source=error.source,
                    ) from error
                wait = self.delay(retry_number, error)
                (log or logger).warning(
                    "%s failed (%s); retry %d of %d in %.2fs",
                    what, error, retry_number + 1, self.attempts - 1, wait,
                )
                self.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover
