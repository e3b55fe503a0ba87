"""validate_calls_job opens one DexScreener client and the cache per run, closes both, and every
request of every run counts against the one limit kept in the shared cache file.

Runs go through Dagster against the loopback replay of DexScreener's recorded responses.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from dagster import DagsterInstance

from orchestration.definitions import build_definitions
from orchestration.settings import Settings
from resources.clock import FrozenClock, RunClock
from resources.dexscreener import DexScreenerSource
from resources.exchanges.base import Clock
from resources.social_resources import DexScreenerSession, LiveDexScreenerResource
from resources.warehouse.social import SocialStore
from streaming.events import Event
from tests.support.dexscreener_replay import USD1, DexScreenerReplay
from tests.support.fixtures import shared_fixtures_dir

CLIENTS: list[DexScreenerSource] = []
SESSIONS: list[DexScreenerSession] = []


NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


class RecordingLiveDexScreener(LiveDexScreenerResource):
    """The live resource, remembering what it opened so the test can look at it after the run."""

    def client(self, clock: Clock | None = None) -> DexScreenerSource:
        client = super().client(clock)
        CLIENTS.append(client)
        return client

    def run_clock(self, first_call: datetime | None) -> RunClock:
        """The run reads and waits on a frozen clock; the client under test stays the live one."""
        del first_call
        return FrozenClock(NOW)

    @contextmanager
    def session(self, clock: Clock | None = None) -> Iterator[DexScreenerSession]:
        with super().session(clock) as session:
            SESSIONS.append(session)
            yield session


def _open_files_under(folder: Path) -> list[str]:
    fds = Path("/proc/self/fd")
    assert fds.is_dir(), "this test lists the process's open files through /proc (Linux)"
    found = []
    for fd in fds.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed while listing
            continue
        if target.startswith(str(folder)):
            found.append(target)
    return found


def test_each_run_closes_its_client_and_cache_and_shares_one_limit(tmp_path: Path) -> None:
    CLIENTS.clear()
    SESSIONS.clear()
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump({
        "sources": {"replay": {"window_s": 1.0, "channels": [{"id": "alpha", "weight": 1.0}]}},
        "publishers": [{"name": "everything", "kind": "console", "min_confidence": 0.0}],
    }))
    settings = Settings(home=tmp_path, social_config=tmp_path / "sources.yaml")
    cache_dir = tmp_path / "cache"
    called_at = NOW - timedelta(minutes=10)  # on the run's frozen clock the window closed long ago: no wait
    store = SocialStore.from_url(settings.warehouse_url)
    with DexScreenerReplay(shared_fixtures_dir() / "dexscreener") as replay, \
            DagsterInstance.ephemeral() as instance:
        defs = build_definitions(settings, {"dexscreener": RecordingLiveDexScreener(
            cache_path=str(cache_dir / "dexscreener.sqlite"), base_url=replay.base_url)})
        job = defs.resolve_job_def("validate_calls_job")
        for run_number in range(2):
            ids = store.append([Event.from_message(
                source="replay", channel="alpha", message_id=f"{run_number}", author="a",
                text=f"call {USD1} https://dexscreener.com/solana/{USD1}", ts=called_at).to_record()])
            run = job.execute_in_process(
                run_config={"ops": {"validate_calls_op": {"config": {"event_ids": ids}}}}, instance=instance)
            assert run.success
        requests = len(replay.requests)
    assert requests > 0  # the runs really asked DexScreener
    assert len(SESSIONS) == 2 and len(CLIENTS) == 2  # one client per run, for fresh and cached lookups alike
    assert all(session.client is client for session, client in zip(SESSIONS, CLIENTS, strict=True))
    assert all(client.closed for client in CLIENTS)  # type: ignore[attr-defined]
    assert all(session.cached.cache.closed for session in SESSIONS)
    assert _open_files_under(cache_dir) == []  # nothing of the cache file (or its WAL) left open
    with closing(sqlite3.connect(cache_dir / "dexscreener.sqlite")) as conn:
        slots = conn.execute("SELECT COUNT(*) FROM rate_limit_slots WHERE name = 'dexscreener'").fetchone()[0]
    assert slots == requests  # both runs' requests counted against the one shared limit
