"""The social half of ``signalworks demo``: replay the bundled stream through the whole path, on
the stream's own clock.

The replay is re-based to start at one instant (the demo takes the current second) and drives a
:class:`~resources.clock.StreamClock`: the sidecar prices each call at exactly its stream time,
the simulated DexScreener is anchored at the stream's start (its market is a function of the
time since then, not of the calendar), and each validation run starts at its first call and
waits its windows in stream time (a 60 s window at speed 360 costs a sixth of a second). So the
outcome, every call published, sent for review or rejected and why, is the same on every day and
every machine. With the live DexScreener (``SIGNALWORKS_DEXSCREENER=live``) the replay runs on
the real time and meets the real market instead.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dagster import DagsterInstance, Definitions, SensorResult, build_sensor_context

from ml.social.scoring import ScoringParams
from ml.social.validation import Verdict, verdict_of
from orchestration.definitions import build_definitions
from orchestration.launcher import launch
from orchestration.settings import Settings
from resources.clock import StreamClock
from resources.social_config import SignalworksSocialConfig, load_social_config
from resources.social_resources import SimDexScreenerResource
from resources.warehouse.social import SocialStore
from resources.warehouse.validations import CallRecord, ValidationStore, stored_instant
from streaming.events import Event
from streaming.sources.base import Emit, Source

REPLAY_SPEED = 360.0  # the bundled hour of messages in ten seconds, and its validation in ten more


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    calls: int
    success: bool
    seconds: float


@dataclass
class SocialReplay:
    """What :func:`replay_social_stream` did: the listener's counters, the keys (source, channel,
    message id) of every event the replay emitted, and the validation runs."""

    start: datetime
    received: int
    stored: int
    duplicates: int
    reposts: int
    seconds: float
    keys: set[tuple[str, str, str]] = field(default_factory=set)
    runs: list[RunSummary] = field(default_factory=list)


class _Recording:
    """A source passed through, remembering the key of every event it emits."""

    def __init__(self, source: Source, keys: set[tuple[str, str, str]]) -> None:
        self.source = source
        self.name = source.name
        self.finite = getattr(source, "finite", False)
        self._keys = keys

    async def run(self, emit: Emit) -> None:
        async def recording(event: Event) -> None:
            self._keys.add((event.source, event.channel, event.message_id))
            await emit(event)

        await self.source.run(recording)


def _environ(settings: Settings) -> dict[str, str]:
    return {"SIGNALWORKS_DEXSCREENER": settings.dexscreener,
            "SIGNALWORKS_DEXSCREENER_BASE_URL": settings.dexscreener_base_url,
            "SIGNALWORKS_SIM_SEED": str(settings.sim_seed)}


def replay_social_stream(settings: Settings, instance: DagsterInstance, *, start: datetime, speed: float,
                         resources: Mapping[str, object] | None = None,
                         run_config: Mapping[str, Any] | None = None) -> SocialReplay:
    """Replay the configured stream through sidecar, sensor and validation runs.

    With the simulated DexScreener everything runs on the stream's own clock, re-based to
    ``start`` (see the module docstring), so the outcome depends on neither the date nor the
    machine; ``speed`` is stream seconds per real second, for the replay and for the runs'
    waits. ``resources`` replaces resources of the code location (tests: publishers on a
    loopback Telegram).
    """
    from streaming.arrival import arrival_pricer_from_env
    from streaming.listen import build_sources, run_listener

    config = load_social_config(settings.social_config)
    simulated = settings.dexscreener == "sim"
    start = stored_instant(start)  # the stream's events are read back at the warehouse's precision
    clock = StreamClock(start) if simulated else None
    store = SocialStore.from_url(settings.warehouse_url)
    before, count_before = store.max_event_id(), store.count()
    replay = SocialReplay(start=start, received=0, stored=0, duplicates=0, reposts=0, seconds=0.0)
    sources: list[Source] = [_Recording(s, replay.keys) for s in
                             build_sources(config, home=settings.home, speed=speed, replay_clock=clock)]
    arrival = (arrival_pricer_from_env(_environ(settings), settings.home, clock=clock.now, epoch=start, lockstep=True)
               if clock is not None else arrival_pricer_from_env(_environ(settings), settings.home))
    started = time.monotonic()
    report = asyncio.run(run_listener(
        config, warehouse_url=settings.warehouse_url, spool_path=settings.home / "spool" / "social_events.jsonl",
        health_interval_s=3600, home=settings.home, extra_sources=sources, include_configured=False, once=True,
        arrival=arrival))
    replay.seconds = time.monotonic() - started
    replay.received, replay.stored = report.sink.received, store.count() - count_before
    replay.duplicates, replay.reposts = report.sink.duplicate_keys, report.sink.reposts
    overrides = dict(resources or {})
    if simulated:
        overrides["dexscreener"] = SimDexScreenerResource(
            cache_path=str((settings.home / "cache" / "dexscreener.sqlite").resolve()), seed=settings.sim_seed,
            epoch=start.isoformat(), stream_speed=speed)
    defs = build_definitions(settings, overrides)
    replay.runs = _validate(defs, instance, cursor=str(before), run_config=run_config or {})
    return replay


def _validate(defs: Definitions, instance: DagsterInstance, *, cursor: str,
              run_config: Mapping[str, Any]) -> list[RunSummary]:
    sensor = defs.resolve_sensor_def("social_events_sensor")
    with build_sensor_context(cursor=cursor, resources=defs.resources, instance=instance,
                              repository_def=defs.get_repository_def()) as context:
        result = sensor(context)
    requests = (result.run_requests or []) if isinstance(result, SensorResult) else []
    runs = []
    for request in requests:
        started = time.monotonic()
        run = launch(defs, instance, "validate_calls_job", run_config={**request.run_config, **run_config},
                     tags=request.tags)
        calls = len(request.run_config["ops"]["validate_calls_op"]["config"]["event_ids"])
        runs.append(RunSummary(run.run_id, calls, run.success, time.monotonic() - started))
    return runs


def call_verdicts(settings: Settings, keys: set[tuple[str, str, str]]) -> list[tuple[CallRecord, Verdict]]:
    """Every validated call of the replayed events with its verdict, from the warehouse (so a
    demo run again in the same data home shows what the first one decided)."""
    records = ValidationStore(SocialStore.from_url(settings.warehouse_url).engine).calls_of_events(keys)
    return [(record, _verdict(record)) for record in records]


def _verdict(record: CallRecord) -> Verdict:
    rejections = [r for r in str(record.factors.get("rejections") or "").split(",") if r]
    return verdict_of(passed=bool(record.row["passed"]), score=float(record.row["score"]),
                      threshold=float(record.row["threshold"]), rejections=rejections,
                      liquidity_usd=record.row["liquidity_usd"])


def run_social_demo(settings: Settings, defs: Definitions, instance: DagsterInstance, run_config: dict) -> bool:
    """``signalworks demo``'s social part; prints the outcome and returns whether every run succeeded."""
    del defs  # the runs need the code location on the stream's clock: built by replay_social_stream
    config = load_social_config(settings.social_config)
    start = datetime.now(UTC).replace(microsecond=0)
    replay = replay_social_stream(settings, instance, start=start, speed=REPLAY_SPEED, run_config=run_config)
    clock = "the stream's own clock, from " + start.isoformat() if settings.dexscreener == "sim" else "the real time"
    print(f"  signalworks listen (replay x{REPLAY_SPEED:.0f}, {clock}): {replay.received} messages, "
          f"{replay.stored} new events stored, {replay.duplicates} duplicates and {replay.reposts} re-posts "
          f"dropped ({replay.seconds:.1f} s)")
    for run in replay.runs:
        print(f"  {'validate_calls_job':<24} {run.calls:>4} events with calls  {'ok' if run.success else 'FAILED':<6} "
              f"{run.seconds:6.1f} s  run {run.run_id[:8]}")
    _print_verdicts(call_verdicts(settings, replay.keys), config)
    _print_publications(settings.home / "publications.jsonl", config)
    return all(run.success for run in replay.runs)


def _print_verdicts(verdicts: list[tuple[CallRecord, Verdict]], config: SignalworksSocialConfig) -> None:
    """Passed and near-miss calls one per line with their reason and deliveries; rejected calls
    grouped by reason, each token with its number of calls."""
    by_outcome: dict[str, list[tuple[CallRecord, Verdict]]] = defaultdict(list)
    for record, verdict in verdicts:
        by_outcome[verdict.outcome].append((record, verdict))
    windows = sorted({float(record.row["window_s"]) for record, _ in verdicts})
    threshold = config.validation_threshold
    print(f"\nCalls validated ({', '.join(f'{w:g} s' for w in windows)} windows, threshold {threshold:.2f}): "
          f"{len(by_outcome['passed'])} passed, {len(by_outcome['review'])} sent for review, "
          f"{len(by_outcome['rejected'])} rejected")
    for outcome, title in (("passed", "passed, to be published"), ("review", "sent for review (near misses)")):
        if by_outcome[outcome]:
            print(f"\n  {title}:")
        for record, verdict in by_outcome[outcome]:
            row = record.row
            sent = ", ".join(f"{publisher}: {status}" + (f" ({reason})" if reason else "")
                             for publisher, (status, reason) in sorted(record.deliveries.items()))
            reaction = f"{row['reaction_pct']:+.1f} %" if row["reaction_pct"] is not None else "n/a"
            print(f"    {_name(record):<10} {row['chain']:<9} {row['channel']:<17} reaction {reaction:>7}  "
                  f"{verdict.reason}" + (f"  -> {sent}" if sent else "  -> not delivered"))
    groups: dict[str, dict[str, list[float | None]]] = defaultdict(lambda: defaultdict(list))
    shown = {"score": "{:.2f}", "liquidity": "${:,.0f}"}
    for record, verdict in by_outcome["rejected"]:
        kind = verdict.reason.split()[0] if verdict.reason.startswith(("score", "liquidity")) else verdict.reason
        group = {"score": f"score under {threshold:.2f}",
                 "liquidity": f"liquidity under ${ScoringParams().min_liquidity_usd:,.0f}"}.get(kind, kind)
        value = record.row["score"] if kind == "score" else record.row["liquidity_usd"] if kind == "liquidity" else None
        groups[f"{kind}\t{group}"][_name(record)].append(value)
    if groups:
        print("\n  rejected:")
    for key, tokens in sorted(groups.items(), key=lambda item: -sum(map(len, item[1].values()))):
        kind, group = key.split("\t")
        parts = []
        for name, values in sorted(tokens.items(), key=lambda item: (-len(item[1]), item[0])):
            known = sorted(v for v in values if v is not None)
            fmt = shown.get(kind)
            low, high = (fmt.format(known[0]), fmt.format(known[-1])) if known and fmt else ("", "")
            span = "" if not low else f" ({low})" if low == high else f" ({low}..{high})"
            parts.append(f"{name} x{len(values)}{span}")
        kept = ", ".join(part.replace(" ", "\0") for part in parts)  # lines break between tokens only
        print(f"    {group} ({sum(map(len, tokens.values()))} calls):")
        print(textwrap.fill(kept, width=118, initial_indent=" " * 6, subsequent_indent=" " * 6).replace("\0", " "))


def _name(record: CallRecord) -> str:
    return str(record.row["symbol"] or record.row["address"][:8] + "..")


def _print_publications(path: Path, config: SignalworksSocialConfig) -> None:
    if not path.exists():
        print("\nNo publication: no call passed validation.\n")
        return
    sent: dict[str, list[dict]] = defaultdict(list)
    for line in path.read_text().splitlines():
        record = json.loads(line)
        sent[record["publisher"]].append(record)
    print("\nWhat each publisher would have sent (dry run; config/sources.yaml):")
    for publisher in config.publishers:
        records = sent.get(publisher.name, [])
        kinds = Counter("review" if r["review"] else "sent" for r in records)
        print(f"\n  {publisher.name} ({publisher.kind}, min confidence {publisher.min_confidence:.2f}"
              f"{', chains ' + ','.join(publisher.chains) if publisher.chains else ''}): "
              f"{kinds['sent']} messages, {kinds['review']} to review")
        for record in sorted(records, key=lambda r: r["review"])[:2]:  # what was sent first, then reviews
            text = record["html"].replace("\n", "\n      ")
            print(f"    -> {text}")
    print()
