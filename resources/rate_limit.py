"""Request limits of an external API: at most ``limit`` requests in any ``period_s`` seconds.

An API such as DexScreener limits requests per IP, so the limit must hold across every thread,
Dagster run and process of the machine, not per client. :class:`SharedRateLimit` keeps the
times of the latest ``limit`` requests in a SQLite file every process opens (the DexScreener
cache file): each request reserves its slot in one short ``BEGIN IMMEDIATE`` transaction, which
serialises the reservations of all processes, then sleeps until its slot.
:class:`SlidingWindowLimit` is the same rule for one process (threads), for a client with no
shared file.

The rule (a sliding window, not a token bucket): a request may go at
``max(now, t_n + period_s)``, where ``t_n`` is the ``limit``-th latest slot already reserved.
Then any half-open window of ``period_s`` seconds holds at most ``limit`` slots, whatever order
processes reserve in and even if their clocks disagree (a slot only needs to be ``period_s``
after the ``limit``-th latest). A token bucket with a burst of ``limit`` would allow
``2 * limit`` requests in the first period (the burst plus a period of refill).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Protocol

logger = logging.getLogger(__name__)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS rate_limit_slots (name TEXT NOT NULL, at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS rate_limit_slots_by_name ON rate_limit_slots (name, at)",
)


class RateLimit(Protocol):
    """Blocks until one more request may be sent."""

    def acquire(self) -> float:
        """Wait for a slot; the seconds waited."""
        ...


def next_slot(nth_latest: float | None, now: float, period_s: float) -> float:
    """When the next request may go: ``now``, or ``period_s`` after the ``limit``-th latest
    reserved slot (``None`` while fewer than ``limit`` are reserved)."""
    return now if nth_latest is None else max(now, nth_latest + period_s)


def _check(limit: int, period_s: float) -> None:
    if limit < 1 or not period_s > 0:
        raise ValueError(f"a rate limit needs limit >= 1 and period_s > 0, got {limit=} {period_s=}")


class SlidingWindowLimit:
    """At most ``limit`` requests in any ``period_s`` seconds within this process (thread-safe)."""

    def __init__(self, limit: int, period_s: float, *, name: str = "requests",
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        _check(limit, period_s)
        self.name, self.limit, self.period_s = name, limit, period_s
        self._clock, self._sleep = clock, sleep
        self._slots: deque[float] = deque(maxlen=limit)
        self._lock = threading.Lock()

    def acquire(self) -> float:
        with self._lock:
            nth = self._slots[0] if len(self._slots) == self.limit else None
            slot = next_slot(nth, self._clock(), self.period_s)
            self._slots.append(slot)
        return _wait_until(slot, self._clock, self._sleep, self)


class SharedRateLimit:
    """At most ``limit`` requests in any ``period_s`` seconds for every process using ``path``.

    Parameters
    ----------
    path
        SQLite file shared by the processes (created when absent; WAL mode). The limiter holds
        no connection between requests, so there is nothing to close.
    name
        Which limit (one file can hold several APIs' slots).
    clock, sleep
        Epoch seconds (the processes must share it: the machine's wall clock) and the wait.
    max_ahead_s
        A reserved slot further than this in the future means the clock went back (waiting
        requests cannot push slots that far): the slots are dropped, with a warning, instead of
        every request waiting for the old clock.
    """

    def __init__(self, path: Path, *, name: str, limit: int, period_s: float,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 busy_timeout_s: float = 30.0, max_ahead_s: float = 3600.0) -> None:
        _check(limit, period_s)
        self.path, self.name, self.limit, self.period_s = Path(path), name, limit, period_s
        self._clock, self._sleep = clock, sleep
        self._busy_timeout_s = busy_timeout_s
        self._max_ahead_s = max_ahead_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(connect_shared(self.path, busy_timeout_s)) as conn, immediate(conn):
            for statement in _SCHEMA:
                conn.execute(statement)

    def __repr__(self) -> str:
        return f"SharedRateLimit({str(self.path)!r}, name={self.name!r}, {self.limit}/{self.period_s:g}s)"

    def acquire(self) -> float:
        with closing(connect_shared(self.path, self._busy_timeout_s)) as conn, immediate(conn):
            now = self._clock()
            latest = conn.execute("SELECT MAX(at) FROM rate_limit_slots WHERE name = ?", (self.name,)).fetchone()[0]
            if latest is not None and latest > now + self._max_ahead_s:
                logger.warning("%s: a reserved slot is %.0f s ahead of the clock (the clock went back?); "
                               "dropping the reserved slots in %s", self.name, latest - now, self.path)
                conn.execute("DELETE FROM rate_limit_slots WHERE name = ?", (self.name,))
            slot = next_slot(self._nth_latest(conn), now, self.period_s)
            conn.execute("INSERT INTO rate_limit_slots (name, at) VALUES (?, ?)", (self.name, slot))
            nth = self._nth_latest(conn)
            if nth is not None:  # only the latest `limit` slots matter
                conn.execute("DELETE FROM rate_limit_slots WHERE name = ? AND at < ?", (self.name, nth))
        return _wait_until(slot, self._clock, self._sleep, self)

    def _nth_latest(self, conn: sqlite3.Connection) -> float | None:
        row = conn.execute("SELECT at FROM rate_limit_slots WHERE name = ? ORDER BY at DESC LIMIT 1 OFFSET ?",
                           (self.name, self.limit - 1)).fetchone()
        return None if row is None else float(row[0])


def _wait_until(slot: float, clock: Callable[[], float], sleep: Callable[[float], None],
                limit: SlidingWindowLimit | SharedRateLimit) -> float:
    wait = slot - clock()
    if wait <= 0:
        return 0.0
    logger.info("%s: %.2f s pause to stay under %d requests per %g s", limit.name, wait, limit.limit, limit.period_s)
    sleep(wait)
    return wait


def connect_shared(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    """A connection to a SQLite file shared by processes: WAL (readers never wait for writers),
    a busy timeout (a writer waits for the lock instead of failing), autocommit (callers issue
    ``BEGIN IMMEDIATE`` through :func:`immediate`). Switching a new file to WAL can be BUSY
    while another process does the same: retried until ``busy_timeout_s``."""
    conn = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
    deadline = time.monotonic() + busy_timeout_s
    while True:
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":  # a lock would have raised; this is unsupported
                raise sqlite3.NotSupportedError(
                    f"{path} cannot use WAL (journal_mode stays {mode}): put the file on a local disk")
            conn.execute("PRAGMA synchronous = NORMAL")
            return conn
        except sqlite3.OperationalError as e:
            busy = "locked" in str(e) or "busy" in str(e)
            if busy and time.monotonic() <= deadline:
                logger.debug("%s busy while opening (%s); retrying", path, e)
                time.sleep(0.05)
                continue
            conn.close()
            raise
        except BaseException:
            conn.close()
            raise


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction that takes the write lock up front (two writers never deadlock
    upgrading a read lock); rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
