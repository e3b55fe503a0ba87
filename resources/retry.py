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


@dataclass
class RetryPolicy:
    """How often and how long to retry a :class:`TransientError`.

    The n-th retry waits ``uniform(0, min(max_delay, base_delay * 2**n))`` seconds (full jitter),
    except after a :class:`RateLimitedError` carrying ``retry_after``, which waits at least that.
    """

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=lambda: random.Random(0))

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
