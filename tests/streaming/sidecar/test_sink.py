"""WarehouseSink: de-duplication, batching, and no loss when the warehouse goes away.

The outage test stops a real PostgreSQL server (``pg_ctl stop -m fast``) in the middle of a
stream and starts it again; the crash test SIGKILLs a process whose events are spooled.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from resources.warehouse.engine import make_engine
from resources.warehouse.social import SocialStore
from streaming.events import Event
from streaming.listen import with_connect_timeout
from streaming.sink import WarehouseSink
from streaming.spool import Spool
from streaming.supervisor import BackoffPolicy
from tests.streaming.sidecar.builders import make_event, wait_for
from tests.support.fixtures import skip_unless_ci
from tests.support.postgres import PostgresUnavailableError
from tests.support.postgres_control import ControlledPostgres, controlled_postgres
from tests.support.processes import results_of_spawned

REPO = Path(__file__).resolve().parents[3]
FAST_RETRY = BackoffPolicy(initial_s=0.05, max_s=0.4, jitter=0.5)


def _sink(url: str, spool_path: Path, **options: object) -> WarehouseSink:
    return WarehouseSink(lambda: SocialStore(make_engine(with_connect_timeout(url, 2))), Spool(spool_path),
                         retry=FAST_RETRY, linger_s=0.01, **options)  # type: ignore[arg-type]


def _ids(url: str) -> list[str]:
    return [row.message_id for row in SocialStore(make_engine(url)).after(0, limit=100_000)]


async def _emit_all(sink: WarehouseSink, events: list[Event], pause: float = 0.0) -> None:
    for event in events:
        await sink.emit(event)
        if pause:
            await asyncio.sleep(pause)


def test_dedup_drops_redeliveries_and_same_channel_reposts_but_keeps_echoes(sqlite_url: str, tmp_path: Path) -> None:
    call = "CA: 0xaF2E4F3E10B8d06ecEcABBB7F8A7022c6EAb7B07 on #Base"
    events = [
        make_event(1, text=call, seconds=0),
        make_event(1, text=call, seconds=0),  # re-delivered: same key
        make_event(2, text=call.upper().replace("0XAF2E", "0xaf2e"), seconds=120),  # same content, same channel, 2 min later
        make_event(3, channel="beta", text=call, seconds=30),  # echo in another channel: kept
        make_event(4, text=call, seconds=1200),  # outside the 600 s window: kept
        make_event(5, text="something else", seconds=130),
    ]
    sink = _sink(sqlite_url, tmp_path / "spool.jsonl", repost_window_s=600)

    async def scenario() -> None:
        async with sink:
            await _emit_all(sink, events)
            assert await sink.wait_idle(10)

    asyncio.run(scenario())
    assert _ids(sqlite_url) == ["1", "3", "4", "5"]
    stats = sink.stats
    assert (stats.received, stats.duplicate_keys, stats.reposts, stats.written, stats.spooled) == (6, 1, 1, 4, 0)


def test_a_key_already_in_the_warehouse_is_not_written_twice(sqlite_url: str, tmp_path: Path) -> None:
    SocialStore(make_engine(sqlite_url)).append([make_event(i).to_record() for i in range(3)])
    sink = _sink(sqlite_url, tmp_path / "spool.jsonl")

    async def scenario() -> None:
        async with sink:
            await _emit_all(sink, [make_event(i) for i in range(5)])  # a new session: 0..2 again
            assert await sink.wait_idle(10)

    asyncio.run(scenario())
    assert _ids(sqlite_url) == ["0", "1", "2", "3", "4"]
    assert (sink.stats.written, sink.stats.already_stored) == (2, 3)


@pytest.fixture(scope="module")
def pg_server() -> Iterator[ControlledPostgres]:
    """One stoppable server for the module (a test that stops it gets it restarted)."""
    try:
        with controlled_postgres() as server:
            yield server
    except PostgresUnavailableError as error:
        skip_unless_ci(str(error))


_databases = iter(range(1, 1_000))


@pytest.fixture
def pg(pg_server: ControlledPostgres) -> Iterator[tuple[ControlledPostgres, str]]:
    """The server, running, and the URL of a fresh database on it."""
    if not pg_server.running:
        pg_server.start()
    yield pg_server, pg_server.create_database(f"sink_{next(_databases)}")
    if not pg_server.running:
        pg_server.start()


@pytest.mark.postgres
def test_warehouse_goes_away_mid_stream_and_comes_back_every_event_once_in_order(
    pg: tuple[ControlledPostgres, str], tmp_path: Path
) -> None:
    server, url = pg
    events = [make_event(i, channel=("alpha", "beta")[i % 2]) for i in range(150)]
    spool_path = tmp_path / "spool.jsonl"
    sink = _sink(url, spool_path)

    async def scenario() -> None:
        async with sink:
            await _emit_all(sink, events[:40], pause=0.002)
            assert await sink.wait_idle(15)
            assert sink.stats.written == 40 and sink.stats.spooled == 0
            # the server stops while the stream goes on
            emitting = asyncio.create_task(_emit_all(sink, events[40:90], pause=0.01))
            await asyncio.to_thread(server.stop, "fast")
            await emitting
            await wait_for(lambda: sink.stats.spooled > 0 and sink.spool.pending > 0, timeout=10)
            assert not await sink.wait_idle(0.3), "cannot be idle while events wait in the spool"
            # the server comes back while the stream goes on
            emitting = asyncio.create_task(_emit_all(sink, events[90:], pause=0.01))
            await asyncio.to_thread(server.start)
            await emitting
            assert await sink.wait_idle(30)
        assert spool_path.stat().st_size == 0

    asyncio.run(scenario())
    stored = SocialStore(make_engine(url)).after(0, limit=1000)
    assert [(r.channel, r.message_id) for r in stored] == [(e.channel, e.message_id) for e in events]
    assert [r.md5 for r in stored] == [e.content_md5 for e in events]
    assert sink.stats.db_errors >= 1 and sink.stats.flushed_from_spool == sink.stats.spooled > 0
    assert sink.stats.written == 150


@pytest.mark.postgres
def test_warehouse_down_at_start_then_up(pg: tuple[ControlledPostgres, str], tmp_path: Path) -> None:
    server, url = pg
    server.stop()
    sink = _sink(url, tmp_path / "spool.jsonl")

    async def scenario() -> None:
        async with sink:
            await _emit_all(sink, [make_event(i) for i in range(20)])
            await wait_for(lambda: sink.spool.pending == 20, timeout=10)
            await asyncio.to_thread(server.start)
            assert await sink.wait_idle(20)

    asyncio.run(scenario())
    assert _ids(url) == [str(i) for i in range(20)]


_CRASHING_WRITER = """
import asyncio, sys, time
from pathlib import Path
from resources.warehouse.engine import make_engine
from resources.warehouse.social import SocialStore
from streaming.sink import WarehouseSink
from streaming.spool import Spool
from streaming.supervisor import BackoffPolicy
from tests.streaming.sidecar.builders import make_event

async def main():
    url, spool_path, count = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    sink = WarehouseSink(lambda: SocialStore(make_engine(url)), Spool(spool_path),
                         retry=BackoffPolicy(initial_s=600, max_s=600), linger_s=0.01)
    await sink.start()
    for i in range(count):
        await sink.emit(make_event(i))
    while sink.spool.pending < count:
        await asyncio.sleep(0.01)
    print("spooled", sink.spool.pending, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def _unreachable_postgres_url() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/gone?connect_timeout=2"


def test_a_killed_sink_leaves_its_spool_to_the_next_one_flushed_exactly_once(sqlite_url: str, tmp_path: Path) -> None:
    spool_path = tmp_path / "spool.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-c", _CRASHING_WRITER, _unreachable_postgres_url(), str(spool_path), "25"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = process.stdout.readline() if process.stdout else ""
        assert line.strip() == "spooled 25", process.stderr.read() if process.stderr else ""
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    lines = spool_path.read_bytes().splitlines(keepends=True)
    assert len(lines) == 25 and all(line.endswith(b"\n") for line in lines)
    assert [json.loads(line)["message_id"] for line in lines] == [str(i) for i in range(25)]

    # The new sink flushes the spool before anything new, exactly once, even though the first
    # 10 records had reached the warehouse before a crash lost the spool's offset update.
    SocialStore(make_engine(sqlite_url)).append([json.loads(line) for line in lines[:10]])
    sink = _sink(sqlite_url, spool_path)

    async def scenario() -> None:
        async with sink:
            await _emit_all(sink, [make_event(i) for i in range(25, 30)])
            assert await sink.wait_idle(10)

    asyncio.run(scenario())
    assert _ids(sqlite_url) == [str(i) for i in range(30)]
    assert (sink.stats.flushed_from_spool, sink.stats.already_stored, sink.stats.written) == (25, 10, 20)

    again = _sink(sqlite_url, spool_path)  # and a third run finds nothing left to flush

    async def nothing() -> None:
        async with again:
            assert await again.wait_idle(5)

    asyncio.run(nothing())
    assert again.stats.flushed_from_spool == 0 and len(_ids(sqlite_url)) == 30


@pytest.mark.postgres
def test_a_record_the_warehouse_refuses_is_set_aside_and_the_rest_flow(
    pg: tuple[ControlledPostgres, str], tmp_path: Path
) -> None:
    postgres_url = pg[1]
    events = [make_event(i) for i in range(6)]
    events[2] = make_event(2, text="PostgreSQL text cannot hold NUL \x00 bytes")
    spool_path = tmp_path / "spool.jsonl"
    sink = _sink(postgres_url, spool_path)

    async def scenario() -> None:
        async with sink:
            await _emit_all(sink, events)
            assert await sink.wait_idle(10)

    asyncio.run(scenario())
    assert _ids(postgres_url) == ["0", "1", "3", "4", "5"]
    assert sink.stats.rejected == 1
    rejected = (tmp_path / "spool.jsonl.rejected").read_text().splitlines()
    assert [json.loads(line)["message_id"] for line in rejected] == ["2"]


def _first_outage_delay(url: str, spool_path: str, seed: int | None) -> float:
    """The jittered wait a sink picks after its first failed write to an unreachable warehouse."""
    sink = WarehouseSink(lambda: SocialStore(make_engine(url)), Spool(Path(spool_path)),
                         retry=BackoffPolicy(initial_s=10, max_s=10, jitter=1.0), linger_s=0.01, seed=seed)

    async def scenario() -> float:
        await sink.start()
        await sink.emit(make_event(1))
        await wait_for(lambda: sink.stats.spooled == 1, timeout=30)
        await sink.close(final_attempt=False)
        assert sink.stats.db_errors >= 1 and sink.stats.last_retry_delay_s is not None
        return sink.stats.last_retry_delay_s

    return asyncio.run(scenario())


def _outage_child(url: str, spool_path: str, seed: int | None, results: object) -> None:
    results.put(_first_outage_delay(url, spool_path, seed))  # type: ignore[attr-defined]


def _delays_in_two_processes(tmp_path: Path, seed: int | None) -> list[float]:

    url = _unreachable_postgres_url()
    return results_of_spawned(_outage_child, [(url, str(tmp_path / f"spool{i}.jsonl"), seed) for i in range(2)])


def test_two_sidecars_losing_the_warehouse_retry_at_different_times(tmp_path: Path) -> None:
    first, second = _delays_in_two_processes(tmp_path, None)
    assert 0 < first <= 10 and 0 < second <= 10
    assert first != second  # not in lockstep


def test_a_seeded_sink_retries_after_the_same_delay_in_any_process(tmp_path: Path) -> None:
    first, second = _delays_in_two_processes(tmp_path, 99)
    assert first == second == _first_outage_delay(_unreachable_postgres_url(), str(tmp_path / "here.jsonl"), 99)
    assert _first_outage_delay(_unreachable_postgres_url(), str(tmp_path / "other.jsonl"), 7) != first
