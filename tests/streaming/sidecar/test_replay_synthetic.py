"""The synthetic stream (deterministic and realistic) and its replay into a warehouse."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from resources.clock import StreamClock
from resources.exchanges.sim_assets import ASSETS_BY_BASE
from resources.social_config import SignalworksSocialConfig, SpamConfig
from resources.warehouse.engine import make_engine
from resources.warehouse.social import SocialStore
from streaming.events import Event
from streaming.extract import extract_tokens
from streaming.extract_codecs import b58decode, has_valid_checksum
from streaming.listen import run_listener
from streaming.sources.replay import ReplaySource
from streaming.synthetic import generate_stream, write_stream

START = datetime(2025, 3, 1, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def stream() -> list[dict]:
    return generate_stream(seed=11, start=START, minutes=60)


def _by_kind(stream: list[dict]) -> dict[str, list[dict]]:
    kinds: dict[str, list[dict]] = defaultdict(list)
    for row in stream:
        kinds[row["raw"]["kind"]].append(row)
    return kinds


def test_deterministic_per_seed(stream: list[dict]) -> None:
    assert generate_stream(seed=11, start=START, minutes=60) == stream
    assert generate_stream(seed=12, start=START, minutes=60) != stream


def test_calls_on_four_chains_with_valid_addresses_found_by_the_extractor(stream: list[dict]) -> None:
    kinds = _by_kind(stream)
    calls = kinds["call"] + kinds["echo"]
    assert {row["raw"]["chain"] for row in kinds["call"]} == {"solana", "ethereum", "base", "bsc"}
    for row in calls:
        address, chain = row["raw"]["address"], row["raw"]["chain"]
        if chain == "solana":
            assert len(b58decode(address)) == 32
        else:
            assert has_valid_checksum(address) and address != address.lower()
        found = {(t.chain, t.address) for t in extract_tokens(row["text"])}
        assert (chain, address) in found, row["text"]
    links = " ".join(row["text"] for row in calls)
    for host in ("dexscreener.com", "pump.fun", "etherscan.io", "basescan.org", "bscscan.com"):
        assert host in links


def test_echoes_duplicates_reposts_spam_waves_perps_and_chatter(stream: list[dict]) -> None:
    kinds = _by_kind(stream)
    assert all(kinds[k] for k in ("call", "echo", "duplicate", "repost", "spam", "perp", "chatter"))
    ts = {(r["channel"], r["message_id"]): datetime.fromisoformat(r["ts"]) for r in stream}
    origin = {r["raw"]["call_id"]: r for r in kinds["call"]}
    echoes: dict[str, set[str]] = defaultdict(set)
    for row in kinds["echo"]:
        call = origin[row["raw"]["call_id"]]
        assert row["channel"] != call["channel"]
        delay = ts[(row["channel"], row["message_id"])] - ts[(call["channel"], call["message_id"])]
        assert timedelta(0) < delay <= timedelta(seconds=300)
        echoes[row["raw"]["call_id"]].add(row["channel"])
    assert echoes and all(2 <= len(channels) <= 4 for channels in echoes.values())
    assert any(e["text"] == origin[e["raw"]["call_id"]]["text"] for e in kinds["echo"]), "some exact echoes"

    first_seen = {}
    for position, row in enumerate(stream):
        first_seen.setdefault((row["channel"], row["message_id"]), position)
    for row in kinds["duplicate"]:  # re-delivered later with the same id and content
        earlier = stream[first_seen[(row["channel"], row["message_id"])]]
        assert earlier is not row and earlier["text"] == row["text"] and earlier["ts"] == row["ts"]

    spam = [re.compile(p) for p in SpamConfig().patterns]
    waves: dict[str, list[dict]] = defaultdict(list)
    for row in kinds["spam"]:
        assert any(p.search(row["text"]) for p in spam), row["text"]
        waves[row["raw"]["wave"]].append(row)
    for rows in waves.values():
        times = [datetime.fromisoformat(r["ts"]) for r in rows]
        assert len({r["channel"] for r in rows}) >= 5 and max(times) - min(times) <= timedelta(seconds=120)

    signal = re.compile(r"^(LONG|SHORT) ([A-Z]+)/USDT(?: \d+x)? entry ([\d.]+) SL ([\d.]+) TP ([\d.]+)")
    for row in kinds["perp"]:
        side, base, entry, stop, target = signal.match(row["text"]).groups()  # type: ignore[union-attr]
        assert ASSETS_BY_BASE[base].has_perp
        low, high = sorted((float(stop), float(target)))
        assert low < float(entry) < high and (float(stop) < float(entry)) == (side == "LONG")
    for row in kinds["chatter"] + kinds["perp"]:
        assert extract_tokens(row["text"]) == []


def test_write_stream_and_module_cli(tmp_path: Path) -> None:
    out = tmp_path / "stream.jsonl"
    count = write_stream(out, seed=3, start=START, minutes=10)
    assert [json.loads(line) for line in out.read_text().splitlines()] == generate_stream(seed=3, start=START, minutes=10)
    cli = tmp_path / "cli.jsonl"
    done = subprocess.run([sys.executable, "-m", "streaming.synthetic", str(cli), "--seed", "3", "--minutes", "10",
                           "--start", START.isoformat()], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert cli.read_bytes() == out.read_bytes() and f"wrote {count}" in done.stdout


def test_replay_at_high_speed_into_sqlite_drops_duplicates_and_reposts(tmp_path: Path) -> None:
    rows = generate_stream(seed=5, start=START, minutes=30)
    path = tmp_path / "stream.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    # re-based onto the source's clock, frozen here at an instant SQLite's milliseconds hold exactly
    replayed_at = datetime(2025, 6, 1, 12, 0, 0, 123000, tzinfo=UTC)
    source = ReplaySource(path, speed=1e6, clock=lambda: replayed_at)
    report = asyncio.run(run_listener(SignalworksSocialConfig(), warehouse_url=url, spool_path=tmp_path / "spool.jsonl",
                                      extra_sources=[source], include_configured=False, once=True,
                                      health_interval_s=0))
    expected = [r for r in rows if r["raw"]["kind"] not in ("duplicate", "repost")]
    stored = SocialStore(make_engine(url)).after(0, limit=10_000)
    assert [(s.channel, s.message_id) for s in stored] == [(r["channel"], r["message_id"]) for r in expected]
    kinds = _by_kind(rows)
    assert report.sink.duplicate_keys == len(kinds["duplicate"]) and report.sink.reposts == len(kinds["repost"])
    assert report.stopped_by == "finished" and report.sources["replay"].events == len(rows)
    # time stamps re-based to the replay's clock, the recorded one kept in raw
    assert {s.ts for s in stored} == {replayed_at}
    assert stored[0].raw["recorded_ts"] == expected[0]["ts"]


def test_replay_keeps_recorded_inter_arrival_times_scaled_by_speed(tmp_path: Path) -> None:
    events = [Event.from_message(source="telegram", channel="c", message_id=str(i), author="", text=f"m{i}",
                                 ts=START + timedelta(seconds=s)) for i, s in enumerate((0, 60, 60, 30, 180))]
    lines = [json.dumps(e.to_record()) for e in events]
    lines.insert(2, "{not json")
    path = tmp_path / "stream.jsonl"
    path.write_text("\n".join(lines) + "\n")
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds
        await asyncio.sleep(0)

    emitted: list[Event] = []

    async def emit(event: Event) -> None:
        emitted.append(event)
        await asyncio.sleep(0)

    source = ReplaySource(path, speed=60, rebase=False, loop=True, monotonic=lambda: now[0], sleep=sleep)

    async def two_passes() -> None:
        task = asyncio.create_task(source.run(emit))
        while len(emitted) < 7:
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(two_passes())
    assert slept[:2] == [1.0, 2.0], "60 s then 120 s more (a late, out-of-order message waits for nothing)"
    assert [e.message_id for e in emitted] == ["0", "1", "2", "3", "4", "0~1", "1~1"]
    assert emitted[0] == events[0] and emitted[0].source == "telegram"
    assert source.skipped == 1 and source.health.errors == 1  # the bad line, logged and counted


def test_replay_onto_a_stream_clock_keeps_every_offset_and_moves_the_clock(tmp_path: Path) -> None:
    rows = generate_stream(seed=5, start=START, minutes=10)
    path = tmp_path / "stream.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    target = datetime(2026, 12, 6, 9, 30, 15, tzinfo=UTC)
    clock = StreamClock(target)
    seen: list[tuple[Event, datetime]] = []

    async def emit(event: Event) -> None:
        seen.append((event, clock.now()))

    source = ReplaySource(path, speed=float("inf"), stream_clock=clock, clock=lambda: START)  # no wall time read
    asyncio.run(source.run(emit))
    first = datetime.fromisoformat(rows[0]["ts"])
    assert [e.ts - target for e, _ in seen] == [datetime.fromisoformat(r["ts"]) - first for r in rows]
    assert all(e.raw["recorded_ts"] == r["ts"] for (e, _), r in zip(seen, rows, strict=True))
    # the clock stands at each event as it is emitted (a late re-delivery does not turn it back)
    latest = target
    for event, at in seen:
        latest = max(latest, event.ts)
        assert at == latest
    assert clock.now() == max(e.ts for e, _ in seen)
