"""The social half of ``signalworks demo``: replay the synthetic stream through the whole path."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict
from pathlib import Path

from dagster import DagsterInstance, Definitions, SensorResult, build_sensor_context

from orchestration.launcher import launch
from orchestration.settings import Settings
from resources.warehouse.social import SocialStore
from streaming.config import load_social_config

REPLAY_SPEED = 360.0  # the bundled hour of messages in ten seconds


def run_social_demo(settings: Settings, defs: Definitions, instance: DagsterInstance, run_config: dict) -> bool:
    from streaming.arrival import arrival_pricer_from_env
    from streaming.listen import run_listener

    config = load_social_config(settings.social_config)
    arrival = arrival_pricer_from_env({"SIGNALWORKS_DEXSCREENER": settings.dexscreener,
                                       "SIGNALWORKS_DEXSCREENER_BASE_URL": settings.dexscreener_base_url,
                                       "SIGNALWORKS_SIM_SEED": str(settings.sim_seed)}, settings.home)
    store = SocialStore.from_url(settings.warehouse_url)
    before = store.max_event_id()
    started = time.monotonic()
    report = asyncio.run(run_listener(
        config, warehouse_url=settings.warehouse_url, spool_path=settings.home / "spool" / "social_events.jsonl",
        health_interval_s=3600, home=settings.home, speed=REPLAY_SPEED, once=True, arrival=arrival))
    stored = store.max_event_id() - before
    sink = report.sink
    print(f"  signalworks listen (replay x{REPLAY_SPEED:.0f}): {sink.received} messages, {stored} new events "
          f"stored, {sink.duplicate_keys} duplicates and {sink.reposts} re-posts dropped "
          f"({time.monotonic() - started:.1f} s)")
    sensor = defs.resolve_sensor_def("social_events_sensor")
    with build_sensor_context(cursor=str(before), resources=defs.resources, instance=instance,
                              repository_def=defs.get_repository_def()) as context:
        result = sensor(context)
    requests = result.run_requests if isinstance(result, SensorResult) else []
    ok = True
    for request in requests or []:
        started = time.monotonic()
        run = launch(defs, instance, "validate_calls_job", run_config={**request.run_config, **run_config},
                     tags=request.tags)
        ok &= run.success
        calls = len(request.run_config["ops"]["validate_calls_op"]["config"]["event_ids"])
        print(f"  {'validate_calls_job':<24} {calls:>4} events with calls  {'ok' if run.success else 'FAILED':<6} "
              f"{time.monotonic() - started:6.1f} s  run {run.run_id[:8]}")
    _print_publications(settings.home / "publications.jsonl", config)
    return ok


def _print_publications(path: Path, config: object) -> None:
    if not path.exists():
        print("\nNo publication: no call passed validation.\n")
        return
    sent: dict[str, list[dict]] = defaultdict(list)
    for line in path.read_text().splitlines():
        record = json.loads(line)
        sent[record["publisher"]].append(record)
    print("\nWhat each publisher would have sent (dry run; config/sources.yaml):")
    for publisher in config.publishers:  # type: ignore[attr-defined]
        records = sent.get(publisher.name, [])
        kinds = Counter("review" if r["review"] else "sent" for r in records)
        print(f"\n  {publisher.name} ({publisher.kind}, min confidence {publisher.min_confidence:.2f}"
              f"{', chains ' + ','.join(publisher.chains) if publisher.chains else ''}): "
              f"{kinds['sent']} messages, {kinds['review']} to review")
        for record in records[:2]:
            text = record["html"].replace("\n", "\n      ")
            print(f"    -> {text}")
    print()
