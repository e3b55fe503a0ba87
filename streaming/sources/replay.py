"""Replay a recorded (or synthetic) JSONL stream as a live source.

Each line is either an ``Event.to_record()`` dict (tokens and digest kept as recorded) or a raw
message ``{source, channel, message_id, author, text, ts[, attachments, raw]}`` whose tokens
are extracted on the way. ``source`` is kept when it is a known source, else ``"replay"``.

Timing: events are emitted with the recorded inter-arrival times divided by ``speed`` (never
going back in time: a re-delivered message whose ``ts`` is older than its predecessor's is
emitted at once). Time stamps, three ways (the recorded time is kept in ``raw["recorded_ts"]``
by the first two):

* on a :class:`~resources.clock.StreamClock` (``stream_clock``): the stream is shifted so that
  its first event lands at the clock's start, every recorded offset kept exactly, and the clock
  is moved to each event as it is emitted. That clock is the stream's own: a simulated market
  and the validation runs that read it see the same instants whatever the calendar or the
  machine's speed, so a replay's outcome is reproducible (``signalworks demo``, tests);
* with ``rebase`` (the default otherwise): an event's ``ts`` is the wall-clock time at which it
  is emitted (UTC), so windows line up with "now" for a live-like ``signalworks listen``;
* without ``rebase``: the recorded ``ts`` (backfills, tests).

With ``loop`` the stream restarts when it ends; message ids of pass ``n >= 1`` get the suffix
``~n`` so that every pass is new to the warehouse's unique key. After a failure the supervisor
calls :meth:`ReplaySource.run` again and the replay resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from resources.clock import StreamClock
from streaming.events import SOURCES, Event
from streaming.extract import DEFAULT_CONFIG, ExtractionConfig
from streaming.sources.base import Emit, SourceHealth

logger = logging.getLogger(__name__)


def parse_record(record: Mapping[str, Any], *, config: ExtractionConfig = DEFAULT_CONFIG) -> Event:
    """The Event of one replay line (an ``Event.to_record()`` dict or a raw message).

    Raises
    ------
    ValueError, KeyError, TypeError
        If a required field is missing or malformed (a naive ``ts`` included).
    """
    if "content_md5" in record and "tokens" in record:
        return Event.from_record(record)
    ts = record["ts"]
    if isinstance(ts, int | float):
        when = datetime.fromtimestamp(ts, UTC)
    else:
        when = datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    source = record.get("source")
    return Event.from_message(
        source=source if source in SOURCES else "replay",
        channel=str(record["channel"]),
        message_id=str(record["message_id"]),
        author=str(record.get("author") or ""),
        text=str(record.get("text") or ""),
        ts=when,
        attachments=tuple(record.get("attachments") or ()),
        raw=dict(record.get("raw") or {}),
        config=config,
    )


class ReplaySource:
    """A JSONL stream (or in-memory records) replayed at ``speed`` times real time.

    Parameters
    ----------
    path
        The JSONL file; or give ``records`` instead.
    records
        Already parsed lines (e.g. :func:`streaming.synthetic.generate_stream`).
    speed
        1 = real time, 60 = a recorded minute per second; ``float("inf")`` = no waiting.
    loop
        Restart at the end (the source is then not finite).
    rebase
        Emit with ``ts`` = now (see the module docstring); ignored with ``stream_clock``.
    stream_clock
        Re-base the stream onto this clock and move it with the stream (see the module
        docstring); each pass of a ``loop`` starts where the previous one ended.
    channels
        When non-empty, only these channels are replayed.
    clock, monotonic, sleep
        Wall clock (UTC, for re-based time stamps), monotonic clock and sleep; injectable.
    """

    def __init__(
        self,
        path: Path | None = None,
        *,
        records: Iterable[Mapping[str, Any]] | None = None,
        speed: float = 1.0,
        loop: bool = False,
        rebase: bool = True,
        stream_clock: StreamClock | None = None,
        channels: Sequence[str] = (),
        name: str = "replay",
        config: ExtractionConfig = DEFAULT_CONFIG,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if (path is None) == (records is None):
            raise ValueError("give exactly one of path and records")
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.name = name
        self.path = path
        self._records = list(records) if records is not None else None
        self.speed = speed
        self.loop = loop
        self.finite = not loop
        self.rebase = rebase
        self.stream_clock = stream_clock
        self.channels = frozenset(channels)
        self.config = config
        self.health = SourceHealth()
        self.skipped = 0
        """Lines that could not be parsed (logged at ERROR, counted in ``health.errors``)."""
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._pass = 0
        self._position = 0
        self._shift: timedelta | None = None  # onto the stream clock, fixed per pass

    def _lines(self) -> Iterator[tuple[int, Mapping[str, Any] | None]]:
        """(line number, record or None when unparsable), from the resume position."""
        if self._records is not None:
            for number in range(self._position, len(self._records)):
                yield number, self._records[number]
            return
        assert self.path is not None
        with open(self.path, encoding="utf-8") as handle:
            for number, line in enumerate(handle):
                if number < self._position:
                    continue
                if not line.strip():
                    yield number, {}
                    continue
                try:
                    yield number, json.loads(line)
                except ValueError as error:
                    logger.error("%s:%d is not JSON (%s); skipped", self.path, number + 1, error)
                    yield number, None

    async def run(self, emit: Emit) -> None:
        """Emit the stream (resuming after a failure); returns at the end unless ``loop``."""
        self.health.mark_connected()
        while True:
            await self._run_pass(emit)
            if not self.loop:
                return
            self._pass += 1
            self._position = 0
            self._shift = None
            logger.info("replay %s: pass %d", self.name, self._pass + 1)

    async def _run_pass(self, emit: Emit) -> None:
        anchor: tuple[datetime, float] | None = None
        cursor: datetime | None = None
        lines = self._lines()
        try:
            for number, record in lines:
                event = self._event(number, record)
                self._position = number + 1 if event is None else number
                if event is None:
                    continue
                cursor = event.ts if cursor is None else max(cursor, event.ts)
                if anchor is None:
                    anchor = (cursor, self._monotonic())
                elif self.speed != float("inf"):
                    due = anchor[1] + (cursor - anchor[0]).total_seconds() / self.speed
                    wait = due - self._monotonic()
                    if wait > 0:
                        await self._sleep(wait)
                await emit(self._finalise(event))
                self._position = number + 1
        finally:
            if hasattr(lines, "close"):
                lines.close()  # closes the file even when cancelled mid-stream

    def _event(self, number: int, record: Mapping[str, Any] | None) -> Event | None:
        if not record:
            if record is None:
                self.skipped += 1
                self.health.record_error(f"line {number + 1} is not JSON")
            return None
        if self.channels and str(record.get("channel")) not in self.channels:
            return None
        try:
            return parse_record(record, config=self.config)
        except (KeyError, TypeError, ValueError) as error:
            self.skipped += 1
            self.health.record_error(error)
            logger.error("replay %s: line %d skipped (%s: %s)", self.name, number + 1, type(error).__name__, error)
            return None

    def _finalise(self, event: Event) -> Event:
        changes: dict[str, Any] = {}
        if self.stream_clock is not None:
            if self._shift is None:
                self._shift = self.stream_clock.now() - event.ts
            changes["ts"] = event.ts + self._shift
            changes["raw"] = {**event.raw, "recorded_ts": event.ts.isoformat()}
            self.stream_clock.advance_to(changes["ts"])
        elif self.rebase:
            changes["ts"] = self._clock()
            changes["raw"] = {**event.raw, "recorded_ts": event.ts.isoformat()}
        if self._pass:
            changes["message_id"] = f"{event.message_id}~{self._pass}"
        return dataclasses.replace(event, **changes) if changes else event


def default_stream_records(*, seed: int = 7, minutes: int = 60) -> list[dict[str, Any]]:
    """The embedded default stream: :func:`streaming.synthetic.generate_stream` of ``seed``."""
    from streaming.synthetic import generate_stream

    return generate_stream(seed=seed, start=datetime(2025, 1, 1, tzinfo=UTC), minutes=minutes)
