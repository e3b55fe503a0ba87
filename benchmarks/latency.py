"""Market signals from a 1m candle's close to the message at the loopback Telegram stand-in, on a real deployment.

One machine, as the README's embedded default runs it: a SQLite warehouse and a Dagster instance
(``deploy/dagster.local.yaml`` as shipped) in a temporary home; ``dagster-daemon`` loading the code
location from ``workspace.yaml`` with ``new_candles_sensor`` running (every 5 s) and requesting
``market_signals_job`` (strategies -> outbox -> publish op); ``signalworks feed`` on the simulated
exchange on the wall clock; one ``telegram_bot`` publisher pointed at the loopback Telegram Bot API
stand-in (``tests/support/telegram_standin.py``, Telegram's flood limits enforced).

For each market-signal message the stand-in accepts: its receive time (the stand-in's wall clock)
minus the close of the signal's trigger candle (open + 1 minute, from the message), split from the
stored rows and run records into close -> stored (the feed's own "s after the close" per minute),
stored -> run created (the sensor), run created -> started (launch) and run started -> received
(scan, outbox, send). Nothing is faked: every time is taken at its point of measurement.

Signal count: the seed BOS settings fire about 0.7 times a minute over 1,000 simulated symbols, so
the daemon loads :mod:`benchmarks.latency_location` (the real job graph, resources and sensor, BOS
loosened by a config mapping: strength 1.002, volume 1.0x, body 0.5, both directions; about 5.6
signals a minute over 500 symbols) from a workspace file in the temporary home, and the feed tracks
all 500 symbols of ``SIGNALWORKS_SIM_SYMBOLS=500`` at 1m (``--symbols 0``). The latency measured is
the pipeline's, not the strategy's. Only BOS runs (the EMA cross needs 200 hours of 15m history,
funding alerts derivatives snapshots). Signals whose trigger candle closed before the first minute
after the daemon's first run ended are not counted (the feed's backfill: history, not live).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

from benchmarks.latency_parts import (
    LOOSE_BOS,
    Latency,
    RunTimes,
    SignalKey,
    StoredSignal,
    feed_store_lags,
    match_messages,
    origin_key,
    percentile,
    stages,
)
from benchmarks.report import Target

ROOT = Path(__file__).resolve().parents[1]
P95_TARGET_S = 30.0
P95_TARGET = "market: p95 1m candle close -> message at the Telegram stand-in (daemon + feed)"
SIGNALS, QUICK_SIGNALS = 30, 5
BUDGET_S, QUICK_BUDGET_S = 600.0, 240.0
SIM_SYMBOLS = 500
CHAT = "424242"
DRAIN_S = 65.0


def _env(home: Path, standin_url: str, token: str) -> dict[str, str]:
    env = {**os.environ, "SIGNALWORKS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
           "SIGNALWORKS_SOCIAL_CONFIG": str(home / "sources.yaml"), "SIGNALWORKS_EXCHANGES": "sim",
           "SIGNALWORKS_SIM_SYMBOLS": str(SIM_SYMBOLS), "SIGNALWORKS_STRATEGIES": "bos",
           "SIGNALWORKS_TELEGRAM_BOT_API": standin_url, "LATENCY_BOT_TOKEN": token,
           "OMP_WAIT_POLICY": "PASSIVE", "DAGSTER_DISABLE_TELEMETRY": "1"}
    env.pop("SIGNALWORKS_DATABASE_URL", None)
    return env


def _write_config(home: Path) -> None:
    (home / "dagster").mkdir(parents=True)
    (home / "workspace.yaml").write_text(yaml.safe_dump({"load_from": [{"python_file": {
        "relative_path": str(ROOT / "benchmarks" / "latency_location.py"), "attribute": "defs",
        "working_directory": str(ROOT)}}]}))
    shutil.copy(ROOT / "deploy" / "dagster.local.yaml", home / "dagster" / "dagster.yaml")
    (home / "sources.yaml").write_text(yaml.safe_dump({
        "sources": {},
        "publishers": [{"name": "bench_market", "kind": "telegram_bot", "chat_id": CHAT, "chat_kind": "private",
                        "token_env": "LATENCY_BOT_TOKEN", "kinds": ["market"], "min_confidence": 0.0,
                        "max_signal_age_s": 60}],
    }))


def _stored_signals(url: str) -> dict[SignalKey, StoredSignal]:
    import json

    from sqlalchemy import create_engine, select

    from resources.warehouse.schema import signals

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(signals.c.origin, signals.c.payload, signals.c.created_at,
                                             signals.c.status).where(signals.c.kind == "market")).all()
    finally:
        engine.dispose()
    stored = {}
    for origin, payload, created_at, status in rows:
        key = origin_key(origin, json.loads(payload).get("timeframe", "1m"))
        created = created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)
        stored[key] = StoredSignal(key, created.timestamp(), status)
    return stored


def _runs(dagster_home: Path) -> list[RunTimes]:
    from dagster import DagsterInstance, RunsFilter

    with DagsterInstance.from_config(str(dagster_home)) as instance:
        records = instance.get_run_records(filters=RunsFilter(job_name="market_signals_job"))
    return [RunTimes(r.dagster_run.run_id, r.create_timestamp.timestamp(), r.start_time, r.end_time)
            for r in records]


def _wait(condition: object, what: str, timeout_s: float, processes: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args[:3]} exited ({process.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout_s:.0f} s")
        time.sleep(0.5)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(30)


def _measure(home: Path, standin: object, wanted: int, budget_s: float) -> dict[str, object]:
    from tests.support.telegram_standin import TelegramStandIn

    assert isinstance(standin, TelegramStandIn)
    env = _env(home, standin.base_url, standin.token)
    url = f"sqlite:///{home / 'warehouse.db'}"
    bin_dir = Path(sys.executable).parent
    feed_log = (home / "feed.log").open("wb")
    daemon_log = (home / "daemon.log").open("wb")
    feed = subprocess.Popen([str(bin_dir / "signalworks"), "feed", "--symbols", "0", "--backfill-minutes", "30",
                             "--health-interval", "60"], cwd=ROOT, env=env, stdout=feed_log,
                            stderr=subprocess.STDOUT)
    processes = [feed]
    loads: list[float] = []
    try:
        _wait(lambda: b"candles stored" in (home / "feed.log").read_bytes(), "the feed's first stored minute",
              240, processes)
        _runs(home / "dagster")  # creates the instance's SQLite storage here, before the daemon would race us to it
        daemon = subprocess.Popen([str(bin_dir / "dagster-daemon"), "run", "-w", str(home / "workspace.yaml")],
                                  cwd=ROOT, env=env, stdout=daemon_log, stderr=subprocess.STDOUT)
        processes.append(daemon)
        _wait(lambda: any(r.ended for r in _runs(home / "dagster")), "the first market_signals_job run", 240,
              processes)
        # Trigger candles closing from the next minute on are live; earlier ones were the backfill's.
        live_from = (int(time.time()) // 60 + 1) * 60
        print(f"  deployment up: feed + daemon; counting signals whose trigger candle closed from "
              f"{datetime.fromtimestamp(live_from, UTC):%H:%M:%S} UTC", flush=True)
        deadline = time.monotonic() + budget_s
        received = 0
        while time.monotonic() < deadline:
            loads.append(os.getloadavg()[0])
            messages = [(m.plain_text, m.time) for m in list(standin.accepted)]
            received = len(_live(messages, live_from))
            if received >= wanted:
                break
            exited = [p.args[:3] for p in processes if p.poll() is not None]
            if exited:
                raise RuntimeError(f"{exited} exited during the measurement")
            time.sleep(5)
        # Then every signal of the minutes counted so far has had its 60 s (MAX_SIGNAL_AGE) to be sent.
        time.sleep(DRAIN_S)
        stopped_at = time.time()
    finally:
        for process in reversed(processes):
            _stop(process)
        feed_log.close()
        daemon_log.close()
    messages = [(m.plain_text, m.time) for m in standin.accepted]
    stored = _stored_signals(url)
    runs = _runs(home / "dagster")
    lags = feed_store_lags((home / "feed.log").read_text(errors="replace").splitlines())
    matched = match_messages(_live(messages, live_from), stored, runs, lags)
    settled = [s for s in stored.values() if live_from <= s.key.close.timestamp() <= stopped_at - 60]
    return {"latencies": matched.latencies, "duplicates": matched.duplicates, "unknown": matched.unknown,
            "settled": settled, "runs": runs, "loads": loads, "violations": list(standin.violations),
            "live_from": live_from, "stopped_at": stopped_at}


def _live(messages: list[tuple[str, float]], live_from: float) -> list[tuple[str, float]]:
    from benchmarks.latency_parts import message_key

    return [(text, at) for text, at in messages
            if (key := message_key(text)) is not None and key.close.timestamp() >= live_from]


def run(quick: bool = False) -> list[Target]:
    """Print p50 / p95 close -> received with the breakdown; return the p95 target (NOT RUN without
    the shared fixtures the stand-in answers from, or without any signal)."""
    from tests.support.fixtures import PROJECT_ROOT
    from tests.support.telegram_standin import TelegramStandIn

    wanted, budget = (QUICK_SIGNALS, QUICK_BUDGET_S) if quick else (SIGNALS, BUDGET_S)
    fixtures = PROJECT_ROOT.parent / "shared" / "fixtures" / "telegram" / "bot_api"
    not_run = [Target(P95_TARGET, None, P95_TARGET_S, "s", at_least=False, inclusive=True)]
    if not fixtures.is_dir():
        print("market latency: ../shared/fixtures absent (the Telegram stand-in replays its recorded bodies); "
              "skipped\n")
        return not_run
    print(f"Market-signal latency: signalworks feed (sim, {SIM_SYMBOLS} symbols, all at 1m) + dagster-daemon "
          f"(new_candles_sensor every 5 s) + loopback Telegram stand-in; BOS loosened {LOOSE_BOS}; "
          f"until {wanted} signals or {budget / 60:.0f} min", flush=True)
    home = Path(tempfile.mkdtemp(prefix="signalworks-latency-"))
    try:
        _write_config(home)
        with TelegramStandIn(fixtures, clock=time.time) as standin:
            result = _measure(home, standin, wanted, budget)
    except (RuntimeError, TimeoutError) as error:
        print(f"  the deployment did not come up: {error}; logs kept in {home}")
        return not_run
    shutil.rmtree(home, ignore_errors=True)
    return _report(result, wanted)


def _report(result: dict[str, object], wanted: int) -> list[Target]:
    latencies: list[Latency] = result["latencies"]  # type: ignore[assignment]
    settled: list[StoredSignal] = result["settled"]  # type: ignore[assignment]
    loads: list[float] = result["loads"]  # type: ignore[assignment]
    runs: list[RunTimes] = result["runs"]  # type: ignore[assignment]
    statuses: dict[str, int] = {}
    for signal in settled:
        statuses[signal.status] = statuses.get(signal.status, 0) + 1
    minutes = (float(result["stopped_at"]) - float(result["live_from"])) / 60  # type: ignore[arg-type]
    load = f"load average (1 min) during the run: mean {sum(loads) / len(loads):.2f}, max {max(loads):.2f}" \
        if loads else "load average not sampled"
    print(f"  {len(latencies)} signals received in {minutes:.1f} min of live candles ({len(runs)} market_signals_job "
          f"runs); outbox status of the signals of minutes closed >= 60 s before the stop: {statuses or 'none'}; "
          f"duplicate messages {result['duplicates']}, messages without a stored signal {result['unknown']}, "
          f"flood violations at the stand-in {len(result['violations'])}")  # type: ignore[arg-type]
    print(f"  {load}; {os.cpu_count()} CPUs")
    if not latencies:
        print("  no live signal was received: no figure")
        return [Target(P95_TARGET, None, P95_TARGET_S, "s", at_least=False, inclusive=True)]
    totals = [item.total for item in latencies]
    print(f"  {'stage':<28}{'n':>4}{'p50 s':>9}{'p95 s':>9}{'max s':>9}")
    for name, values in {"close -> received": totals, **stages(latencies)}.items():
        if values:
            print(f"  {name:<28}{len(values):>4}{percentile(values, 0.5):>9.2f}{percentile(values, 0.95):>9.2f}"
                  f"{max(values):>9.2f}")
    queue = stages(latencies)["behind earlier messages"]
    if len(queue) == len(totals):
        alone = [total - wait for total, wait in zip(totals, queue, strict=True)]
        runs_sending = len({item.started for item in latencies})
        print(f"  without the wait behind earlier messages of the same run (Telegram's 1 message/s per chat; "
              f"{len(latencies)} messages from {runs_sending} runs): p50 {percentile(alone, 0.5):.2f} s, "
              f"p95 {percentile(alone, 0.95):.2f} s")
    if len(latencies) < wanted:
        print(f"  fewer signals than the {wanted} asked for: the figures cover {len(latencies)}")
    print("  (the strategy decides how many signals there are; the latency measured is the pipeline's)")
    target = Target(P95_TARGET, percentile(totals, 0.95), P95_TARGET_S, "s", at_least=False, inclusive=True)
    print(target.line())
    return [target]


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
