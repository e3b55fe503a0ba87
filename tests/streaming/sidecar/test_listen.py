"""``signalworks listen`` as a process: SIGTERM/SIGINT stop it cleanly, nothing half-written."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from resources.social_config import SignalworksSocialConfig
from resources.warehouse.engine import make_engine
from resources.warehouse.social import SocialStore
from streaming.events import Event
from streaming.listen import ListenerConfigError, build_sources, run_listener, with_connect_timeout
from streaming.sources.base import Emit
from streaming.synthetic import write_stream
from tests.streaming.sidecar.builders import make_event

REPO = Path(__file__).resolve().parents[3]
START = datetime(2025, 3, 1, tzinfo=UTC)


class _Listener:
    """``signalworks listen`` as a child process whose stdout and stderr are read as they come,
    so a test can wait for a line with a deadline instead of sleeping."""

    def __init__(self, home: Path, stream: Path, database_url: str | None, *extra: str) -> None:
        env = {**os.environ, "SIGNALWORKS_HOME": str(home)}
        env.pop("SIGNALWORKS_DATABASE_URL", None)
        if database_url:
            env["SIGNALWORKS_DATABASE_URL"] = database_url
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streaming.listen", "--config", str(home / "absent.yaml"), "--replay", str(stream),
             "--health-interval", "0.2", *extra],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self._lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._changed = threading.Condition()
        self._readers = [threading.Thread(target=self._read, args=(name,), daemon=True) for name in self._lines]
        for reader in self._readers:
            reader.start()

    def _read(self, name: str) -> None:
        for line in getattr(self.process, name):
            with self._changed:
                self._lines[name].append(line)
                self._changed.notify_all()

    def output(self, name: str) -> str:
        with self._changed:
            return "".join(self._lines[name])

    def wait_for(self, condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
        """Return once ``condition()`` holds; fail with ``what`` (and the child's stderr) when the
        child exits first or ``timeout_s`` passes. Checked on every line the child writes, and at
        least every 50 ms for conditions on files."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not condition():
                assert self.process.poll() is None, f"listener exited before {what}: {self.output('stderr')}"
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"{what} did not happen within {timeout_s} s: {self.output('stderr')[-2000:]}"
                self._changed.wait(min(remaining, 0.05))

    def stop(self, signum: signal.Signals, timeout_s: float = 30.0) -> tuple[str, str]:
        """Send ``signum``, wait for the exit (and the end of its output); returns (stdout, stderr)."""
        self.process.send_signal(signum)
        self.process.wait(timeout_s)
        for reader in self._readers:
            reader.join(timeout_s)
            assert not reader.is_alive(), "the listener's output did not end after it exited"
        return self.output("stdout"), self.output("stderr")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)


def _rows(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as connection:
            return int(connection.execute("SELECT count(*) FROM social_events").fetchone()[0])
    except sqlite3.OperationalError:  # not migrated yet
        return 0


def _expected(stream: Path) -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in stream.read_text().splitlines()]
    return [(r["channel"], r["message_id"]) for r in rows if r["raw"]["kind"] not in ("duplicate", "repost")]


def _whole_lines(path: Path) -> list[dict]:
    """Every line of a spool no process writes to any more (a torn last line is an error)."""
    data = path.read_bytes() if path.exists() else b""
    assert not data or data.endswith(b"\n"), "a torn spool line"
    return [json.loads(line) for line in data.splitlines()]


def _complete_lines(path: Path) -> int:
    """Lines of a spool being appended that are complete (the last one may be mid-write)."""
    data = path.read_bytes() if path.exists() else b""
    return data.count(b"\n")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_listener_cleanly_with_everything_written(tmp_path: Path, signum: signal.Signals) -> None:
    stream = tmp_path / "stream.jsonl"
    write_stream(stream, seed=21, start=START, minutes=60)
    home = tmp_path / "home"
    listener = _Listener(home, stream, None, "--speed", "400")
    db = home / "warehouse.db"
    try:
        listener.wait_for(lambda: _rows(db) >= 15, "15 events in the warehouse")
        listener.wait_for(lambda: "health source=replay connected=yes" in listener.output("stderr"),
                          "a health line")
        stdout, stderr = listener.stop(signum)
    finally:
        listener.kill()
    assert listener.process.returncode == 0, stderr
    assert "listener stopped (stop)" in stdout
    assert "health source=replay connected=yes" in stderr
    stored = SocialStore(make_engine(f"sqlite:///{db}")).after(0, limit=10_000)
    assert [(s.channel, s.message_id) for s in stored] == _expected(stream)[: len(stored)]
    assert _whole_lines(home / "spool" / "social_events.jsonl") == []
    received = int(stdout.split("received=")[1].split()[0])
    assert len(stored) >= 15 and received >= len(stored)


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/gone"


def test_sigterm_while_the_warehouse_is_down_spools_whole_lines_and_the_next_run_flushes_them(tmp_path: Path) -> None:
    stream = tmp_path / "stream.jsonl"
    write_stream(stream, seed=22, start=START, minutes=60)
    home = tmp_path / "home"
    spool = home / "spool" / "social_events.jsonl"
    listener = _Listener(home, stream, _closed_port_url(), "--speed", "400")
    try:
        listener.wait_for(lambda: _complete_lines(spool) >= 15, "15 events spooled")
        stdout, stderr = listener.stop(signal.SIGTERM)
    finally:
        listener.kill()
    assert listener.process.returncode == 0, stderr
    spooled = _whole_lines(spool)
    assert f"still_spooled={len(spooled)}" in stdout
    assert [(r["channel"], r["message_id"]) for r in spooled] == _expected(stream)[: len(spooled)]

    # next run, warehouse reachable: the spool is flushed first, exactly once
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    url = f"sqlite:///{home / 'warehouse.db'}"
    report = asyncio.run(run_listener(SignalworksSocialConfig(), warehouse_url=url, spool_path=spool,
                                      replay_path=empty, once=True, health_interval_s=0))
    stored = SocialStore(make_engine(url)).after(0, limit=10_000)
    assert [(s.channel, s.message_id) for s in stored] == [(r["channel"], r["message_id"]) for r in spooled]
    assert report.spool_pending == 0 and _whole_lines(spool) == []


def test_run_listener_with_extra_sources_and_a_stop_event(tmp_path: Path) -> None:
    class Burst:
        name = "burst"

        def __init__(self) -> None:
            self.emitted = asyncio.Event()

        async def run(self, emit: Emit) -> None:
            for index in range(40):
                await emit(make_event(index, channel="burst"))
            self.emitted.set()
            await asyncio.Event().wait()

    url = f"sqlite:///{tmp_path / 'w.db'}"

    async def scenario() -> None:
        stop = asyncio.Event()
        burst = Burst()

        async def stop_once_emitted() -> None:
            with contextlib.suppress(TimeoutError):  # stop anyway: the assertion below says what is missing
                await asyncio.wait_for(burst.emitted.wait(), 30)
            stop.set()

        stopper = asyncio.create_task(stop_once_emitted())
        report = await run_listener(SignalworksSocialConfig(), warehouse_url=url, spool_path=tmp_path / "s.jsonl",
                                    extra_sources=[burst], include_configured=False, stop=stop,
                                    health_interval_s=0.1)
        await stopper
        assert burst.emitted.is_set(), "the source did not emit its 40 events within 30 s"
        assert report.stopped_by == "stop" and report.sink.written == 40
        assert report.sources["burst"].events == 40

    asyncio.run(scenario())
    assert SocialStore(make_engine(url)).count() == 40


def test_enabled_sources_that_cannot_be_built_fail_loudly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SIGNALWORKS_TELEGRAM_API_ID", "SIGNALWORKS_DISCORD_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for section in ("telegram", "discord"):
        config = SignalworksSocialConfig.model_validate({"sources": {"replay": {"enabled": False},
                                                                     section: {"enabled": True}}})
        with pytest.raises(ListenerConfigError, match=f"sources.{section}"):
            build_sources(config, home=tmp_path)
    config = SignalworksSocialConfig.model_validate({"sources": {"replay": {"enabled": False}}})
    with pytest.raises(ListenerConfigError, match="no source"):
        asyncio.run(run_listener(config, warehouse_url="sqlite://", spool_path=tmp_path / "s.jsonl"))


def test_build_sources_defaults_to_the_embedded_synthetic_replay(tmp_path: Path) -> None:
    sources = build_sources(SignalworksSocialConfig(), home=tmp_path)
    assert [s.name for s in sources] == ["replay"] and getattr(sources[0], "finite", False)
    config = SignalworksSocialConfig.model_validate({"sources": {"x": {"enabled": True}}})
    assert [s.name for s in build_sources(config, home=tmp_path)] == ["replay", "x"]


def test_connect_timeout_is_added_to_postgres_urls_only() -> None:
    assert with_connect_timeout("sqlite:///w.db") == "sqlite:///w.db"
    assert with_connect_timeout("postgresql+psycopg://u:p@h/db").endswith("/db?connect_timeout=5")
    assert with_connect_timeout("postgresql+psycopg://h/db?connect_timeout=1").endswith("connect_timeout=1")


def test_events_are_events() -> None:  # the shared builder makes valid, distinct events
    assert isinstance(make_event(1), Event) and make_event(1) != make_event(2)
