"""A Dagster concurrency pool per exchange: ``exchange:<id>`` (e.g. ``exchange:binance``).

Dagster's ``pool=`` argument names one static pool per asset, but candles, markets and
derivatives runs are per exchange, and what must be limited is how many steps talk to the *same*
exchange at once. So each step claims a slot of that exchange's pool through the instance's
concurrency storage before calling the exchange, and frees it afterwards. The pools are ordinary
Dagster pools: they show on the UI's concurrency page and can be set per exchange with
``dagster instance concurrency set exchange:binance 2``.

Limits
    A pool that already has a limit keeps it: a step never changes it. A pool without one gets,
    once, the instance's ``concurrency.pools.default_limit`` or, on an instance that sets none
    (a bare ``DAGSTER_HOME``), :data:`DEFAULT_EXCHANGE_LIMIT` (one step per exchange); the step
    says so in its run log.

Waiting
    A waiting step logs at once and then every :data:`REPORT_EVERY_S` seconds which pool, for how
    long, who holds it and the command that changes the limit.

Steps that die
    The wait is inside the cleanup: leaving the block in any way (an exception, KeyboardInterrupt,
    SIGINT, or SIGTERM, which Dagster turns into an interrupt and which is made to raise here
    outside Dagster) frees the slot or withdraws the pending claim. A process killed outright
    (SIGKILL, OOM) cannot clean up, so every waiting step frees *stale* claims of its pool:

    * a claim whose process is gone: a claim is named ``<step>[<exchange>] pid <pid>@<host>
      #<boot>.<pid namespace>.<start time>``, and a step on the same machine and pid namespace
      sees whether that very process still runs (freed at once);
    * a claim of a run that finished (success, failure, canceled) more than the grace period ago:
      the instance's ``run_monitoring.free_slots_after_run_end_seconds``, or
      :data:`DEFAULT_GRACE_S` when it sets none. This works on a bare instance, without the daemon.

    With the deploy templates the daemon's run monitoring frees the slots of finished runs as well.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from types import FrameType
from typing import Protocol

from dagster import DagsterInstance, DagsterRunStatus
from sqlalchemy.exc import SQLAlchemyError

logger = logging.getLogger(__name__)

#: The limit a pool gets on first use when neither the operator nor the instance set one.
DEFAULT_EXCHANGE_LIMIT = 1
#: Seconds between two "still waiting" lines in the run log.
REPORT_EVERY_S = 30.0
#: Seconds a finished run may keep a slot when the instance does not set
#: ``run_monitoring.free_slots_after_run_end_seconds``.
DEFAULT_GRACE_S = 60.0
#: Seconds between two looks for stale claims while waiting (the first look is immediate).
SWEEP_EVERY_S = 5.0

_FINISHED = frozenset({DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED})
_CLAIMANT = re.compile(r"^(?P<step>.*) pid (?P<pid>\d+)@(?P<host>\S*) #(?P<boot>\w*)\.(?P<ns>\d*)\.(?P<start>\d*)$")


class RunLog(Protocol):
    """What the pool needs of a logger: ``context.log`` or a :class:`logging.Logger`."""

    def info(self, msg: str, *args: object) -> None: ...

    def warning(self, msg: str, *args: object) -> None: ...


def pool_name(exchange: str) -> str:
    return f"exchange:{exchange}"


def limit_command(pool: str) -> str:
    return f"dagster instance concurrency set {pool} <slots>"


@dataclass(frozen=True)
class ProcessIdentity:
    """A process as a claim records it: ``boot``, ``pid_ns`` and ``start`` are empty where the OS
    does not expose them (no ``/proc``)."""

    pid: int
    host: str
    boot: str = ""
    pid_ns: str = ""
    start: str = ""

    def claimant(self, step_key: str, exchange: str) -> str:
        return f"{step_key}[{exchange}] pid {self.pid}@{self.host} #{self.boot}.{self.pid_ns}.{self.start}"


def parse_claimant(claimant: str) -> tuple[str, ProcessIdentity | None]:
    """``(step label, identity)`` of a claim; identity is None for claims named otherwise."""
    match = _CLAIMANT.match(claimant)
    if match is None:
        return claimant, None
    return match["step"], ProcessIdentity(pid=int(match["pid"]), host=match["host"], boot=match["boot"],
                                          pid_ns=match["ns"], start=match["start"])


def _read(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """``(state, start time in clock ticks since boot)`` from ``/proc/<pid>/stat``, None if absent."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the command name may contain spaces and ')'
    return fields[0], fields[19]


@cache
def _machine() -> tuple[str, str, str]:
    """``(host, boot id, pid namespace)`` of this process."""
    boot = (_read("/proc/sys/kernel/random/boot_id") or "").strip().replace("-", "")[:12]
    try:
        pid_ns = "".join(ch for ch in os.readlink("/proc/self/ns/pid") if ch.isdigit())
    except OSError:
        pid_ns = ""
    return socket.gethostname(), boot, pid_ns


def current_process() -> ProcessIdentity:
    host, boot, pid_ns = _machine()
    stat = _proc_stat(os.getpid())
    return ProcessIdentity(pid=os.getpid(), host=host, boot=boot, pid_ns=pid_ns, start=stat[1] if stat else "")


def process_alive(identity: ProcessIdentity) -> bool | None:
    """Whether the process that made a claim still runs: None when this process cannot tell
    (another machine or pid namespace). A zombie has exited, so it counts as gone."""
    me = current_process()
    if (identity.host, identity.boot, identity.pid_ns) != (me.host, me.boot, me.pid_ns):
        return None
    if not identity.boot:  # no /proc (macOS): the pid alone, on the same host
        try:
            os.kill(identity.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    stat = _proc_stat(identity.pid)
    if stat is None:
        return False
    state, start = stat
    return start == identity.start and state not in ("Z", "X")


@dataclass(frozen=True)
class StaleClaim:
    run_id: str
    claimant: str
    reason: str


def stale_claims(instance: DagsterInstance, pool: str, *, grace_s: float) -> list[StaleClaim]:
    """Claims (held slots and pending requests) of ``pool`` whose process is gone or whose run
    finished more than ``grace_s`` seconds ago."""
    info = instance.event_log_storage.get_concurrency_info(pool)
    claims = dict.fromkeys([(s.run_id, s.step_key) for s in info.claimed_slots]
                           + [(p.run_id, p.step_key) for p in info.pending_steps])
    stale = []
    for run_id, claimant in claims:
        _, identity = parse_claimant(claimant)
        if identity is not None and process_alive(identity) is False:
            stale.append(StaleClaim(run_id, claimant, f"its process (pid {identity.pid} on {identity.host}) is gone"))
            continue
        record = instance.get_run_record_by_id(run_id)
        if record is None or record.dagster_run.status not in _FINISHED or record.end_time is None:
            continue
        ended_s = time.time() - record.end_time
        if ended_s >= grace_s:
            stale.append(StaleClaim(run_id, claimant, f"its run ended ({record.dagster_run.status.value}) "
                                                      f"{ended_s:.0f} s ago (grace {grace_s:.0f} s)"))
    return stale


def free_stale_claims(instance: DagsterInstance, pool: str, *, grace_s: float | None = None,
                      log: RunLog | None = None) -> list[StaleClaim]:
    """Free the stale claims of ``pool`` (see :func:`stale_claims`) and log each; returns them."""
    stale = stale_claims(instance, pool, grace_s=grace_period(instance) if grace_s is None else grace_s)
    for claim in stale:
        instance.event_log_storage.free_concurrency_slot_for_step(claim.run_id, claim.claimant)
        (log or logger).warning("freed the claim of %s on pool %s (run %s): %s",
                                claim.claimant, pool, claim.run_id, claim.reason)
    return stale


def grace_period(instance: DagsterInstance) -> float:
    configured = instance.run_monitoring_settings.get("free_slots_after_run_end_seconds")
    return float(configured) if configured else DEFAULT_GRACE_S


def ensure_pool_limit(instance: DagsterInstance, pool: str, *, log: RunLog | None = None) -> int:
    """The limit of ``pool``; a pool without one gets the instance default or
    :data:`DEFAULT_EXCHANGE_LIMIT`. A limit that exists is never changed."""
    storage = instance.event_log_storage
    limits = {limit.name: limit.limit for limit in storage.get_pool_limits()}
    if pool in limits:
        return limits[pool]
    # Dagster has no "set if absent": a limit an operator sets in the milliseconds between the read
    # above and the write below could be overwritten, once, on the pool's very first use.
    instance_default = instance.global_op_concurrency_default_limit
    try:
        if instance_default is not None:
            storage.initialize_concurrency_limit_to_default(pool)
            limit, source = instance_default, "the instance's concurrency.pools.default_limit"
        else:
            storage.set_concurrency_slots(pool, DEFAULT_EXCHANGE_LIMIT)
            limit, source = DEFAULT_EXCHANGE_LIMIT, "Signalworks' default: one step per exchange"
    except SQLAlchemyError:
        # Steps that use a new pool at the same moment all insert its limit; on PostgreSQL all but
        # one fail on the unique key. Whoever won set the limit: use it.
        limits = {limit.name: limit.limit for limit in storage.get_pool_limits()}
        if pool in limits:
            return limits[pool]
        raise
    (log or logger).info("pool %s had no limit: set it to %d (%s); change it with `%s`",
                         pool, limit, source, limit_command(pool))
    return limit


def waiting_message(instance: DagsterInstance, pool: str, *, run_id: str, claimant: str, waited_s: float) -> str:
    info = instance.event_log_storage.get_concurrency_info(pool)
    holders = [f"{s.step_key} (run {s.run_id})" for s in info.claimed_slots]
    queued = [p for p in info.pending_steps if p.assigned_timestamp is None and (p.run_id, p.step_key) != (run_id, claimant)]
    return (f"waiting {waited_s:.0f} s for a slot of pool {pool} (limit {info.limit}, {len(holders)} held"
            f"{', ' + str(len(queued)) + ' other steps waiting' if queued else ''}); "
            f"held by {', '.join(holders) if holders else 'nobody'}; change the limit with `{limit_command(pool)}`")


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Make SIGTERM raise where nothing handles it (outside Dagster, which turns it into an
    interrupt already), so the cleanup of the block runs."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def _exit(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _release(instance: DagsterInstance, run_id: str, claimant: str) -> None:
    storage = instance.event_log_storage
    try:
        storage.free_concurrency_slot_for_step(run_id, claimant)
    except BaseException:
        # a second interrupt arrived during the release: finish it (it is idempotent), then raise
        storage.free_concurrency_slot_for_step(run_id, claimant)
        raise


def _wait_for_slot(instance: DagsterInstance, pool: str, *, run_id: str, claimant: str, poll_s: float,
                   report_every_s: float, grace_s: float, log: RunLog) -> None:
    storage = instance.event_log_storage
    started = time.monotonic()
    next_report = next_sweep = started
    while not storage.claim_concurrency_slot(pool, run_id, claimant).is_claimed:
        now = time.monotonic()
        if now >= next_sweep:
            next_sweep = now + SWEEP_EVERY_S
            if free_stale_claims(instance, pool, grace_s=grace_s, log=log):
                continue
        if now >= next_report:
            next_report = now + report_every_s
            log.info("%s", waiting_message(instance, pool, run_id=run_id, claimant=claimant, waited_s=now - started))
        time.sleep(poll_s)


@contextlib.contextmanager
def exchange_slot(instance: DagsterInstance, *, exchange: str, run_id: str, step_key: str,
                  poll_s: float = 0.5, log: RunLog | None = None, report_every_s: float = REPORT_EVERY_S,
                  grace_s: float | None = None) -> Iterator[None]:
    """Hold one slot of ``exchange``'s pool for the duration of the block (waits while full).

    Instances whose storage has no global concurrency (the in-memory instance of ``materialize``
    in tests) run the block unthrottled. ``report_every_s`` spaces the waiting lines;
    ``grace_s`` overrides the grace period after which a finished run's claim is freed.
    """
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        yield
        return
    run_log = log or logger
    pool = pool_name(exchange)
    claimant = current_process().claimant(step_key, exchange)
    grace = grace_period(instance) if grace_s is None else grace_s
    with _sigterm_raises():
        try:
            ensure_pool_limit(instance, pool, log=run_log)
            _wait_for_slot(instance, pool, run_id=run_id, claimant=claimant, poll_s=poll_s,
                           report_every_s=report_every_s, grace_s=grace, log=run_log)
            yield
        finally:
            _release(instance, run_id, claimant)
