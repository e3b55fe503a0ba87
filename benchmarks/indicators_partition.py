"""One ``indicators`` partition end to end (read, compute, write) on SQLite and PostgreSQL.

Setup (not timed): simulated 1h candles for enough days to cover the 2963-bar look-back, and the
2h..1M candles built from them. Timed: ``build_indicators`` for the last day, every timeframe,
with the time split into reading candles, computing and writing, read from a cProfile of the
call by function name.
"""

from __future__ import annotations

import cProfile
import pstats
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

PHASES = (("read candles", "read_candles"), ("compute", "compute_indicators"),
          ("write indicators", "replace_indicators"))


def _cumulative(stats: dict, function: str) -> float:
    return sum(value[3] for key, value in stats.items() if key[2] == function)


def _prepare(url: str, *, days: int, now: datetime) -> tuple[object, list[str]]:
    from assets.ingest import ingest_candles, ingest_markets
    from assets.mtf import build_multi_timeframe
    from resources.exchanges.sim import SimExchange
    from resources.warehouse.store import Warehouse

    warehouse = Warehouse.from_url(url)
    client = SimExchange("sim", clock=lambda: now)
    markets = ingest_markets(client, warehouse)
    symbols = markets.filter(pl.col("active")).get_column("symbol").to_list()[:150]
    day_list = [(now.date() - timedelta(days=i)).isoformat() for i in range(days)]
    ingest_candles(client, warehouse, timeframe="1h", days=day_list, symbols=symbols)
    build_multi_timeframe(warehouse, exchange="sim", days=day_list, now=now)
    return warehouse, symbols


def _measure(label: str, url: str, *, days: int, now: datetime) -> list[str]:
    from assets.indicators import build_indicators

    warehouse, symbols = _prepare(url, days=days, now=now)
    day = (now.date() - timedelta(days=1)).isoformat()
    build_indicators(warehouse, exchange="sim", days=[day])  # warm caches and imports
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    rows = build_indicators(warehouse, exchange="sim", days=[day])
    profiler.disable()
    total = time.perf_counter() - started
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    parts = [(name, _cumulative(stats, function)) for name, function in PHASES]
    other = total - sum(seconds for _, seconds in parts)
    split = " | ".join(f"{name} {seconds:.2f} s ({seconds / total:.0%})" for name, seconds in parts)
    return [f"  {label:<10} {len(symbols)} symbols, {sum(rows.values()):,} indicator rows over "
            f"{len(rows)} timeframes: {total:.2f} s   {split} | other {other:.2f} s"]


def run(quick: bool = False) -> None:
    """Print where one indicators partition spends its time on both engines."""
    from tests.support.postgres import throwaway_postgres

    days = 8 if quick else 130  # 130 days of 1h cover the 2963-bar look-back of the 1h timeframe
    now = datetime(2024, 6, 1, 1, tzinfo=UTC)
    print(f"One indicators partition, read + compute + write ({days} days of 1h history stored)")
    with tempfile.TemporaryDirectory() as home:
        for line in _measure("SQLite", f"sqlite:///{Path(home) / 'w.db'}", days=days, now=now):
            print(line)
    with throwaway_postgres() as url:
        for line in _measure("PostgreSQL", url, days=days, now=now):
            print(line)
    print()
