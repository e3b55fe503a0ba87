"""Processes and conditions for the pool tests.

Run as ``python -m tests.assets.pool_processes <dagster_home> <exchange> <run_id>``: a plain
process (no Dagster run) that enters ``exchange_slot`` on the instance in ``dagster_home``, prints
``inside`` once it holds the slot and keeps it until its stdin closes (so it never outlives the
test that started it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from dagster import DagsterInstance

from assets.pools import exchange_slot, pool_name

ROOT = Path(__file__).resolve().parents[2]
#: How long a test waits for any one condition before it fails.
DEADLINE_S = 60.0


def claims(instance: DagsterInstance, exchange: str) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """``(held, pending)`` claims of ``exchange``'s pool as ``(run_id, claimant)``; pending
    excludes the assigned requests of holders."""
    info = instance.event_log_storage.get_concurrency_info(pool_name(exchange))
    held = {(slot.run_id, slot.step_key) for slot in info.claimed_slots}
    pending = {(step.run_id, step.step_key) for step in info.pending_steps} - held
    return held, pending


def start_slot_process(dagster_home: Path, exchange: str, run_id: str) -> subprocess.Popen[str]:
    """A plain Python process (no fork of this one) that takes a slot of ``exchange``'s pool."""
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tests.assets.pool_processes", str(dagster_home), exchange, run_id],
                            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


class RecordingLog:
    """A run log that keeps its lines, so a test can wait for them."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()

    def info(self, msg: str, *args: object) -> None:
        self._add(msg % args)

    def warning(self, msg: str, *args: object) -> None:
        self._add(msg % args)

    def _add(self, line: str) -> None:
        with self._changed:
            self.lines.append(line)
            self._changed.notify_all()

    def matching(self, prefix: str) -> list[str]:
        with self._changed:
            return [line for line in self.lines if line.startswith(prefix)]

    def wait_for(self, prefix: str, count: int) -> list[str]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.matching(prefix)) >= count, timeout=DEADLINE_S):
                raise AssertionError(f"fewer than {count} lines starting {prefix!r}: {self.lines}")
            return self.matching(prefix)


class Worker(threading.Thread):
    """A thread that keeps what it raised."""

    def __init__(self, name: str, target: Callable[[], None]) -> None:
        super().__init__(name=name, daemon=True)
        self._work = target
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._work()
        except BaseException as error:  # reported by join_all
            self.error = error


def join_all(*workers: Worker) -> None:
    for worker in workers:
        worker.join(timeout=DEADLINE_S)
        assert not worker.is_alive(), f"thread {worker.name} did not finish within {DEADLINE_S:.0f} s"
        assert worker.error is None, f"thread {worker.name} raised {worker.error!r}"


def _main(dagster_home: str, exchange: str, run_id: str) -> None:
    with DagsterInstance.from_config(dagster_home) as instance, \
            exchange_slot(instance, exchange=exchange, run_id=run_id, step_key="child", poll_s=0.05):
        print("inside", flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    _main(*sys.argv[1:4])
