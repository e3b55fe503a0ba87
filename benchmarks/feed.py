"""``signalworks feed`` on the simulated exchange: from a minute's close to its candles stored, 150 symbols.

A SQLite warehouse (WAL, as the embedded default) holds the simulated universe; the feed tracks the
150 most liquid sim markets. The feed's clock is virtual: each minute it is set to the close plus
the settle delay and one cycle runs (150 concurrent fetches through the simulator, one idempotent
slice write). The wall time of that cycle is the processing part of the latency; the time from
the close to the candles being stored is the settle delay (default 2 s, configurable) plus it.
Also measured: the start-up cycle (a 180-minute backfill of every symbol) and the repair of a
30-minute outage. No timing is asserted anywhere: figures and a verdict only.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.report import Section, Target, table

SYMBOLS = 150
MINUTES = 20
#: Budget chosen here: a third of issue 11's 30 s candle-to-chat p95 target.
TARGET_P95_S = 10.0
START = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)


class VirtualClock:
    """Stands where the benchmark puts it; the feed never waits on it here (cycles are called)."""

    def __init__(self, now: datetime) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at

    async def sleep(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _measure(home: Path, minutes: int) -> dict[str, object]:
    import polars as pl

    from ml.marketdata.universe import rank_by_liquidity
    from resources.exchanges.sim import SimExchange
    from resources.warehouse.store import Warehouse
    from streaming.candles.exchange_feed import MINUTE, ExchangeFeed, FeedConfig, stored_cursors
    from streaming.candles.main import Clients

    warehouse = Warehouse.from_url(f"sqlite:///{home / 'warehouse.db'}")
    sim = SimExchange("sim", clock=lambda: START)
    markets = rank_by_liquidity(sim.load_markets())
    spot = markets.filter(pl.col("market_type") == "spot").height
    market_types = ("spot",) if spot >= SYMBOLS else ("spot", "swap")
    warehouse.replace_markets(markets.with_columns(pl.lit(START).cast(pl.Datetime("ms", "UTC")).alias("updated_at")),
                              exchange="sim")
    settle = FeedConfig().settle_s
    clock = VirtualClock(START + timedelta(seconds=settle))
    config = FeedConfig(top_n=SYMBOLS, market_types=market_types)
    feed = ExchangeFeed("sim", client_factory=Clients(clock), warehouse=warehouse, config=config, clock=clock)
    client = feed._factory("sim", market_types)

    await feed.refresh_universe(client)
    feed.cursors = stored_cursors(warehouse, "sim")
    started = time.perf_counter()
    backfill = await feed.cycle(client)
    backfill_s = time.perf_counter() - started

    steady: list[float] = []
    stored: list[int] = []
    for minute in range(1, minutes + 1):
        clock.at = START + minute * MINUTE + timedelta(seconds=settle)
        started = time.perf_counter()
        report = await feed.cycle(client)
        steady.append(time.perf_counter() - started)
        stored.append(report.stored)

    clock.at = START + (minutes + 31) * MINUTE + timedelta(seconds=settle)  # 30 minutes missed
    started = time.perf_counter()
    repair = await feed.cycle(client)
    repair_s = time.perf_counter() - started
    return {"symbols": len(feed.symbols), "market_types": market_types, "settle": settle, "steady": steady,
            "stored": stored, "backfill": (backfill.stored, backfill_s), "repair": (repair.stored, repair_s),
            "failures": len(backfill.failures) + len(repair.failures)}


def run(quick: bool = False) -> list[Section]:
    minutes = 5 if quick else MINUTES
    with tempfile.TemporaryDirectory(prefix="signalworks-feed-") as tmp:
        result = asyncio.run(_measure(Path(tmp), minutes))
    steady: list[float] = result["steady"]  # type: ignore[assignment]
    settle: float = result["settle"]  # type: ignore[assignment]
    p50, p95 = statistics.median(steady), _pct(steady, 0.95)
    backfill_rows, backfill_s = result["backfill"]  # type: ignore[misc]
    repair_rows, repair_s = result["repair"]  # type: ignore[misc]
    section = Section(f"Live 1m feed: close -> stored, {result['symbols']} sim symbols "
                      f"({'+'.join(result['market_types'])}), SQLite")  # type: ignore[arg-type]
    section.add(*table(
        ("cycle", "candles", "p50 s", "p95 s", "max s"),
        [[f"steady minute (x{len(steady)})", f"{min(result['stored'])}-{max(result['stored'])}",  # type: ignore[type-var]
          f"{p50:.3f}", f"{p95:.3f}", f"{max(steady):.3f}"],
         ["start-up backfill (180 min)", f"{backfill_rows:,}", f"{backfill_s:.3f}", "", ""],
         ["repair after 30 min outage", f"{repair_rows:,}", f"{repair_s:.3f}", "", ""]]))
    section.add("", f"  close -> stored = settle delay {settle:.1f} s + cycle: p50 {settle + p50:.2f} s, "
                    f"p95 {settle + p95:.2f} s; failed symbols: {result['failures']}")
    section.targets.append(Target(f"feed close -> 1m candles stored, {result['symbols']} sim symbols, p95 "
                                  f"(settle {settle:.0f} s + cycle)", settle + p95, TARGET_P95_S, unit="s",
                                  at_least=False, inclusive=True))
    return [section]


if __name__ == "__main__":
    for part in run():
        print(part.render())
