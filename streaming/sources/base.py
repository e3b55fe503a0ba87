"""The source contract every sidecar source implements (pure, no Dagster).

A *source* is an async object with a ``name`` and a ``run(emit)`` coroutine:

.. code-block:: python

    class Source(Protocol):
        name: str
        async def run(self, emit: Callable[[Event], Awaitable[None]]) -> None: ...

Contract
--------
* ``run`` connects, then calls ``await emit(event)`` once per received message, in arrival
  order, and keeps running until it is cancelled (``asyncio.CancelledError``). A *finite*
  source (a replay without ``loop``) may simply return when it is done.
* On disconnect or any failure ``run`` *raises* (any exception); it never swallows errors
  and never sleeps/retries itself: the supervisor reconnects it with exponential backoff by
  calling ``run`` again on the same object. A failure that retrying cannot fix (missing
  credentials, a bad configuration) raises :class:`SourceFatalError`: the supervisor logs it
  and stops that source only. Since ``run`` is called again after a failure, it must be
  re-entrant (open clients inside ``run``, not in ``__init__``).
* On cancellation ``run`` closes what it opened (clients, async generators, servers), in a
  ``try/finally``, and lets ``CancelledError`` propagate.
* ``emit`` applies back-pressure (it may await); a source must not call it concurrently from
  several tasks without awaiting each call.
* Optional attributes: ``finite: bool`` (True for a source whose ``run`` returns when it
  has nothing more to send, e.g. a replay without loop; ``signalworks listen --once`` stops
  when every finite source is done) and ``health: SourceHealth``.
* A source may expose an optional ``health: SourceHealth`` attribute; if it does, the
  supervisor uses that object (so the source can record e.g. rejected requests in
  ``errors``), otherwise the supervisor keeps one for it. ``connected`` is set by the source
  (via :meth:`SourceHealth.mark_connected`) once it is actually listening; the supervisor
  sets it on the first emitted event too, and clears it when ``run`` ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from streaming.events import Event

Emit = Callable[[Event], Awaitable[None]]
"""The callback a source awaits once per event."""


class SourceFatalError(RuntimeError):
    """A source failure that reconnecting cannot fix; the message says what to change."""


@runtime_checkable
class Source(Protocol):
    """An async social source (see the module docstring for the full contract)."""

    name: str

    async def run(self, emit: Emit) -> None:
        """Receive messages and ``await emit(event)`` for each; raise on disconnect."""
        ...


@dataclass
class SourceHealth:
    """Live counters of one source, printed periodically by the supervisor.

    Attributes
    ----------
    connected
        True while the source is connected/listening.
    last_message_at
        UTC time the last event was emitted (None before the first).
    events
        Events emitted since start.
    errors
        Failures since start (``run`` raising, rejected requests, ...).
    reconnects
        Times ``run`` was restarted after a failure.
    last_error
        ``repr``-style summary of the last failure (never contains secrets).
    """

    connected: bool = False
    last_message_at: datetime | None = None
    events: int = 0
    errors: int = 0
    reconnects: int = 0
    last_error: str | None = None

    def mark_connected(self) -> None:
        """Record that the source is connected."""
        self.connected = True

    def record_event(self, when: datetime | None = None) -> None:
        """Count one emitted event at ``when`` (default: now, UTC)."""
        self.events += 1
        self.last_message_at = when or datetime.now(UTC)
        self.connected = True

    def record_error(self, error: BaseException | str) -> None:
        """Count one failure; ``error`` is summarised as ``Type: message``."""
        self.errors += 1
        if isinstance(error, BaseException):
            self.last_error = f"{type(error).__name__}: {error}"[:200]
        else:
            self.last_error = str(error)[:200]

    def line(self, name: str) -> str:
        """One human-readable health line for ``name``."""
        last = self.last_message_at.isoformat(timespec="seconds") if self.last_message_at else "-"
        text = (
            f"source={name} connected={'yes' if self.connected else 'no'} last_message={last} "
            f"events={self.events} errors={self.errors} reconnects={self.reconnects}"
        )
        if self.last_error:
            text += f" last_error={self.last_error!r}"
        return text


def health_of(source: object) -> SourceHealth | None:
    """The source's own :class:`SourceHealth` if it exposes one (``health`` attribute)."""
    health = getattr(source, "health", None)
    return health if isinstance(health, SourceHealth) else None


async def drain_queue(queue: asyncio.Queue[Event], emit: Emit, until: asyncio.Future[Any]) -> None:
    """``await emit`` for each queued event, in order, until ``until`` is done and the queue empty.

    ``emit``'s errors propagate; ``until``'s outcome is left for the caller to read.
    """
    while True:
        getter = asyncio.ensure_future(queue.get())
        try:
            await asyncio.wait({getter, until}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not getter.done():
                getter.cancel()
        if getter.done() and not getter.cancelled():
            await emit(getter.result())
            continue
        while not queue.empty():
            await emit(queue.get_nowait())
        return
