"""Peak memory of a single-run ``candles_1m`` backfill, measured for two lengths in fresh processes.

Each measurement is a new Python process (``subprocess``: no fork after polars has run) that
builds the Definitions on the embedded default (simulated exchange with a frozen clock, SQLite
warehouse and Dagster instance in a temporary SIGNALWORKS home), materialises ``markets_job``,
then runs ``candles_1m_job`` once over a partition range (the run tags a single-run backfill
carries), tracking the N most liquid spot and perpetual symbols. The job includes the asset's
checks, as a real backfill run does. The child prints one JSON line; the parent reports peak RSS
(``ru_maxrss``), rows, seconds and rows/s. Memory that is flat in the number of days is the point:
``ingest_candles`` streams one day at a time.

Run one measurement by hand: ``python -m benchmarks.backfill_memory --days 10 --symbols 150``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.report import Section, Target, table

#: The frozen clock: mid-morning, so yesterday (LAST_DAY) is complete.
NOW = datetime(2024, 3, 12, 9, 30, tzinfo=UTC)
LAST_DAY = date(2024, 3, 11)
MARKET_TYPES = ["spot", "swap"]
PEAK_LIMIT_MB = 1024.0
FLAT_LIMIT = 1.25  # longer run's peak within 25 % of the shorter run's
CHILD_TIMEOUT_S = 900
ROOT = Path(__file__).resolve().parent.parent


def _rss_mb(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, in MB, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process so far (all threads)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def backfill(days: int, symbols: int, checks: bool = False) -> dict[str, Any]:
    """One single-run backfill of ``days`` days ending LAST_DAY; figures as a dict (in this process).

    ``checks``: run the job's asset checks too (each re-reads every day it checks).
    """
    import shutil
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="signalworks-bench-backfill-"))
    try:
        return _backfill(home, days, symbols, checks)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _backfill(home: Path, days: int, symbols: int, checks: bool) -> dict[str, Any]:
    from dagster import AssetKey
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    from orchestration.definitions import build_definitions, build_resources
    from orchestration.settings import Settings
    from resources.coingecko_resource import SimCoinGeckoResource
    from resources.exchanges.resource import ExchangeResource

    settings = Settings(home=home, exchanges=("sim",), start_date=date(2024, 1, 1), candles_1m_symbols=symbols)
    resources = {
        **build_resources(settings),
        "exchanges": ExchangeResource(exchanges=["sim"], frozen_clock=NOW.isoformat()),
        "coingecko": SimCoinGeckoResource(frozen_clock=NOW.isoformat()),
    }
    defs = build_definitions(settings, resources)
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    first = LAST_DAY - timedelta(days=days - 1)
    with _instance(home / "dagster") as instance:
        markets = defs.resolve_job_def("markets_job").execute_in_process(instance=instance, run_config=quiet)
        if not markets.success:
            raise RuntimeError("markets_job failed")
        before_mb, peak_before_mb, cpu_before = _rss_mb("VmRSS"), _peak_mb(), _cpu_seconds()
        job = defs.resolve_job_def("candles_1m_job")
        if not checks:
            job = job.get_subset(asset_selection={AssetKey("candles_1m")}, asset_check_selection=set())
        started = time.perf_counter()
        result = job.execute_in_process(
            instance=instance,
            run_config={**quiet, "ops": {"candles_1m": {"config": {"top_n": symbols, "market_types": MARKET_TYPES}}}},
            tags={ASSET_PARTITION_RANGE_START_TAG: f"{first.isoformat()}|sim",
                  ASSET_PARTITION_RANGE_END_TAG: f"{LAST_DAY.isoformat()}|sim"},
            raise_on_error=False,
        )
        seconds = time.perf_counter() - started
        peak_mb, cpu_seconds = _peak_mb(), _cpu_seconds() - cpu_before
        materializations = result.asset_materializations_for_node("candles_1m")
        per_partition = [m.metadata for m in materializations]  # each partition reports its own figures
        steps = {event.step_key: event.event_specific_data.duration_ms / 1000
                 for event in result.all_events if event.is_step_success and event.step_key}
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    return {
        "days": days, "partitions": len(materializations), "success": result.success,
        "rows": sum(int(m["rows"].value) for m in per_partition if "rows" in m),
        "symbols": max((int(m["symbols_fetched"].value) for m in per_partition if "symbols_fetched" in m), default=0),
        "seconds": seconds, "cpu_seconds": cpu_seconds, "asset_seconds": steps.get("candles_1m", 0.0),
        "check_seconds": sum(v for k, v in steps.items() if k != "candles_1m"), "checks": checks,
        "rss_before_mb": before_mb, "peak_before_mb": peak_before_mb, "peak_mb": peak_mb,
    }


def _instance(dagster_home: Path) -> Any:
    """A SQLite Dagster instance in ``dagster_home``, configured like ``make demo`` (the repo's
    ``deploy/dagster.local.yaml``: exchange concurrency pools with one slot each)."""
    import shutil

    from dagster import DagsterInstance

    dagster_home.mkdir(parents=True, exist_ok=True)
    template = ROOT / "deploy" / "dagster.local.yaml"
    if template.exists():
        shutil.copy(template, dagster_home / "dagster.yaml")
    return DagsterInstance.from_config(str(dagster_home))


def measure_in_subprocess(days: int, symbols: int, checks: bool = False) -> dict[str, Any]:
    """Run :func:`backfill` in a fresh interpreter and return its figures."""
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.backfill_memory", "--days", str(days), "--symbols", str(symbols),
         *(["--checks"] if checks else [])],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False,
    )
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        tail = "\n".join(completed.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"backfill child ({days} days) exited {completed.returncode}:\n{tail}")
    return json.loads(lines[-1])


def run(quick: bool = False, checks: bool = False) -> Section:
    symbols, lengths = (30, (2, 6)) if quick else (150, (10, 30))
    what = "with its asset checks" if checks else "asset step only (--checks adds the asset checks)"
    section = Section(f"Single-run candles_1m backfill on SQLite: peak memory ({symbols} sim symbols, spot + swap)")
    section.add(f"Frozen clock {NOW.isoformat()}; each run ends on {LAST_DAY}; each in a fresh process; {what}.", "")
    results = []
    for days in lengths:
        try:
            results.append(measure_in_subprocess(days, symbols, checks))
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            section.add(f"  {days}-day backfill failed: {error}")
    rows = [[f"{r['days']} days", "yes" if r["success"] else "NO", f"{r['rows']:,}", r["symbols"],
             f"{r['seconds']:.1f}", f"{r['cpu_seconds']:.1f}", f"{r['asset_seconds']:.1f}",
             f"{r['check_seconds']:.1f}",
             f"{r['rows'] / r['asset_seconds'] / 1e3:.0f}" if r["asset_seconds"] else "n/a",
             f"{r['rss_before_mb']:.0f}", f"{r['peak_mb']:.0f}", f"{r['peak_mb'] - r['rss_before_mb']:.0f}"]
            for r in results]
    section.add(*table(("run", "ok", "rows", "symbols", "run s", "CPU s", "asset s", "checks s", "k rows/s (asset)",
                        "RSS before MB", "peak RSS MB", "peak - before MB"), rows))
    section.add("", "  run s = wall time of the whole execute_in_process; CPU s = its user + system CPU time;",
                "  asset s = the candles_1m step (fetch from the simulator + write); checks s = the",
                "  partitioned asset checks, which read every day back; peak RSS = ru_maxrss of the process.")
    for r in results:
        failed = sorted(name for name, passed in r["checks"].items() if not passed)
        if failed:
            section.add(f"  {r['days']} days: checks not passed: {', '.join(failed)}")
    longest = results[-1] if len(results) == len(lengths) else None
    shortest = results[0] if len(results) == len(lengths) else None
    section.targets += [
        Target(f"backfill peak RSS, {lengths[-1]} days", longest["peak_mb"] if longest else None,
               PEAK_LIMIT_MB, "MB", at_least=False),
        Target(f"backfill peak RSS flat: {lengths[-1]}-day / {lengths[0]}-day peak",
               longest["peak_mb"] / shortest["peak_mb"] if longest and shortest else None,
               FLAT_LIMIT, at_least=False),
    ]
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one single-run candles_1m backfill; prints JSON")
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--symbols", type=int, default=150)
    parser.add_argument("--checks", action="store_true", help="run the job's asset checks too")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    figures = backfill(args.days, args.symbols, args.checks)
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
