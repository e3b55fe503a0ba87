"""``signalworks feed`` as a process on the simulated exchange: it stores candles, then SIGTERM stops it
cleanly (exit 0, final health line, the warehouse consistent)."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[2]


class FeedProcess:
    """The child process, its output read as it comes so the test waits on lines with a deadline."""

    def __init__(self, home: Path, *args: str) -> None:
        env = {**os.environ, "SIGNALWORKS_HOME": str(home), "SIGNALWORKS_EXCHANGES": "sim"}
        env.pop("SIGNALWORKS_DATABASE_URL", None)
        self.process = subprocess.Popen([sys.executable, "-m", "orchestration.cli", "feed", *args], cwd=REPO,
                                        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self.changed = threading.Condition()
        self.readers = [threading.Thread(target=self._read, args=(name,), daemon=True) for name in self.lines]
        for reader in self.readers:
            reader.start()

    def _read(self, name: str) -> None:
        for line in getattr(self.process, name):
            with self.changed:
                self.lines[name].append(line)
                self.changed.notify_all()

    def output(self, name: str) -> str:
        with self.changed:
            return "".join(self.lines[name])

    def wait_for(self, condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        with self.changed:
            while not condition():
                assert self.process.poll() is None, f"feed exited before {what}: {self.output('stderr')[-3000:]}"
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"{what} did not happen within {timeout_s} s: {self.output('stderr')[-3000:]}"
                self.changed.wait(min(remaining, 0.05))

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)


def candles(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as connection:
            return int(connection.execute("SELECT count(*) FROM candles WHERE timeframe = '1m'").fetchone()[0])
    except sqlite3.OperationalError:  # not migrated yet
        return 0


def test_sigterm_stops_the_feed_cleanly_after_it_stored_candles(tmp_path: Path) -> None:
    db = tmp_path / "warehouse.db"
    feed = FeedProcess(tmp_path, "--symbols", "3", "--backfill-minutes", "5", "--health-interval", "0.2")
    try:
        feed.wait_for(lambda: candles(db) >= 15, "15 candles (5 minutes of 3 symbols) in the warehouse")
        feed.wait_for(lambda: "health exchange=sim connected=yes symbols=3" in feed.output("stderr"),
                      "a health line")
        feed.process.send_signal(signal.SIGTERM)
        assert feed.process.wait(30) == 0, feed.output("stderr")[-3000:]
        for reader in feed.readers:
            reader.join(30)
    finally:
        feed.kill()
    stderr, stdout = feed.output("stderr"), feed.output("stdout")
    assert "received SIGTERM; shutting down" in stderr
    assert "Traceback" not in stderr
    assert "health exchange=sim connected=no symbols=3" in stderr
    match = re.search(r"feed stopped: (\d+) candles stored", stdout)
    assert match, stdout
    assert 15 <= int(match.group(1)) <= candles(db)  # everything it counted is in the warehouse
    with sqlite3.connect(db) as connection:
        per_symbol = connection.execute(
            "SELECT symbol, count(*), count(DISTINCT ts) FROM candles WHERE timeframe = '1m' GROUP BY symbol").fetchall()
    assert len(per_symbol) == 3 and all(n == distinct >= 5 for _, n, distinct in per_symbol)


def test_a_bad_configuration_exits_2_with_the_reason(tmp_path: Path) -> None:
    feed = FeedProcess(tmp_path, "--exchanges", "nasdaq")
    try:
        assert feed.process.wait(60) == 2
        for reader in feed.readers:
            reader.join(30)
    finally:
        feed.kill()
    assert "invalid configuration" in feed.output("stdout") and "nasdaq" in feed.output("stdout")
