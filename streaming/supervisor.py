"""Runs every source as an independent asyncio task, reconnecting failed ones (pure asyncio).

One source failing never stops the others: each runs in its own task and a failure is caught,
counted and followed by a reconnect after an exponential backoff with jitter. Health lines
(one per source) are logged periodically. Shutdown cancels every source task and awaits it,
so each source's ``finally`` closes its clients before :meth:`Supervisor.run` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from resources.retry import jitter_rng
from streaming.events import Event
from streaming.sources.base import Emit, Source, SourceFatalError, SourceHealth, health_of

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class BackoffPolicy:
    """Exponential backoff with jitter.

    The nominal delay of attempt ``n`` (0-based) is ``min(max_s, initial_s * factor**n)``:
    1, 2, 4, 8 ... s capped at 60 s by default. ``jitter`` in [0, 1] is the fraction of the
    nominal delay that is randomised: the delay is ``nominal * (1 - jitter * u)`` with ``u``
    uniform in [0, 1), so 1.0 is *full jitter* (delay in (0, nominal]) and 0.0 none.
    A run that lasted at least ``reset_after_s`` before failing counts as healthy and resets
    the attempt counter.
    """

    initial_s: float = 1.0
    factor: float = 2.0
    max_s: float = 60.0
    jitter: float = 1.0
    reset_after_s: float = 60.0

    def __post_init__(self) -> None:
        if self.initial_s <= 0 or self.factor < 1 or self.max_s < self.initial_s:
            raise ValueError(f"invalid backoff {self!r}")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"jitter must be in [0, 1], got {self.jitter}")

    def nominal(self, attempt: int) -> float:
        """Delay in seconds before retry ``attempt`` (0-based), before jitter."""
        return min(self.max_s, self.initial_s * self.factor ** min(attempt, 64))

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Jittered delay in seconds, in ``(nominal * (1 - jitter), nominal]``."""
        return self.nominal(attempt) * (1.0 - self.jitter * rng.random())


#: Source reconnects: 1, 2, 4, 8 ... s capped at 60 s, full jitter, reset after 60 s of health.
DEFAULT_BACKOFF = BackoffPolicy()


def install_signal_handlers(stop: asyncio.Event) -> Callable[[], None]:
    """Set ``stop`` on SIGTERM and SIGINT (Unix event loops); returns an uninstaller."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []

    def _on_signal(signum: signal.Signals) -> None:
        if stop.is_set():
            logger.warning("received %s again; already shutting down", signum.name)
        else:
            logger.info("received %s; shutting down", signum.name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, _on_signal, signum)
            installed.append(signum)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-Unix loops
            logger.debug("cannot install a handler for %s", signum.name)

    def _uninstall() -> None:
        for signum in installed:
            loop.remove_signal_handler(signum)

    return _uninstall


class Supervisor:
    """Supervise sources: one task each, reconnect with backoff, log health, stop cleanly.

    Parameters
    ----------
    sources
        The sources; names must be unique.
    emit
        Where events go (typically :meth:`streaming.sink.WarehouseSink.emit`).
    backoff
        Reconnect policy.
    health_interval_s
        Seconds between health reports (one log line per source); 0 disables them.
    sleep, rng, clock
        Injectable for tests: the backoff sleep, the jitter's random source (by default the OS's
        entropy, so sidecars restarted together do not reconnect in lockstep; pass a seeded
        ``random.Random`` for reproducible delays) and the monotonic clock that measures healthy runs.
    """

    def __init__(
        self,
        sources: Sequence[Source],
        emit: Emit,
        *,
        backoff: BackoffPolicy = DEFAULT_BACKOFF,
        health_interval_s: float = 30.0,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        names = [source.name for source in sources]
        if len(names) != len(set(names)):
            raise ValueError(f"source names must be unique, got {names}")
        self.sources = tuple(sources)
        self.backoff = backoff
        self.health_interval_s = health_interval_s
        self._emit = emit
        self._sleep = sleep
        self._rng = rng or jitter_rng()
        self._clock = clock
        self.health: dict[str, SourceHealth] = {
            source.name: health_of(source) or SourceHealth() for source in self.sources
        }
        self.delays: dict[str, list[float]] = {name: [] for name in names}
        """Backoff delays slept so far, per source (seconds)."""
        self.finished: set[str] = set()
        """Sources whose ``run`` returned (finite sources done) or failed fatally."""

    def health_lines(self) -> list[str]:
        """One line per source: connected, last message, events, errors, reconnects."""
        return [self.health[source.name].line(source.name) for source in self.sources]

    def log_health(self) -> None:
        """Log :meth:`health_lines` at INFO."""
        for line in self.health_lines():
            logger.info("health %s", line)

    async def run(self, stop: asyncio.Event | None = None, *, until_finished: bool = False) -> dict[str, SourceHealth]:
        """Run until ``stop`` is set (or, with ``until_finished``, every finite source is done).

        Every source task is then cancelled and awaited, so the sources have closed their
        clients when this returns. Returns the final health per source name.
        """
        stop = stop or asyncio.Event()
        tasks = {
            asyncio.create_task(self._supervise(source), name=f"source:{source.name}"): source
            for source in self.sources
        }
        health_task = asyncio.create_task(self._report_health()) if self.health_interval_s > 0 else None
        stop_task = asyncio.create_task(stop.wait())
        finite = [s.name for s in self.sources if getattr(s, "finite", False)]
        if until_finished and not finite:
            logger.warning("until_finished asked but no source is finite; running until stopped")
        try:
            pending = set(tasks)
            while not stop.is_set():
                if not pending:
                    break
                if until_finished and finite and all(name in self.finished for name in finite):
                    logger.info("every finite source is done (%s)", ", ".join(finite))
                    break
                done, pending = await asyncio.wait(pending | {stop_task}, return_when=asyncio.FIRST_COMPLETED)
                pending.discard(stop_task)
                pending -= done
        finally:
            stop_task.cancel()
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            for task, result in zip(tasks, results, strict=True):
                if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                    logger.error("source %s ended with %r", tasks[task].name, result)
            if health_task is not None:
                health_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await health_task
            with contextlib.suppress(asyncio.CancelledError):
                await stop_task
            for health in self.health.values():
                health.connected = False
            self.log_health()
        return dict(self.health)

    async def _supervise(self, source: Source) -> None:
        health = self.health[source.name]
        attempt = 0

        async def emit(event: Event) -> None:
            await self._emit(event)
            health.record_event()

        while True:
            started = self._clock()
            try:
                await source.run(emit)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # we are being stopped
                error: BaseException = RuntimeError("source run was cancelled from inside")
            except SourceFatalError as fatal:
                health.record_error(fatal)
                health.connected = False
                self.finished.add(source.name)
                logger.error("source %s failed permanently and is stopped: %s", source.name, fatal)
                return
            except Exception as failure:
                error = failure
            else:
                health.connected = False
                self.finished.add(source.name)
                logger.info("source %s finished (%d events)", source.name, health.events)
                return
            health.connected = False
            health.record_error(error)
            if self._clock() - started >= self.backoff.reset_after_s:
                attempt = 0
            delay = self.backoff.delay(attempt, self._rng)
            attempt += 1
            health.reconnects += 1
            self.delays[source.name].append(delay)
            logger.warning(
                "source %s failed (%s: %s); reconnect %d in %.2f s",
                source.name, type(error).__name__, error, health.reconnects, delay,
            )
            await self._sleep(delay)

    async def _report_health(self) -> None:
        while True:
            await asyncio.sleep(self.health_interval_s)
            self.log_health()
