"""Where the sidecar's events go: de-duplicated, batched into ``social_events``, spooled on outage.

Path of one event through :class:`WarehouseSink`:

1. **De-duplication** (:class:`Deduplicator`): an event whose key (source, channel,
   message_id) was already accepted this session is dropped (re-deliveries after a
   reconnect); so is a re-post of the same ``content_md5`` in the *same* channel within
   ``repost_window_s`` of the accepted one (measured on event timestamps). The same content in
   another channel (a cross-channel echo) is kept: it is evidence for validation.
2. **Queue**: accepted events wait in memory (at most ``linger_s``) to be batched.
3. **Write**: one writer task appends a batch with :meth:`SocialStore.append` (in a thread).
   If the warehouse is unreachable (:func:`is_transient_db_error`) the batch goes to the
   :class:`~streaming.spool.Spool` instead, and while the spool holds anything every new batch
   is appended behind it, so the warehouse receives events in emission order. The writer
   retries the warehouse with exponential backoff and drains the spool, oldest first, before
   anything newer. ``SocialStore.append`` skips keys already stored, so a batch re-flushed
   after a crash between the commit and the spool's offset update is not duplicated.

Guarantee: an event accepted by :meth:`WarehouseSink.emit` reaches the warehouse exactly once
provided the process stops through :meth:`WarehouseSink.close` (SIGTERM/SIGINT); after a hard
kill, spooled events are still flushed exactly once by the next sink on the same spool, and only
the in-memory batch (at most ``linger_s`` of events) is at risk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exc as sa_exc

from resources.warehouse.social import SocialStore
from streaming.events import Event
from streaming.spool import Spool, append_jsonl
from streaming.supervisor import BackoffPolicy

logger = logging.getLogger(__name__)

_TRANSIENT: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError, sa_exc.TimeoutError,
    sqlite3.OperationalError, ConnectionError, TimeoutError, OSError,
)
try:  # psycopg is the PostgreSQL driver; absent on SQLite-only installs
    import psycopg

    _TRANSIENT += (psycopg.OperationalError, psycopg.InterfaceError)
except ImportError:  # pragma: no cover
    pass


#: Warehouse retries while spooling: 0.5, 1, 2 ... s capped at 30 s, half jittered.
DEFAULT_RETRY = BackoffPolicy(initial_s=0.5, max_s=30.0, jitter=0.5)


def is_transient_db_error(error: BaseException) -> bool:
    """True when ``error`` means "the warehouse is unreachable now", worth spooling and retrying."""
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, _TRANSIENT)


class Deduplicator:
    """Session de-duplication by key and by same-channel re-posts (see the module docstring).

    Parameters
    ----------
    repost_window_s
        A same-channel re-post of identical content within this many seconds (event time) of
        the accepted one is dropped; 0 disables the rule.
    max_keys
        Keys remembered (least recently seen are forgotten; the warehouse's unique key still
        catches any older re-delivery).
    """

    def __init__(self, *, repost_window_s: float = 600.0, max_keys: int = 200_000) -> None:
        self.repost_window_s = repost_window_s
        self.max_keys = max_keys
        self._keys: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._posts: dict[tuple[str, str, str], datetime] = {}
        self.duplicate_keys = 0
        self.reposts = 0

    def accept(self, event: Event) -> bool:
        """True when ``event`` is new; records it. False (and counted) when it is a duplicate."""
        if event.key in self._keys:
            self._keys.move_to_end(event.key)
            self.duplicate_keys += 1
            return False
        post = (event.source, event.channel, event.content_md5)
        previous = self._posts.get(post)
        if (previous is not None and self.repost_window_s > 0
                and abs((event.ts - previous).total_seconds()) <= self.repost_window_s):
            self.reposts += 1
            return False
        self._keys[event.key] = None
        if len(self._keys) > self.max_keys:
            self._keys.popitem(last=False)
        self._posts[post] = event.ts
        if len(self._posts) > self.max_keys:
            self._prune(event.ts)
        return True

    def _prune(self, now: datetime) -> None:
        horizon = max(self.repost_window_s, 1.0)
        self._posts = {k: ts for k, ts in self._posts.items() if abs((now - ts).total_seconds()) <= horizon}


@dataclass
class SinkStats:
    """Counters of a :class:`WarehouseSink` (events unless said otherwise)."""

    received: int = 0
    duplicate_keys: int = 0
    reposts: int = 0
    written: int = 0
    """Rows inserted into the warehouse (directly or from the spool)."""
    already_stored: int = 0
    """Events the warehouse already had (re-flush after a crash, another writer)."""
    spooled: int = 0
    flushed_from_spool: int = 0
    db_errors: int = 0
    last_retry_delay_s: float | None = None
    """The (jittered) wait before the latest warehouse retry, seconds; ``None`` before an outage."""
    rejected: int = 0
    """Records the warehouse refused for a non-transient reason (logged, kept in the spool's
    ``.rejected`` file)."""


class WarehouseSink:
    """De-duplicate, batch and write events to ``social_events``, spooling while it is down.

    Parameters
    ----------
    store
        A :class:`SocialStore`, or a zero-argument factory called (in a thread) on the first
        write, so that a warehouse that is down at start-up is retried like any outage.
    spool
        The local spool (its pending records are flushed first).
    repost_window_s
        See :class:`Deduplicator`.
    batch_size, linger_s
        A batch is written when it has ``batch_size`` events or its oldest waited ``linger_s``.
    retry
        Backoff between warehouse retries while spooling.
    seed
        Seed of the backoff's jitter, for reproducible delays in tests. By default the jitter
        comes from the operating system, so two sidecars that lose the warehouse together do not
        retry in lockstep.
    """

    def __init__(
        self,
        store: SocialStore | Callable[[], SocialStore],
        spool: Spool,
        *,
        repost_window_s: float = 600.0,
        batch_size: int = 200,
        linger_s: float = 0.2,
        retry: BackoffPolicy = DEFAULT_RETRY,
        max_queue: int = 10_000,
        seed: int | None = None,
    ) -> None:
        self._store: SocialStore | None = store if isinstance(store, SocialStore) else None
        self._store_factory = None if isinstance(store, SocialStore) else store
        self.spool = spool
        self.dedup = Deduplicator(repost_window_s=repost_window_s)
        self.batch_size = batch_size
        self.linger_s = linger_s
        self.retry = retry
        self.stats = SinkStats()
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=max_queue)
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        self._attempt = 0
        self._retry_at = 0.0
        self._idle = asyncio.Event()
        self._idle.set()
        self._overflow: list[dict[str, Any]] = []
        self._failure: BaseException | None = None
        self._rng = random.Random(seed) if seed is not None else random.SystemRandom()
        self._update_idle()

    # -- public --------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the writer task (idempotent); pending spooled records are flushed first."""
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_loop(), name="warehouse-sink")

    async def emit(self, event: Event) -> None:
        """Accept ``event`` unless it is a duplicate; waits only when the queue is full."""
        if self._closing:
            raise RuntimeError("the sink is closed")
        if self._failure is not None:
            raise RuntimeError(f"the sink's writer failed: {self._failure!r}") from self._failure
        self.stats.received += 1
        if not self.dedup.accept(event):
            self.stats.duplicate_keys = self.dedup.duplicate_keys
            self.stats.reposts = self.dedup.reposts
            return
        self._idle.clear()
        record = event.to_record()
        try:
            await self._queue.put(record)
        except asyncio.CancelledError:
            self._overflow.append(record)  # accepted: close() still writes it
            raise

    async def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every accepted event is in the warehouse (queue and spool empty).

        Returns False if ``timeout`` seconds pass first (e.g. the warehouse is still down).
        """
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self, *, final_attempt: bool = True) -> None:
        """Stop accepting, write what is queued (to the warehouse, else the spool), release the spool.

        With ``final_attempt`` the warehouse gets one more try at the spool before closing.
        Nothing accepted is lost: what cannot be written is in the spool for the next run.
        """
        self._closing = True
        if self._writer is not None:
            with contextlib.suppress(asyncio.QueueFull):  # a full queue wakes the writer anyway
                self._queue.put_nowait({})  # wake-up sentinel
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        remaining = self._take_all()
        if remaining:
            await self._write(remaining)
        if final_attempt and self.spool.pending:
            await self._flush_spool()
        if self.spool.pending:
            logger.warning("closing with %d events in the spool %s; they are flushed on the next start",
                           self.spool.pending, self.spool.path)
        self.spool.close()

    async def __aenter__(self) -> WarehouseSink:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- writer --------------------------------------------------------------------------

    def _take_all(self) -> list[dict[str, Any]]:
        records = []
        while not self._queue.empty():
            record = self._queue.get_nowait()
            if record:
                records.append(record)
        records.extend(self._overflow)
        self._overflow.clear()
        return records

    async def _next_batch(self, timeout: float | None) -> list[dict[str, Any]]:
        """Up to ``batch_size`` records; empty when ``timeout`` passes or on close."""
        try:
            first = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return []
        if not first:
            return []
        batch = [first]
        deadline = time.monotonic() + self.linger_s
        while len(batch) < self.batch_size and not self._closing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                record = await asyncio.wait_for(self._queue.get(), remaining)
            except TimeoutError:
                break
            if not record:
                break
            batch.append(record)
        return batch

    async def _write_loop(self) -> None:
        try:
            await self._write_loop_body()
        except Exception as error:  # e.g. the spool's disk is full: make every emit fail loudly
            self._failure = error
            logger.exception("the warehouse sink's writer failed; events can no longer be accepted")

    async def _write_loop_body(self) -> None:
        if self.spool.pending:
            await self._flush_spool()
        while not self._closing:
            timeout = None
            if self.spool.pending:
                timeout = max(0.0, self._retry_at - time.monotonic())
            batch = await self._next_batch(timeout)
            if batch:
                await self._write(batch)
            if self.spool.pending and time.monotonic() >= self._retry_at and not self._closing:
                await self._flush_spool()
            self._update_idle()

    def _update_idle(self) -> None:
        if self._queue.empty() and not self.spool.pending:
            self._idle.set()
        else:
            self._idle.clear()

    async def _write(self, batch: list[dict[str, Any]]) -> None:
        if self.spool.pending:  # older events wait in the spool: keep the order
            self._spool(batch)
            return
        try:
            ids = await self._append(batch)
        except Exception as error:
            if not is_transient_db_error(error):
                written = await self._write_one_by_one(batch, error)
                self._spool(batch[written:])
                return
            self._outage(error)
            self._spool(batch)
            return
        self._written(batch, ids)

    async def _flush_spool(self) -> None:
        """Drain the spool into the warehouse in order; on failure schedule the next retry."""
        flushed = 0
        while self.spool.pending:
            records, end = self.spool.read_batch(self.batch_size)
            try:
                ids = await self._append(records) if records else []
            except Exception as error:
                if is_transient_db_error(error):
                    self._outage(error)
                    break
                if await self._write_one_by_one(records, error) < len(records):
                    break  # a transient error stopped it; the outage is recorded
                self.spool.commit(end)
                continue
            self.spool.commit(end)
            self._written(records, ids)
            flushed += len(records)
            self.stats.flushed_from_spool += len(records)
        if flushed:
            logger.info("flushed %d spooled events to the warehouse (%d still pending)", flushed, self.spool.pending)
        if not self.spool.pending:
            self._attempt = 0
        self._update_idle()

    async def _append(self, records: Sequence[Mapping[str, Any]]) -> list[int]:
        if self._store is None:
            assert self._store_factory is not None
            self._store = await asyncio.to_thread(self._store_factory)
        return await asyncio.to_thread(self._store.append, records)

    def _written(self, records: Sequence[Mapping[str, Any]], ids: list[int]) -> None:
        if self._attempt:
            logger.info("warehouse is reachable again")
        self._attempt = 0
        self.stats.written += len(ids)
        self.stats.already_stored += len(records) - len(ids)

    def _spool(self, batch: list[dict[str, Any]]) -> None:
        self.spool.append(batch)
        self.stats.spooled += len(batch)

    def _outage(self, error: BaseException) -> None:
        self.stats.db_errors += 1
        delay = self.retry.delay(self._attempt, self._rng)
        self.stats.last_retry_delay_s = delay
        self._attempt += 1
        self._retry_at = time.monotonic() + delay
        logger.warning("warehouse unreachable (%s); spooling to %s, retry %d in %.2f s",
                       type(error).__name__, self.spool.path, self._attempt, delay)

    async def _write_one_by_one(self, batch: list[dict[str, Any]], error: BaseException) -> int:
        """A non-transient error: isolate the records the warehouse refuses.

        Returns how many leading records of ``batch`` were dealt with (written or rejected);
        it stops early at a transient error, leaving the rest to the caller.
        """
        logger.error("warehouse refused a batch (%s: %s); retrying record by record", type(error).__name__, error)
        rejected_path = self.spool.path.with_name(self.spool.path.name + ".rejected")
        for index, record in enumerate(batch):
            try:
                ids = await self._append([record])
            except Exception as single:
                if is_transient_db_error(single):
                    self._outage(single)
                    return index
                self.stats.rejected += 1
                logger.error("event %s/%s/%s rejected by the warehouse (%s: %s); kept in %s",
                             record.get("source"), record.get("channel"), record.get("message_id"),
                             type(single).__name__, single, rejected_path)
                append_jsonl(rejected_path, record)
                continue
            self._written([record], ids)
        return len(batch)
