"""Runs every exchange's feed as an independent asyncio task, reconnecting a failed one.

The same policy as the social sidecar (:mod:`streaming.supervisor`): a failure is counted,
logged and followed by a reconnect after an exponential backoff with jitter (1, 2, 4 ... s,
capped at 60 s); one exchange failing never stops the others. A health line per exchange is
logged every ``health_interval_s`` and once more at shutdown. Stopping cancels every task and
awaits it, so each feed has closed its client; a warehouse write in flight runs to its commit in
its worker thread (``asyncio.run`` waits for those threads), so nothing is half-written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence

from resources.retry import jitter_rng
from streaming.candles.exchange_feed import ExchangeFeed, FeedHealth
from streaming.supervisor import DEFAULT_BACKOFF, BackoffPolicy, Sleep

logger = logging.getLogger(__name__)


class CandleFeed:
    """Supervise the feeds of several exchanges.

    Parameters
    ----------
    feeds
        One :class:`ExchangeFeed` per exchange (unique exchange ids).
    backoff
        Reconnect policy.
    health_interval_s
        Seconds between health lines (0 disables the periodic ones).
    sleep, rng, monotonic
        Injectable for tests: the backoff wait, the jitter's random source and the clock that
        measures how long a connection stayed healthy.
    """

    def __init__(self, feeds: Sequence[ExchangeFeed], *, backoff: BackoffPolicy = DEFAULT_BACKOFF,
                 health_interval_s: float = 30.0, sleep: Sleep = asyncio.sleep,
                 rng: random.Random | None = None, monotonic: Callable[[], float] = time.monotonic) -> None:
        names = [feed.exchange for feed in feeds]
        if len(names) != len(set(names)):
            raise ValueError(f"exchange ids must be unique, got {names}")
        self.feeds = tuple(feeds)
        self.backoff = backoff
        self.health_interval_s = health_interval_s
        self._sleep = sleep
        self._rng = rng or jitter_rng()
        self._monotonic = monotonic
        self.delays: dict[str, list[float]] = {name: [] for name in names}
        """Backoff delays waited so far, per exchange (seconds)."""

    @property
    def health(self) -> dict[str, FeedHealth]:
        return {feed.exchange: feed.health for feed in self.feeds}

    def health_lines(self) -> list[str]:
        return [feed.health.line(feed.exchange) for feed in self.feeds]

    def log_health(self) -> None:
        for line in self.health_lines():
            logger.info("health %s", line)

    async def run(self, stop: asyncio.Event) -> dict[str, FeedHealth]:
        """Run until ``stop`` is set; returns the final health per exchange."""
        tasks = [asyncio.create_task(self._supervise(feed), name=f"feed:{feed.exchange}") for feed in self.feeds]
        reporter = asyncio.create_task(self._report_health()) if self.health_interval_s > 0 else None
        try:
            await stop.wait()
        finally:
            for task in [*tasks, *([reporter] if reporter else [])]:
                task.cancel()
            for feed, result in zip(self.feeds, await asyncio.gather(*tasks, return_exceptions=True), strict=True):
                if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                    logger.error("feed %s ended with %r", feed.exchange, result)
            if reporter is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await reporter
            self.log_health()
        return self.health

    async def _supervise(self, feed: ExchangeFeed) -> None:
        attempt = 0
        while True:
            started = self._monotonic()
            try:
                await feed.run()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # any failure: log it, back off, reconnect
                failure = error
            else:  # pragma: no cover - run() loops until cancelled or failed
                return
            feed.health.record_error(failure)
            if self._monotonic() - started >= self.backoff.reset_after_s:
                attempt = 0
            delay = self.backoff.delay(attempt, self._rng)
            attempt += 1
            feed.health.reconnects += 1
            self.delays[feed.exchange].append(delay)
            logger.warning("feed %s failed (%s: %s); reconnect %d in %.2f s (gaps are repaired on reconnect)",
                           feed.exchange, type(failure).__name__, failure, feed.health.reconnects, delay)
            await self._sleep(delay)

    async def _report_health(self) -> None:
        while True:
            await asyncio.sleep(self.health_interval_s)
            self.log_health()
