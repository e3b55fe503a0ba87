"""Production-sized market cycles, run as deployed: the code location served by
``dagster-webserver`` (``orchestration/launcher.py``), each run launched through its GraphQL API in a
process of its own by Dagster's default run launcher, at most as many market runs at once as the
instance templates allow (their ``signalworks/lane: market`` cap).

Setup (not timed): five simulated venues with ``SIM_SYMBOLS`` assets, whose 400 most liquid spot
markets are tracked in 1h and 150 in 1m; the 1h history of the full indicator look-back (2963 bars,
124 days; the 2h..1M candles built from it), three days of 1m candles (2963 bars are 2.1 days), the
5m and 15m candles of the look-back (11 and 30 days: the 1m retention), today's candles and
indicators as the previous tick left them. The history is simulated for the first venue and copied
to the others under their own symbols; today's candles come from each venue's own simulator.

Timed, on SQLite and on PostgreSQL (Dagster's storage and the warehouse in two databases of a
throwaway server):

- the hourly cycle: ``candles_1h_job`` (``candles_1h``, ``candles_mtf``, ``indicators`` and their
  checks) for today's partition of 1 venue, then of 5 venues (a run per venue, as the schedule
  requests them); one new closed 1h candle per symbol each;
- the same partition of one venue as ``dagster asset materialize`` runs it (the implicit asset job
  with Dagster's default multiprocess executor, a process per step): the executor this replaced;
- the 1m cycle: ``candles_1m_job`` for 5 venues x 150 symbols, five new closed 1m candles each.

Wall time from the first launch to the last run's end; peak memory (VmHWM) of each run's process
and the peak of all run processes (with their step processes) together; the share of the runs'
time spent starting processes: a run's launch to its RUN_START event, and a step worker's start to
its STEP_START event.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from benchmarks.report import Section, Target, table

ROOT = Path(__file__).resolve().parents[1]
VENUES = ("sim_binance", "sim_bybit", "sim_okx", "sim_bitget", "sim_mexc")
#: Assets of each simulated venue: about 62 % of its markets are spot, so 700 give 400+ spot symbols.
SIM_SYMBOLS = 700
#: The hourly schedule's 12:02 tick; the previous tick (11:02) left the warehouse as set up.
HOURLY_TICK = datetime(2024, 6, 12, 12, 2, tzinfo=UTC)
#: A 5-minute tick of the 1m schedule; the tick before it left the warehouse as set up.
MINUTE_TICK = datetime(2024, 6, 12, 14, 10, tzinfo=UTC)
CYCLE_TARGET_S = 300.0
MINUTE_TARGET_S = 60.0
#: Sampling period of the run processes' memory.
SAMPLE_S = 0.25


@dataclass(frozen=True)
class Scale:
    symbols_1h: int
    symbols_1m: int
    history_days: int
    minute_days: int
    venues: tuple[str, ...]
    #: Days of 5m and 15m candles before today: what the indicators' look-back reads of them.
    subhour_days: dict[str, int] = field(default_factory=dict)


#: The 2963-bar indicator look-back is 10.3 days of 5m and 30.9 days of 15m candles; 1m candles, from
#: which the 15m ones are built, are kept 30 days (SIGNALWORKS_RETENTION_1M_DAYS).
FULL = Scale(symbols_1h=400, symbols_1m=150, history_days=125, minute_days=3, venues=VENUES,
             subhour_days={"5m": 11, "15m": 30})
QUICK = Scale(symbols_1h=30, symbols_1m=10, history_days=4, minute_days=1, venues=VENUES[:2],
              subhour_days={"5m": 1, "15m": 1})


def market_lane_cap() -> int:
    """How many market-lane runs the instance templates run at once."""
    config = yaml.safe_load((ROOT / "deploy" / "dagster.local.yaml").read_text())
    return next(limit["limit"] for limit in config["concurrency"]["runs"]["tag_concurrency_limits"]
                if limit.get("value") == "market")


# -- setup -------------------------------------------------------------------------------------------
def _days(last: datetime, count: int) -> list[str]:
    return [(last.date() - timedelta(days=i)).isoformat() for i in reversed(range(count))]


def _tracked(warehouse: Any, venue: str, timeframe: str, top_n: int) -> list[str]:
    from ml.marketdata.universe import tracked_symbols

    return tracked_symbols(warehouse.read_markets(), warehouse.read_declarations(), exchange=venue,
                           timeframe=timeframe, top_n=top_n, market_types=["spot"])


def _ingest(warehouse: Any, venue: str, *, clock: datetime, timeframe: str, days: list[str],
            symbols: list[str]) -> None:
    from assets.ingest import ingest_candles
    from resources.exchanges.sim import SimExchange

    client = SimExchange(venue, symbols=SIM_SYMBOLS, clock=lambda: clock)
    report = ingest_candles(client, warehouse, timeframe=timeframe, days=days, symbols=symbols)
    if report.all_failed or report.unreachable:
        raise RuntimeError(f"setup of {venue} {timeframe} failed: {report.summary()}")


def _copy_history(warehouse: Any, source: str, target: str, *, before: datetime,
                  symbol_map: dict[str, str], timeframes: Sequence[str] | None = None) -> None:
    """``source``'s candles of ``timeframes`` (default: 1h and the 2h..1M ones) opening before ``before``,
    stored as ``target``'s under the symbols ``symbol_map`` gives them."""
    import polars as pl

    from ml.marketdata.resample import MTF_TIMEFRAMES

    for timeframe in timeframes or ("1h", *MTF_TIMEFRAMES):
        frame = warehouse.read_candles(timeframe=timeframe, exchange=source, end=before)
        frame = frame.filter(pl.col("symbol").is_in(list(symbol_map)))
        if frame.is_empty():
            continue
        frame = frame.with_columns(pl.col("symbol").replace_strict(symbol_map), exchange=pl.lit(target))
        start = frame.get_column("ts").min()
        warehouse.replace_candles(frame, exchange=target, timeframe=timeframe, start=start, end=before,
                                  symbols=sorted(symbol_map.values()))


def steady_state(warehouse_url: str, scale: Scale) -> dict[str, dict[str, int]]:
    """Store what the cycles find in production (see the module docstring); timeframe -> venue ->
    symbols tracked."""
    from assets.indicators import build_indicators
    from assets.ingest import ingest_markets
    from assets.mtf import build_multi_timeframe
    from assets.subhour import build_subhour_candles
    from resources.exchanges.sim import SimExchange
    from resources.warehouse.store import Warehouse

    warehouse = Warehouse.from_url(warehouse_url)
    first, *others = scale.venues
    # the first venue's previous tick was 11:02 (the timed 1-venue cycle is its 12:02 tick); the
    # others' was 12:02 (the timed 5-venue cycle is their 13:02 tick, the first venue's 12:02 again)
    previous = {first: HOURLY_TICK - timedelta(hours=1), **dict.fromkeys(others, HOURLY_TICK)}
    today = HOURLY_TICK.replace(hour=0, minute=0)
    for venue in scale.venues:
        at = previous[venue]
        ingest_markets(SimExchange(venue, symbols=SIM_SYMBOLS, clock=lambda at=at: at), warehouse)
    hourly = {venue: _tracked(warehouse, venue, "1h", scale.symbols_1h) for venue in scale.venues}
    minute = {venue: _tracked(warehouse, venue, "1m", scale.symbols_1m) for venue in scale.venues}
    history = _days(today - timedelta(days=1), scale.history_days)
    _ingest(warehouse, first, clock=previous[first], timeframe="1h", days=history, symbols=hourly[first])
    build_multi_timeframe(warehouse, exchange=first, days=history, now=today)
    minute_days = _days(today - timedelta(days=1), scale.minute_days)
    _ingest(warehouse, first, clock=previous[first], timeframe="1m", days=minute_days, symbols=minute[first])
    for timeframe, days in scale.subhour_days.items():  # as candles_subhour built them from the 1m candles
        _ingest(warehouse, first, clock=previous[first], timeframe=timeframe,
                days=_days(today - timedelta(days=1), days), symbols=minute[first])
    for venue in others:
        symbol_map = dict(zip(hourly[first], hourly[venue], strict=False))
        _copy_history(warehouse, first, venue, before=today, symbol_map=symbol_map)
        minute_map = dict(zip(minute[first], minute[venue], strict=False))
        _copy_history(warehouse, first, venue, before=today, symbol_map=minute_map, timeframes=("1m", "5m", "15m"))
    for venue in scale.venues:
        today_only = [today.date().isoformat()]
        _ingest(warehouse, venue, clock=previous[venue], timeframe="1h", days=today_only, symbols=hourly[venue])
        _ingest(warehouse, venue, clock=MINUTE_TICK - timedelta(minutes=5), timeframe="1m", days=today_only,
                symbols=minute[venue])
        build_multi_timeframe(warehouse, exchange=venue, days=today_only, now=previous[venue])
        build_subhour_candles(warehouse, exchange=venue, start=today, end=today + timedelta(days=1),
                              now=MINUTE_TICK - timedelta(minutes=5))
        build_indicators(warehouse, exchange=venue, days=today_only)
    return {"1h": {venue: len(symbols) for venue, symbols in hourly.items()},
            "1m": {venue: len(symbols) for venue, symbols in minute.items()}}


# -- measuring runs ------------------------------------------------------------------------------------
def _status(pid: int) -> dict[str, int]:
    """VmHWM and VmRSS of ``pid`` in kB (empty once it has exited)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return {line.split(":")[0]: int(line.split()[1]) for line in text.splitlines()
            if line.startswith(("VmHWM:", "VmRSS:"))}


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@dataclass
class MemoryWatch:
    """Samples the run processes (from their RUN_START event's pid) and their step processes."""

    instance: Any
    run_ids: list[str] = field(default_factory=list)
    peak_kb: dict[str, int] = field(default_factory=dict)
    peak_total_kb: int = 0
    _pids: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _pid(self, run_id: str) -> int | None:
        from dagster import DagsterEventType

        if run_id not in self._pids:
            started = self.instance.all_logs(run_id, of_type=DagsterEventType.RUN_START)
            if started and started[0].dagster_event is not None and started[0].dagster_event.pid:
                self._pids[run_id] = started[0].dagster_event.pid
        return self._pids.get(run_id)

    def sample(self) -> None:
        total = 0
        for run_id in list(self.run_ids):
            pid = self._pid(run_id)
            if pid is None:
                continue
            status = _status(pid)
            if not status:
                continue
            self.peak_kb[run_id] = max(self.peak_kb.get(run_id, 0), status.get("VmHWM", 0))
            total += status.get("VmRSS", 0) + sum(_status(child).get("VmRSS", 0) for child in _children(pid))
        self.peak_total_kb = max(self.peak_total_kb, total)

    def loop(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            self.sample()

    @contextlib.contextmanager
    def running(self) -> Iterator[MemoryWatch]:
        thread = threading.Thread(target=self.loop, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()


@dataclass(frozen=True)
class Cycle:
    label: str
    runs: int
    wall_s: float
    failed: tuple[str, ...]
    run_peak_mb: float
    total_peak_mb: float
    startup_s: float
    run_time_s: float
    #: Symbols that got the tick's newest closed candle, summed over the venues, of those tracked.
    covered: tuple[int, int] = (0, 0)
    #: Seconds from STEP_START to the step's end, summed over the runs, per step.
    step_s: dict[str, float] = field(default_factory=dict)

    @property
    def startup_share(self) -> float:
        return self.startup_s / self.run_time_s if self.run_time_s else 0.0


def step_seconds(instance: Any, run_ids: Sequence[str]) -> dict[str, float]:
    """Seconds each step took (its STEP_START to its success or failure), summed over ``run_ids``."""
    from dagster import DagsterEventType

    ends = (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE)
    totals: dict[str, float] = {}
    for run_id in run_ids:
        started: dict[str, float] = {}
        for entry in instance.all_logs(run_id):
            event = entry.dagster_event
            if event is None or not event.step_key:
                continue
            if event.event_type == DagsterEventType.STEP_START:
                started[event.step_key] = entry.timestamp
            elif event.event_type in ends and event.step_key in started:
                totals[event.step_key] = totals.get(event.step_key, 0.0) + entry.timestamp - started.pop(event.step_key)
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def _startup(instance: Any, run_id: str) -> tuple[float, float]:
    """(seconds starting processes, seconds from launch to end) of one run, from its events."""
    from dagster import DagsterEventType

    first: dict[DagsterEventType, float] = {}
    workers: dict[str, float] = {}
    startup = 0.0
    end = 0.0
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        kind = event.event_type
        first.setdefault(kind, entry.timestamp)
        end = max(end, entry.timestamp)
        if kind == DagsterEventType.STEP_WORKER_STARTING and event.step_key:
            workers[event.step_key] = entry.timestamp
        elif kind == DagsterEventType.STEP_START and event.step_key in workers:
            startup += entry.timestamp - workers.pop(event.step_key)
    launched = first.get(DagsterEventType.RUN_STARTING, first.get(DagsterEventType.RUN_ENQUEUED, end))
    startup += first.get(DagsterEventType.RUN_START, launched) - launched
    return startup, end - launched


def newest_closed(clock: datetime, timeframe: str) -> datetime:
    """Open time of the newest ``timeframe`` candle closed at ``clock``."""
    from ml.marketdata.timeframes import timeframe_ms

    length = timeframe_ms(timeframe)
    closed_end = int(clock.timestamp() * 1000) // length * length
    return datetime.fromtimestamp((closed_end - length) / 1000, tz=UTC)


def covered(warehouse_url: str, venues: Sequence[str], *, timeframe: str, clock: datetime,
            tracked: dict[str, int]) -> tuple[int, int]:
    """(symbols holding the newest closed ``timeframe`` candle at ``clock``, symbols tracked) over ``venues``."""
    from resources.warehouse.store import Warehouse

    warehouse = Warehouse.from_url(warehouse_url)
    opened = newest_closed(clock, timeframe)
    found = sum(warehouse.read_candles(timeframe=timeframe, exchange=venue, start=opened,
                                       end=opened + timedelta(milliseconds=1)).get_column("symbol").n_unique()
                for venue in venues)
    return found, sum(tracked[venue] for venue in venues)


def run_cycle(label: str, launcher: Any, instance: Any, *, job: str, venues: Sequence[str], day: str,
              clock: datetime, cap: int, asset_selection: Sequence[Any] | None = None) -> Cycle:
    """Launch ``job`` for ``day`` of each venue (at most ``cap`` runs at once) and wait for all."""
    from dagster import MultiPartitionKey
    from dagster_graphql import DagsterGraphQLClient

    port = int(launcher.url.rsplit(":", 1)[1])
    client = DagsterGraphQLClient("127.0.0.1", port_number=port, timeout=120)
    # Dagster replaces a resource's whole configuration with the run config's (dagster-io/dagster
    # #12898): given only the frozen clock, the runs would fall back to the 87-asset default universe.
    exchanges = {"exchanges": list(VENUES), "sim_symbols": SIM_SYMBOLS, "frozen_clock": clock.isoformat()}
    config = {"resources": {"exchanges": {"config": exchanges}},
              "loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    pending = list(venues)
    active: list[str] = []
    watch = MemoryWatch(instance)
    started = time.perf_counter()
    with watch.running():
        while pending or active:
            while pending and len(active) < cap:
                key = MultiPartitionKey({"date": day, "exchange": pending.pop(0)})
                run_id = client.submit_job_execution(job, run_config=config, tags={"dagster/partition": str(key)},
                                                     asset_selection=list(asset_selection) if asset_selection else None)
                active.append(run_id)
                watch.run_ids.append(run_id)
            time.sleep(0.2)
            active = [r for r in active if not instance.get_run_by_id(r).is_finished]
    wall = time.perf_counter() - started
    failed = tuple(r for r in watch.run_ids if not instance.get_run_by_id(r).is_success)
    timings = [_startup(instance, run_id) for run_id in watch.run_ids]
    cycle = Cycle(label, len(watch.run_ids), wall, failed,
                  run_peak_mb=max(watch.peak_kb.values(), default=0) / 1024, total_peak_mb=watch.peak_total_kb / 1024,
                  startup_s=sum(s for s, _ in timings), run_time_s=sum(t for _, t in timings),
                  step_s=step_seconds(instance, watch.run_ids))
    print(f"  measured: {_rows([cycle])[0]}", flush=True)  # progress, before the section prints
    return cycle


# -- one engine --------------------------------------------------------------------------------------
def measure_engine(engine: str, *, warehouse_url: str, dagster_storage: dict[str, Any] | None, scale: Scale,
                   workdir: Path) -> tuple[list[Cycle], dict[str, dict[str, int]], float]:
    from dagster import AssetKey, DagsterInstance

    from orchestration.launcher import CodeLocationLauncher

    started = time.perf_counter()
    tracked = steady_state(warehouse_url, scale)
    setup_s = time.perf_counter() - started
    print(f"  {engine}: setup {setup_s:.0f} s, tracked {tracked}", flush=True)
    dagster_home = workdir / f"dagster-{engine}"
    dagster_home.mkdir()
    if dagster_storage is not None:
        (dagster_home / "dagster.yaml").write_text(yaml.safe_dump({"storage": dagster_storage}))
    env = {"SIGNALWORKS_HOME": str(workdir / "home"), "SIGNALWORKS_DATABASE_URL": warehouse_url,
           "SIGNALWORKS_EXCHANGES": ",".join(scale.venues), "SIGNALWORKS_SIM_SYMBOLS": str(SIM_SYMBOLS),
           "SIGNALWORKS_CANDLES_1H_SYMBOLS": str(scale.symbols_1h),
           "SIGNALWORKS_CANDLES_1M_SYMBOLS": str(scale.symbols_1m), "SIGNALWORKS_START_DATE": "2024-01-01",
           "DAGSTER_DISABLE_TELEMETRY": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    cap = market_lane_cap()
    day = HOURLY_TICK.date().isoformat()
    first = scale.venues[0]
    cycles: list[Cycle] = []
    with DagsterInstance.from_config(str(dagster_home)) as instance, \
            CodeLocationLauncher(instance, log_path=workdir / f"{engine}-runs.log", env=env) as launcher:
        plan = [("1h cycle, 1 venue", "candles_1h_job", [first], HOURLY_TICK, None),
                (f"1h cycle, {len(scale.venues)} venues", "candles_1h_job", list(scale.venues),
                 HOURLY_TICK + timedelta(hours=1), None),
                ("1h, 1 venue, a process per step", "__ASSET_JOB", [first], HOURLY_TICK + timedelta(hours=2),
                 [AssetKey(k) for k in ("candles_1h", "candles_mtf", "indicators")]),
                (f"1m cycle, {len(scale.venues)} venues", "candles_1m_job", list(scale.venues), MINUTE_TICK, None)]
        for label, job, venues, clock, selection in plan:
            cycle = run_cycle(label, launcher, instance, job=job, venues=venues, day=day, clock=clock, cap=cap,
                              asset_selection=selection)
            timeframe = "1m" if job == "candles_1m_job" else "1h"
            cycles.append(dataclasses.replace(cycle, covered=covered(
                warehouse_url, venues, timeframe=timeframe, clock=clock, tracked=tracked[timeframe])))
    return cycles, tracked, setup_s


@contextlib.contextmanager
def _postgres() -> Iterator[tuple[str, dict[str, Any]] | None]:
    """A throwaway server: the warehouse URL and Dagster's storage config (another database)."""
    from tests.support.postgres import PostgresUnavailableError, throwaway_postgres

    try:
        with throwaway_postgres("signalworks_cycle") as url:
            import psycopg
            from sqlalchemy.engine import make_url

            parsed = make_url(url)
            with psycopg.connect(host=parsed.host, port=parsed.port, user=parsed.username, dbname="postgres",
                                 autocommit=True) as conn:
                conn.execute('CREATE DATABASE "dagster_cycle"')
            storage_url = parsed.set(drivername="postgresql+psycopg2", database="dagster_cycle")
            yield url, {"postgres": {"postgres_url": storage_url.render_as_string(hide_password=False)}}
    except PostgresUnavailableError as error:
        print(f"  PostgreSQL not run: {error}")
        yield None


def _rows(cycles: Sequence[Cycle]) -> list[list[object]]:
    return [[c.label, c.runs, f"{c.wall_s:.1f}", f"{c.run_peak_mb:,.0f}", f"{c.total_peak_mb:,.0f}",
             f"{c.startup_s:.1f}", f"{c.startup_share:.0%}", f"{c.covered[0]:,}/{c.covered[1]:,}",
             ", ".join(r[:8] for r in c.failed) or "-"]
            for c in cycles]


HEADER = ("", "runs", "wall s", "peak MB/run", "peak MB all runs", "start-up s", "start-up share",
          "new candle stored", "failed runs")


def run(quick: bool = False, engines: Sequence[str] = ("SQLite", "PostgreSQL")) -> list[Section]:
    scale = QUICK if quick else FULL
    sections: list[Section] = []
    workdir = Path(tempfile.mkdtemp(prefix="signalworks-cycle-"))
    try:
        for engine in engines:
            kind = None if engine == "SQLite" else "postgres"
            section = Section(f"Market cycles on {engine}: {len(scale.venues)} venues x {scale.symbols_1h} symbols "
                              f"(1h), x {scale.symbols_1m} (1m); the market lane runs {market_lane_cap()} at once")
            with contextlib.ExitStack() as stack:
                if kind is None:
                    url, storage = f"sqlite:///{workdir / 'warehouse.db'}", None
                else:
                    server = stack.enter_context(_postgres())
                    if server is None:
                        section.targets += _targets(engine, None, len(scale.venues))
                        sections.append(section)
                        continue
                    url, storage = server
                cycles, tracked, setup_s = measure_engine(engine.lower(), warehouse_url=url, dagster_storage=storage,
                                                         scale=scale, workdir=workdir)
            section.add(f"  setup (untimed) {setup_s:.0f} s; symbols tracked per venue in 1h: "
                        + ", ".join(f"{v} {n}" for v, n in tracked["1h"].items()) + "; in 1m: "
                        + ", ".join(f"{v} {n}" for v, n in tracked["1m"].items()), "", *table(HEADER, _rows(cycles)))
            section.add("", "  seconds in each step, summed over the cycle's runs:",
                        *(f"    {c.label}: " + ", ".join(f"{step} {secs:.1f}" for step, secs in c.step_s.items())
                          for c in cycles))
            one, five, per_step, _ = cycles
            section.add("", f"  {len(scale.venues)} venues / 1 venue: wall {five.wall_s / one.wall_s:.2f}x, peak memory per run "
                        f"{five.run_peak_mb / max(one.run_peak_mb, 1):.2f}x; a process per step / in the run's "
                        f"process (1 venue): {per_step.wall_s / one.wall_s:.2f}x")
            section.targets += _targets(engine, cycles, len(scale.venues))
            sections.append(section)
            if __name__ == "__main__":
                print(section.render(), flush=True)
            shutil.rmtree(workdir / "home", ignore_errors=True)
            (workdir / "warehouse.db").unlink(missing_ok=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return sections


def _ok(cycle: Cycle | None) -> bool:
    """A failed run, or a tracked symbol without the tick's new candle, leaves no valid timing."""
    return cycle is not None and not cycle.failed and cycle.covered[0] == cycle.covered[1]


def _targets(engine: str, cycles: Sequence[Cycle] | None, venues: int = len(VENUES)) -> list[Target]:
    one, five, _, minute = cycles if cycles else (None, None, None, None)
    return [
        Target(f"{engine}: 1h cycle of {venues} venues (s)", five.wall_s if five and _ok(five) else None,
               CYCLE_TARGET_S, unit="s", at_least=False),
        Target(f"{engine}: peak memory per run, {venues} venues / 1 venue", five.run_peak_mb / one.run_peak_mb
               if five and one and _ok(five) and _ok(one) and one.run_peak_mb else None, 1.25, at_least=False),
        Target(f"{engine}: 1m cycle of {venues} venues (s)", minute.wall_s if minute and _ok(minute) else None,
               MINUTE_TARGET_S, unit="s", at_least=False),
    ]


if __name__ == "__main__":
    # ``python -m benchmarks.cycle [--quick] [SQLite|PostgreSQL ...]``: one engine per process
    import sys

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    chosen = [arg for arg in sys.argv[1:] if arg != "--quick"]
    run(quick="--quick" in sys.argv, engines=chosen or ("SQLite", "PostgreSQL"))
