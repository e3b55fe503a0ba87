"""Social path latency on loopback, the real thing: a Dagster daemon on a temporary instance, the
sidecar replaying calls, the loopback Telegram Bot API stand-in.

For each call: window close (message time + window) -> the stand-in accepting the message, split
into sensor wait (arrival -> run created), run start (created -> started), validation (started or
window close, whichever is later -> validated) and send (validated -> accepted); beside it the
arrival lag (call -> its arrival snapshot), which is the part of the window the reaction misses.
Run once with the default 60-second window, with calls arriving every 2.5 s for a minute so that
several validation runs wait at once (as in a busy stream), and once with the window set to 0.
The instance is ``deploy/dagster.local.yaml`` as shipped.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from benchmarks.report import Target

ROOT = Path(__file__).resolve().parents[1]
CALLS = 24
SPACING_S = 2.5


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _stream(path: Path, seed: int) -> list[str]:
    """``CALLS`` calls of distinct real-looking Solana mints, ``SPACING_S`` apart."""
    from streaming.extract_codecs import b58encode

    rng = random.Random(seed)
    mints, lines = [], []
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for i in range(CALLS):
        mint = b58encode(bytes(rng.getrandbits(8) for _ in range(32)))
        mints.append(mint)
        lines.append(json.dumps({"source": "replay", "channel": "latency", "message_id": f"{seed}-{i}",
                                 "author": "bench", "text": f"CA {mint} pump.fun/coin/{mint}",
                                 "ts": (start + timedelta(seconds=i * SPACING_S)).isoformat()}))
    path.write_text("\n".join(lines) + "\n")
    return mints


def _measure(home: Path, window_s: float, standin: object, seed: int) -> dict[str, list[float]]:
    from dagster import DagsterInstance
    from sqlalchemy import select

    from resources.social_config import load_social_config
    from resources.warehouse.schema import social_events, validations
    from resources.warehouse.social import SocialStore
    from streaming.arrival import arrival_pricer_from_env
    from streaming.listen import run_listener

    config_path = home / "sources.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["sources"]["replay"]["window_s"] = window_s
    config_path.write_text(yaml.safe_dump(config))
    stream = home / f"stream-{seed}.jsonl"
    mints = _stream(stream, seed)
    url = f"sqlite:///{home / 'warehouse.db'}"
    asyncio.run(run_listener(load_social_config(config_path), warehouse_url=url, spool_path=home / "spool.jsonl",
                             health_interval_s=3600, home=home, replay_path=stream, speed=1.0, once=True,
                             arrival=arrival_pricer_from_env(os.environ, home)))
    deadline = time.time() + 60 + window_s
    while time.time() < deadline:
        sent = {m: next((a for a in standin.accepted if m in a.text), None) for m in mints}  # type: ignore[attr-defined]
        if all(sent.values()):
            break
        time.sleep(0.5)
    store = SocialStore.from_url(url)
    with store.engine.connect() as connection:
        events = {row.message_id: row for row in connection.execute(select(social_events)).all()}
        checked = {row.address: row for row in connection.execute(select(validations)).all() if row.address in mints}
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    with DagsterInstance.get() as instance:
        runs = [r for r in instance.get_run_records() if r.dagster_run.job_name == "validate_calls_job"]
    result: dict[str, list[float]] = {k: [] for k in ("total", "sensor", "start", "validate", "send", "lag")}
    for i, mint in enumerate(mints):
        event = events.get(f"{seed}-{i}")
        accepted = sent.get(mint)
        row = checked.get(mint)
        if event is None or accepted is None or row is None:
            continue
        close = event.ts.timestamp() + window_s
        run = next((r for r in runs if int(r.dagster_run.tags.get("signalworks/first_event", -1)) <= event.event_id
                    <= int(r.dagster_run.tags.get("signalworks/last_event", -1))), None)
        if run is None or run.start_time is None:
            continue
        validated = row.validated_at.timestamp()
        result["total"].append(accepted.time - close)
        result["sensor"].append(run.create_timestamp.timestamp() - event.received_at.timestamp())
        result["start"].append(run.start_time - run.create_timestamp.timestamp())
        result["validate"].append(validated - max(close, run.start_time))
        result["send"].append(accepted.time - validated)
        lag = json.loads(row.factors).get("arrival_lag_s")
        if lag is not None:
            result["lag"].append(float(lag))
    passed = sum(1 for r in checked.values() if r.passed)
    result["missing"] = [float(passed - len(result["total"]))]
    statuses: dict[str, int] = {}
    for record in runs:
        statuses[record.dagster_run.status.value] = statuses.get(record.dagster_run.status.value, 0) + 1
    result["runs"] = [float(len(runs))]
    print(f"  window {window_s:.0f} s: {len(mints)} calls replayed, {passed} passed validation (the simulated "
          f"DexScreener rejects the rest: unlisted or illiquid), {sum(1 for v in sent.values() if v)} sent; "
          f"validation runs: {statuses}")
    return result


P95_TARGET_S = 5.0
P95_TARGET = "social: p95 window close -> sent, window 60 s"


def run(quick: bool = False) -> list[Target]:
    """Print p50 / p95 from window close to send, with the breakdown; return the p95 target
    (NOT RUN without the shared fixtures or without a published call)."""
    from tests.support.fixtures import PROJECT_ROOT
    from tests.support.telegram_standin import TelegramStandIn

    fixtures = PROJECT_ROOT.parent / "shared" / "fixtures" / "telegram" / "bot_api"
    if not fixtures.is_dir():
        print("social latency: ../shared/fixtures absent (the Telegram stand-in replays its recorded bodies); skipped\n")
        return [Target(P95_TARGET, None, P95_TARGET_S, "s", at_least=False, inclusive=True)]
    home = Path(tempfile.mkdtemp(prefix="signalworks-latency-"))
    (home / "dagster").mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.local.yaml", home / "dagster" / "dagster.yaml")
    print("Social path latency: dagster-daemon + sidecar replay + loopback Telegram stand-in "
          f"({CALLS} calls {SPACING_S} s apart; sensor interval 5 s)")
    targets: list[Target] = []
    with TelegramStandIn(fixtures, clock=time.time, per_chat_interval_s=None, group_per_minute=None) as standin:
        (home / "sources.yaml").write_text(yaml.safe_dump({
            "sources": {"replay": {"window_s": 60.0}},
            "validation_threshold": 0.0,
            "publishers": [{"name": "bench", "kind": "telegram_bot", "chat_id": "-1001", "chat_kind": "private",
                            "token_env": "LATENCY_BOT_TOKEN", "min_confidence": 0.0}],
        }))
        env = {**os.environ, "SIGNALWORKS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
               "SIGNALWORKS_SOCIAL_CONFIG": str(home / "sources.yaml"),
               "SIGNALWORKS_TELEGRAM_BOT_API": standin.base_url, "LATENCY_BOT_TOKEN": standin.token,
               "OMP_WAIT_POLICY": "PASSIVE"}
        os.environ.update({k: env[k] for k in ("SIGNALWORKS_SOCIAL_CONFIG", "LATENCY_BOT_TOKEN")})
        daemon = subprocess.Popen([str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w",
                                   str(ROOT / "workspace.yaml")], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(8)  # the daemon loads the code location and starts its sensor loop
            for window, seed in ((60.0, 1), (0.0, 2)):
                figures = _measure(home, window, standin, seed)
                targets += _report(window, figures)
        finally:
            daemon.terminate()
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
    shutil.rmtree(home, ignore_errors=True)
    return targets


def _report(window: float, figures: dict[str, list[float]]) -> list[Target]:
    """Print one window's figures; the p95 target for a real window (none for window 0)."""
    total = figures["total"]
    if not total:
        print(f"  window {window:.0f} s: no call arrived (missing {figures['missing'][0]:.0f})")
        return [Target(P95_TARGET, None, P95_TARGET_S, "s", at_least=False, inclusive=True)] if window else []
    parts = ", ".join(f"{name} p50 {statistics.median(figures[name]):.2f} s" for name in ("sensor", "start",
                                                                                         "validate", "send"))
    if figures["lag"]:
        parts += f"; arrival snapshot {statistics.median(figures['lag']):.2f} s after the call (p50)"
    p95 = _pct(total, 0.95)
    print(f"  window {window:.0f} s: window close -> sent p50 {statistics.median(total):.2f} s, p95 {p95:.2f} s "
          f"({len(total)} published calls, {figures['missing'][0]:.0f} passed but unsent)   [{parts}]")
    if window == 0:
        # Nothing can hide the daemon's sensor loop (at most every 5 s) and a run's start-up here:
        # the issue asks for this case to be reported, the target is for a real window.
        print(f"  REPORT  p95 with the window set to 0: {p95:.2f} s (sensor wait + run start + validation)")
        return []
    target = Target(P95_TARGET, p95, P95_TARGET_S, "s", at_least=False, inclusive=True)
    print(target.line())
    return [target]
