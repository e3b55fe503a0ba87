"""Where one ``Warehouse.replace_candles`` call spends its time, from a cProfile of that call.

The phases are read from the profile by function name (and caller), so nothing here re-implements
the write path; a phase whose function was renamed shows as ``n/a`` rather than a wrong figure.
cProfile adds a little overhead to Python-level calls; the big phases are C calls and barely move.
"""

from __future__ import annotations

import cProfile
import pstats
import time
from collections.abc import Callable

# (label, function, caller or None, sign): a phase is the sum of signed cumulative times.
Phase = tuple[str, list[tuple[str, str | None, int]]]

POSTGRES_PHASES: list[Phase] = [
    ("cast + slice check (polars)", [("replace_candles", None, 1), ("replace_slice", None, -1),
                                     ("bar_session", None, -1)]),
    ("ADBC connect (pooled: 0 when reused)", [("connect", "adbc_connection", 1)]),
    ("series lock + id lookup", [("lock", "replace_slice", 1), ("series_ids", "replace_slice", 1)]),
    ("dedupe + sort + series ids (polars)", [("to_bars", None, 1)]),
    ("read the slice's stored bars", [("read_bars", None, 1)]),
    ("compare stored and new (polars)", [("plan_write", None, 1)]),
    ("DELETE the slice (only if a bar changed)", [("delete_bars", None, 1)]),
    ("ensure month partitions", [("ensure_month_partitions", None, 1)]),
    ("polars -> Arrow", [("to_arrow", None, 1)]),
    ("COPY (adbc_ingest) incl. index", [("adbc_ingest", "ingest", 1)]),
    ("commit", [("commit", "bar_session", 1)]),
]

SQLITE_PHASES: list[Phase] = [
    ("cast + slice check (polars)", [("replace_candles", None, 1), ("replace_slice", None, -1),
                                     ("bar_session", None, -1)]),
    ("series id lookup", [("series_ids", "replace_slice", 1)]),
    ("dedupe + sort + series ids (polars)", [("to_bars", None, 1)]),
    ("read the slice's stored bars", [("read_bars", None, 1)]),
    ("compare stored and new (polars)", [("plan_write", None, 1)]),
    ("DELETE the slice (only if a bar changed)", [("delete_bars", None, 1)]),
    ("polars -> Python tuples (to_sqlite_rows)", [("to_sqlite_rows", None, 1)]),
    ("executemany INSERT incl. index", [("<method 'executemany' of 'sqlite3.Cursor' objects>", "sqlite_insert", 1)]),
    ("COMMIT", [("<method 'commit' of 'sqlite3.Connection' objects>", None, 1)]),
]


def profile_phases(call: Callable[[], object], phases: list[Phase]) -> tuple[float, list[tuple[str, float | None]]]:
    """Run ``call`` once under cProfile; its wall seconds and the seconds of each phase."""
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    try:
        call()
    finally:
        profiler.disable()
    total = time.perf_counter() - start
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    found: list[tuple[str, float | None]] = []
    for label, terms in phases:
        values = [_cumulative(stats, function, caller) for function, caller, _ in terms]
        if any(v is None for v in values):
            found.append((label, None))
            continue
        found.append((label, sum(sign * v for (_, _, sign), v in zip(terms, values, strict=True))))  # type: ignore[operator]
    known = sum(v for _, v in found if v is not None)
    found.append(("other (Python glue, connection close, ...)", max(total - known, 0.0)))
    return total, found


def _cumulative(stats: dict, function: str, caller: str | None) -> float | None:
    """Cumulative seconds of ``function`` (only the calls made by ``caller`` when given)."""
    total, seen = 0.0, False
    for (_file, _line, name), (_cc, _nc, _tt, cumulative, callers) in stats.items():
        if name != function:
            continue
        if caller is None:
            total += cumulative
            seen = True
            continue
        for (_cfile, _cline, caller_name), caller_stats in callers.items():
            if caller_name == caller:
                total += caller_stats[3]
                seen = True
    return total if seen else None


def phase_lines(title: str, total: float, phases: list[tuple[str, float | None]]) -> list[str]:
    lines = [f"  {title}: {total:.3f} s under cProfile"]
    for label, seconds in phases:
        if seconds is None:
            lines.append(f"    {label:<44} n/a (not called, or renamed)")
        else:
            lines.append(f"    {label:<44} {seconds:7.3f} s  {100 * seconds / total:5.1f} %")
    return lines
