"""``python -m benchmarks [PART ...] [--quick] [--checks]``: print the benchmark report.

Exits 0 whether targets are met or missed; 1 only when a part crashed.
"""

from __future__ import annotations

import os

# Before numpy / polars / pyarrow load: idle OpenMP threads must not spin on a 2-core machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

import argparse
import importlib
import importlib.util
import platform
import signal
import sys
import time
import traceback
from importlib.metadata import version

from benchmarks.report import Section, Target

#: part name -> module with ``run(quick=False)``; a run returns Sections (printed here, their targets
#: go into the summary), Targets (the part printed its own figures; its verdicts go into the
#: summary) or None (figures only, no target). Parts whose module is absent are skipped.
PARTS: dict[str, str] = {
    "warehouse": "benchmarks.warehouse_io",
    "memory": "benchmarks.backfill_memory",
    "indicators": "benchmarks.indicators",
    "indicators_partition": "benchmarks.indicators_partition",
    "extraction": "benchmarks.extraction",
    "social_latency": "benchmarks.social_latency",
    "montecarlo": "benchmarks.montecarlo",
    "models": "benchmarks.models",
    "regimes": "benchmarks.regimes",
    "features": "benchmarks.features",
    "walkforward": "benchmarks.walkforward",
    "feed": "benchmarks.feed",
    "strategies": "benchmarks.strategies",
    "cycle": "benchmarks.cycle",
    "latency": "benchmarks.latency",
}


def available_parts() -> list[str]:
    return [name for name, module in PARTS.items() if importlib.util.find_spec(module) is not None]


def _stop_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so context managers stop the throwaway PostgreSQL server."""
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))


def _header(args: argparse.Namespace) -> str:
    import sqlite3

    packages = ", ".join(f"{name} {version(name)}" for name in
                         ("polars", "pyarrow", "pandas", "sqlalchemy", "psycopg", "adbc-driver-postgresql",
                          "dagster"))
    mode = "quick (smoke sizes)" if args.quick else "full"
    return (f"Signalworks benchmarks: {', '.join(args.parts)}; {mode}\n"
            f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
            f"SQLite {sqlite3.sqlite_version}\n{packages}\n"
            f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}; {_load()}")


def _load() -> str:
    """The load average, with a warning when other work competes for the CPUs."""
    one, five, _ = os.getloadavg()
    busy = one > 0.5 * (os.cpu_count() or 1)
    warning = " -- the machine is busy: timings are pessimistic, compare ratios" if busy else ""
    return f"load average {one:.2f} (1 min) {five:.2f} (5 min){warning}"


def main(argv: list[str] | None = None) -> int:
    """Run the chosen parts; 0 whatever the verdicts, 1 only if a part crashed."""
    parts = available_parts()
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("parts", nargs="*", metavar="PART",
                        help=f"parts to run, of {', '.join(parts)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--checks", action="store_true",
                        help="memory: run the backfill job's asset checks too (about 3x slower)")
    args = parser.parse_args(argv)
    unknown = [p for p in args.parts if p not in parts]
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}: choose from {', '.join(parts)}")
    args.parts = list(dict.fromkeys(args.parts)) or parts
    _stop_on_sigterm()
    print(_header(args), flush=True)
    started = time.perf_counter()
    targets: list[Target] = []
    without_target: list[str] = []
    crashed: list[str] = []
    for name in args.parts:
        try:
            returned = _run_part(name, args)
        except Exception:
            traceback.print_exc()
            crashed.append(name)
            continue
        if not returned:
            without_target.append(name)
        for item in returned or []:
            if isinstance(item, Section):
                print(item.render(), flush=True)
                targets += item.targets
            else:
                targets.append(item)
    met = sum(t.verdict == "MET" for t in targets)
    print("\nSummary")
    print("=======")
    for target in targets:
        print(target.line())
    if without_target:
        print(f"  ({', '.join(without_target)}: figures only, no target)")
    for name in crashed:
        print(f"  FAILED  part {name} crashed (traceback above)")
    print(f"\n{met} of {len(targets)} targets met; {time.perf_counter() - started:.0f} s in all; {_load()}.")
    return 1 if crashed else 0


def _run_part(name: str, args: argparse.Namespace) -> list[Section | Target] | None:
    """Import and run one part; its Sections or Targets (None when it has no target)."""
    if name not in ("warehouse", "memory"):
        print(f"\n-- {name} " + "-" * 60, flush=True)
    module = importlib.import_module(PARTS[name])
    kwargs: dict[str, object] = {"quick": args.quick}
    if name == "memory":
        kwargs["checks"] = args.checks
    returned = module.run(**kwargs)
    sys.stdout.flush()
    if returned is None:
        return None
    return [returned] if isinstance(returned, Section) else list(returned)


if __name__ == "__main__":
    sys.exit(main())
