"""Every candle check passes on clean data and fails on injected bad data."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from dagster import (
    AssetCheckKey,
    AssetKey,
    AssetSelection,
    DagsterInstance,
    materialize,
)
from sqlalchemy import text

from assets.candles import build_candles_asset
from assets.checks import build_candle_checks
from ml.marketdata.timeframes import day_bounds
from orchestration.partitions import candle_partitions
from orchestration.settings import Settings
from resources.warehouse.store import Warehouse
from tests.assets.conftest import NOW, sim_definitions, sim_resources
from tests.support.dagster_ui import check_statuses, ui_instance

DAY = "2024-03-11"
KEY = f"{DAY}|sim"


@pytest.fixture
def loaded(tmp_path: Path, instance: DagsterInstance) -> tuple[Settings, Warehouse]:
    defs, settings = sim_definitions(tmp_path)
    defs.resolve_job_def("markets_job").execute_in_process(instance=instance)
    # the day's 1h candles (the checks under test read nothing else: no multi-timeframe candles or indicators)
    assert defs.resolve_job_def("candles_1h_job").execute_in_process(
        instance=instance, partition_key=KEY, asset_selection=[AssetKey("candles_1h")]).success
    return settings, Warehouse.from_url(settings.warehouse_url)


def run_check(settings: Settings, name: str, *, now: datetime = NOW) -> tuple[bool, dict]:
    """Run one check of ``candles_1h`` on its own (the asset itself is not re-materialised)."""
    partitions = candle_partitions(settings)
    candles = build_candles_asset("1h", partitions_def=partitions, default_top_n=0)
    key = AssetCheckKey(AssetKey("candles_1h"), name)
    checks = [c for c in build_candle_checks(candles, timeframe="1h", partitions_def=partitions, default_top_n=0,
                                             freshness_hours=settings.freshness_hours)
              if key in c.check_keys]
    # a check-only run carries its partition as a run tag, as Dagster's own check-only runs do
    result = materialize([candles, *checks], selection=AssetSelection.checks(key),
                         resources=sim_resources(settings, now=now), raise_on_error=False,
                         tags={"dagster/partition": KEY} if name != "fresh" else None)
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation.passed, {k: v.value for k, v in evaluation.metadata.items()}


@pytest.mark.parametrize("name", ["unique_keys", "ohlc_sanity", "no_gaps"])
def test_checks_pass_on_clean_data(loaded: tuple[Settings, Warehouse], name: str) -> None:
    passed, _ = run_check(loaded[0], name)
    assert passed


def test_ohlc_sanity_fails_on_a_broken_candle(loaded: tuple[Settings, Warehouse]) -> None:
    settings, warehouse = loaded
    start, end = day_bounds(DAY)
    btc = warehouse.read_candles(timeframe="1h", exchange="sim", symbols=["BTC/USDT"], start=start, end=end)
    broken = btc.with_columns(pl.when(pl.col("ts") == start + timedelta(hours=5))
                              .then(pl.col("low") * 0.5).otherwise(pl.col("high")).alias("high"))
    warehouse.replace_candles(broken, exchange="sim", timeframe="1h", start=start, end=end, symbols=["BTC/USDT"])
    passed, metadata = run_check(settings, "ohlc_sanity")
    assert not passed
    assert metadata["violations"] == 1


def test_no_gaps_reports_missing_candles(loaded: tuple[Settings, Warehouse]) -> None:
    settings, warehouse = loaded
    start, _ = day_bounds(DAY)
    with warehouse.engine.begin() as connection:
        connection.execute(text("DELETE FROM candles WHERE symbol = 'ETH/USDT' AND ts >= :a AND ts < :b"),
                           {"a": int((start + timedelta(hours=3)).timestamp() * 1000),
                            "b": int((start + timedelta(hours=6)).timestamp() * 1000)})
    passed, metadata = run_check(settings, "no_gaps")
    assert not passed
    assert metadata["gap_runs"] == 1 and metadata["missing_candles"] == 3
    assert "ETH/USDT" in metadata["gaps"]


def test_unique_keys_fails_when_a_duplicate_slips_in(loaded: tuple[Settings, Warehouse]) -> None:
    """The primary key prevents duplicates; this guards against storage that lost it (a manual
    restore, a schema drift): rebuild candle_bars without the key and slip a duplicate in."""
    settings, warehouse = loaded
    _slip_in_duplicates(warehouse, day=DAY, rows=2)
    passed, metadata = run_check(settings, "unique_keys")
    assert not passed
    assert metadata["duplicates"] == 2


def test_fresh_fails_when_the_newest_candle_is_old(tmp_path: Path, instance: DagsterInstance) -> None:
    defs, settings = sim_definitions(tmp_path)
    defs.resolve_job_def("markets_job").execute_in_process(instance=instance)
    assert defs.resolve_job_def("candles_1h_job").execute_in_process(
        instance=instance, partition_key=f"{NOW.date()}|sim", asset_selection=[AssetKey("candles_1h")]).success
    assert run_check(settings, "fresh")[0]
    passed, metadata = run_check(settings, "fresh", now=NOW + timedelta(hours=5))
    assert not passed
    assert metadata["stale"] == {"sim": 5.5}


def test_a_gap_the_exchange_really_has_is_reported_not_filled(tmp_path: Path, instance: DagsterInstance) -> None:
    defs, settings = sim_definitions(tmp_path)
    defs.resolve_job_def("markets_job").execute_in_process(instance=instance)
    warehouse = Warehouse.from_url(settings.warehouse_url)
    start, end = day_bounds(DAY)
    from resources.exchanges.sim import SimExchange

    outage = SimExchange("sim", clock=lambda: NOW, outages=((start + timedelta(hours=10), start + timedelta(hours=12)),))
    candles = outage.fetch_ohlcv("SOL/USDT", "1h", start, end)
    assert candles.height == 22  # the simulated exchange really lacks two hours
    warehouse.replace_candles(candles.with_columns(pl.lit("sim").alias("exchange"), pl.lit("SOL/USDT").alias("symbol"),
                                                   pl.lit("1h").alias("timeframe")),
                              exchange="sim", timeframe="1h", start=start, end=end, symbols=["SOL/USDT"])
    passed, metadata = run_check(settings, "no_gaps")
    assert not passed
    assert metadata["missing_candles"] >= 2


def test_hours_before_a_symbols_first_candle_are_not_gaps(loaded: tuple[Settings, Warehouse]) -> None:
    """A market listed mid-day has no candles before its listing: not a gap. After it: a gap."""
    settings, warehouse = loaded
    start, _ = day_bounds(DAY)
    with warehouse.engine.begin() as connection:
        connection.execute(text("DELETE FROM candles WHERE symbol = 'ETH/USDT' AND timeframe = '1h' AND ts < :t"),
                           {"t": int((start + timedelta(hours=12)).timestamp() * 1000)})
    assert run_check(settings, "no_gaps")[0]
    with warehouse.engine.begin() as connection:
        connection.execute(text("DELETE FROM candles WHERE symbol = 'ETH/USDT' AND timeframe = '1h' AND ts = :t"),
                           {"t": int((start + timedelta(hours=15)).timestamp() * 1000)})
    passed, metadata = run_check(settings, "no_gaps")
    assert not passed and metadata["missing_candles"] == 1


# -- a single-run backfill: every partition gets its own result -----------------------------------

RANGE = ("2024-03-08", "2024-03-09", "2024-03-10", "2024-03-11")
RANGE_TAGS = {"dagster/asset_partition_range_start": f"{RANGE[0]}|sim",
              "dagster/asset_partition_range_end": f"{RANGE[-1]}|sim"}


def ui_statuses(instance: DagsterInstance, key: AssetCheckKey, settings: Settings) -> dict[str, str]:
    return check_statuses(instance, key, candle_partitions(settings))


def evaluations_by_day(result: object, check: str) -> dict[str, dict]:
    return {e.partition: {"passed": e.passed, **{k: v.value for k, v in e.metadata.items()}}
            for e in result.get_asset_check_evaluations() if e.check_name == check  # type: ignore[attr-defined]
            and e.asset_key == AssetKey("candles_1h")}


def test_a_range_run_lands_each_result_on_its_own_day(tmp_path: Path) -> None:
    """A four-day single-run backfill, then a check-only run over the same range after a duplicate
    slipped into one day, a broken candle into another and a gap into a third: each day shows the
    outcome of its own data, none is skipped."""
    defs, settings = sim_definitions(tmp_path)
    warehouse = Warehouse.from_url(settings.warehouse_url)
    keys = {name: AssetCheckKey(AssetKey("candles_1h"), name) for name in ("unique_keys", "ohlc_sanity", "no_gaps")}
    with ui_instance(tmp_path) as instance:
        assert defs.resolve_job_def("markets_job").execute_in_process(instance=instance).success
        first = defs.resolve_job_def("candles_1h_job").execute_in_process(
            instance=instance, tags=RANGE_TAGS, asset_selection=[AssetKey("candles_1h"), AssetKey("candles_mtf")])
        assert first.success
        every_day = {f"{day}|sim" for day in RANGE}
        for key in [*keys.values(), AssetCheckKey(AssetKey("candles_mtf"), "unique_keys"),
                    AssetCheckKey(AssetKey("candles_mtf"), "ohlc_sanity")]:
            assert ui_statuses(instance, key, settings) == dict.fromkeys(every_day, "SUCCEEDED"), key
        rows = {day: warehouse.read_candles(timeframe="1h", exchange="sim", start=day_bounds(day)[0],
                                            end=day_bounds(day)[1]).height for day in RANGE}
        assert {d: v["rows_checked"] for d, v in evaluations_by_day(first, "unique_keys").items()} == {
            f"{day}|sim": rows[day] for day in RANGE}

        _slip_in_duplicates(warehouse, day="2024-03-09", rows=2)
        start, end = day_bounds("2024-03-10")
        btc = warehouse.read_candles(timeframe="1h", exchange="sim", symbols=["BTC/USDT"], start=start, end=end)
        warehouse.replace_candles(btc.with_columns(pl.when(pl.col("ts") == start + timedelta(hours=5))
                                                   .then(pl.col("low") * 0.5).otherwise(pl.col("high")).alias("high")),
                                  exchange="sim", timeframe="1h", start=start, end=end, symbols=["BTC/USDT"])
        gap_start, _ = day_bounds("2024-03-11")
        with warehouse.engine.begin() as connection:
            connection.execute(text("DELETE FROM candles WHERE symbol = 'ETH/USDT' AND timeframe = '1h' "
                                    "AND ts >= :a AND ts < :b"),
                               {"a": int((gap_start + timedelta(hours=3)).timestamp() * 1000),
                                "b": int((gap_start + timedelta(hours=6)).timestamp() * 1000)})

        partitions = candle_partitions(settings)
        candles = build_candles_asset("1h", partitions_def=partitions, default_top_n=0)
        checks = build_candle_checks(candles, timeframe="1h", partitions_def=partitions, default_top_n=0,
                                     freshness_hours=settings.freshness_hours)
        second = materialize([candles, *checks], selection=AssetSelection.checks(*keys.values()),
                             resources=sim_resources(settings), instance=instance, tags=RANGE_TAGS,
                             raise_on_error=False)
        assert not second.success  # unique_keys and ohlc_sanity are blocking
        broken = {"unique_keys": "2024-03-09|sim", "ohlc_sanity": "2024-03-10|sim", "no_gaps": "2024-03-11|sim"}
        for name, key in keys.items():
            expected = {day: "FAILED" if day == broken[name] else "SUCCEEDED" for day in every_day}
            assert ui_statuses(instance, key, settings) == expected, name
        figures = {name: {day: (v["passed"], v[count]) for day, v in evaluations_by_day(second, name).items()}
                   for name, count in (("unique_keys", "duplicates"), ("ohlc_sanity", "violations"),
                                       ("no_gaps", "missing_candles"))}
        assert figures["unique_keys"] == {d: (d != broken["unique_keys"], 2 if d == broken["unique_keys"] else 0)
                                          for d in every_day}
        assert figures["ohlc_sanity"] == {d: (d != broken["ohlc_sanity"], 1 if d == broken["ohlc_sanity"] else 0)
                                          for d in every_day}
        assert figures["no_gaps"] == {d: (d != broken["no_gaps"], 3 if d == broken["no_gaps"] else 0)
                                      for d in every_day}


def _slip_in_duplicates(warehouse: Warehouse, *, day: str, rows: int) -> None:
    """Rebuild candle_bars without its key (as after a manual restore) and copy ``rows`` bars of
    ``day`` once more."""
    start, end = day_bounds(day)
    with warehouse.engine.begin() as connection:
        connection.execute(text("PRAGMA legacy_alter_table = ON"))  # keep the view pointing at candle_bars
        connection.execute(text("CREATE TABLE candle_bars_copy AS SELECT * FROM candle_bars"))
        connection.execute(text("DROP TABLE candle_bars"))
        connection.execute(text("ALTER TABLE candle_bars_copy RENAME TO candle_bars"))
        connection.execute(text("INSERT INTO candle_bars SELECT b.* FROM candle_bars b JOIN candle_series s "
                                "USING (series_id) WHERE s.symbol = 'BTC/USDT' AND s.timeframe = '1h' "
                                "AND b.ts >= :a AND b.ts < :b LIMIT :n"),
                           {"a": int(start.timestamp() * 1000), "b": int(end.timestamp() * 1000), "n": rows})
