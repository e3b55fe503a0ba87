"""``candles_mtf`` through Dagster: complete buckets only, incremental, missing hours reported."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
from dagster import AssetKey, DagsterInstance
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from sqlalchemy import text

from ml.marketdata.resample import resample
from resources.warehouse.store import Warehouse
from tests.assets.conftest import sim_definitions

NOW = datetime(2024, 3, 12, 9, 30, tzinfo=UTC)


def test_backfill_builds_every_timeframe_from_the_stored_hours(tmp_path: Path, instance: DagsterInstance) -> None:
    defs, settings = sim_definitions(tmp_path, now=NOW)
    warehouse = Warehouse.from_url(settings.warehouse_url)
    defs.resolve_job_def("markets_job").execute_in_process(instance=instance)
    # the demo's backfill of the 1h history: candles_1h and candles_mtf only (the indicators of
    # these days are test_indicators_asset.py's; here they would only double the run's time)
    result = defs.resolve_job_def("candles_1h_job").execute_in_process(
        instance=instance, tags={ASSET_PARTITION_RANGE_START_TAG: "2024-02-26|sim",
                                 ASSET_PARTITION_RANGE_END_TAG: "2024-03-12|sim"},
        asset_selection=[AssetKey("candles_1h"), AssetKey("candles_mtf")])
    assert result.success
    hourly = warehouse.read_candles(timeframe="1h", exchange="sim")
    for timeframe in ("2h", "4h", "12h", "1d", "3d", "1w"):
        stored = warehouse.read_candles(timeframe=timeframe, exchange="sim")
        expected, _ = resample(hourly, timeframe, now=NOW)
        assert stored.equals(expected), timeframe
    weekly = warehouse.read_candles(timeframe="1w", exchange="sim", symbols=["BTC/USDT"])
    assert weekly.get_column("ts").to_list() == [datetime(2024, 2, 26, tzinfo=UTC), datetime(2024, 3, 4, tzinfo=UTC)]
    assert warehouse.read_candles(timeframe="1M").is_empty()  # no complete month in the range
    daily = warehouse.read_candles(timeframe="1d", exchange="sim", symbols=["BTC/USDT"])
    assert daily.get_column("ts").max() == datetime(2024, 3, 11, tzinfo=UTC)  # today is still open

    # each partition reports its own day: its 1h candles and the candles of each timeframe covering it
    events = {str(e.partition): e.metadata for e in result.asset_materializations_for_node("candles_mtf")}
    assert len(events) == 16
    symbols = hourly.get_column("symbol").n_unique()
    for key, metadata in events.items():
        day = datetime.fromisoformat(key.split("|")[0]).replace(tzinfo=UTC)
        own = hourly.filter((pl.col("ts") >= day) & (pl.col("ts") < day + timedelta(days=1)))
        assert metadata["hourly_candles"].value == own.height, key
        covering = metadata["candles_by_timeframe"].value
        stored_1d = warehouse.read_candles(timeframe="1d", exchange="sim", start=day, end=day + timedelta(days=1))
        assert covering["1d"] == stored_1d.height, key
        assert covering["2h"] == warehouse.read_candles(
            timeframe="2h", exchange="sim", start=day, end=day + timedelta(days=1)).height, key
    assert events["2024-03-11|sim"]["candles_by_timeframe"].value["1d"] == symbols
    assert events["2024-03-12|sim"]["hourly_candles"].value == 9 * symbols  # 00:00 .. 08:00 closed at 09:30
    assert events["2024-03-12|sim"]["candles_by_timeframe"].value["1d"] == 0


def test_a_missing_hour_is_reported_and_the_bucket_not_built(tmp_path: Path, instance: DagsterInstance) -> None:
    defs, settings = sim_definitions(tmp_path, now=NOW)
    warehouse = Warehouse.from_url(settings.warehouse_url)
    defs.resolve_job_def("markets_job").execute_in_process(instance=instance)
    defs.resolve_job_def("candles_1h_job").execute_in_process(instance=instance, partition_key="2024-03-10|sim")
    assert warehouse.read_candles(timeframe="1d", exchange="sim", symbols=["ETH/USDT"]).height == 1
    hole = datetime(2024, 3, 10, 7, tzinfo=UTC)
    with warehouse.engine.begin() as connection:
        connection.execute(text("DELETE FROM candles WHERE symbol = 'ETH/USDT' AND timeframe = '1h' AND ts = :t"),
                           {"t": int(hole.timestamp() * 1000)})
    job = defs.resolve_job_def("candles_1h_job")
    # rebuild only the multi-timeframe candles of that day (the 1h candles stay as they are)
    result = job.execute_in_process(instance=instance, partition_key="2024-03-10|sim",
                                    asset_selection=[AssetKey("candles_mtf")])
    assert result.success
    metadata = result.asset_materializations_for_node("candles_mtf")[0].metadata
    reported = {(r["symbol"], r["timeframe"], r["ts"]) for r in metadata["incomplete"].value}
    assert ("ETH/USDT", "1d", "2024-03-10T00:00:00+00:00") in reported
    assert ("ETH/USDT", "4h", "2024-03-10T04:00:00+00:00") in reported
    assert warehouse.read_candles(timeframe="1d", exchange="sim", symbols=["ETH/USDT"]).is_empty()
    four_hourly = warehouse.read_candles(timeframe="4h", exchange="sim", symbols=["ETH/USDT"])
    assert datetime(2024, 3, 10, 4, tzinfo=UTC) not in four_hourly.get_column("ts").to_list()
    assert four_hourly.height == 5
    assert warehouse.read_candles(timeframe="1d", exchange="sim", symbols=["BTC/USDT"]).height == 1


def test_rebuilding_is_idempotent(tmp_path: Path, instance: DagsterInstance) -> None:
    defs, settings = sim_definitions(tmp_path, now=NOW)
    warehouse = Warehouse.from_url(settings.warehouse_url)
    defs.resolve_job_def("markets_job").execute_in_process(instance=instance)
    job = defs.resolve_job_def("candles_1h_job")
    job.execute_in_process(instance=instance, partition_key="2024-03-09|sim")
    first = warehouse.read_candles(timeframe="12h")
    job.execute_in_process(instance=instance, partition_key="2024-03-09|sim")
    assert warehouse.read_candles(timeframe="12h").equals(first)
    assert first.height == 2 * first.get_column("symbol").n_unique()
    assert (first.get_column("ts") - timedelta(0)).dt.hour().unique().sort().to_list() == [0, 12]
    assert not pl.Series(first.get_column("volume") < 0).any()


def test_mtf_checks_pass_on_built_candles_and_fail_on_a_broken_one(tmp_path: Path, instance: DagsterInstance) -> None:
    from dagster import AssetSelection, materialize

    from assets.checks import build_mtf_checks
    from assets.mtf import build_mtf_asset
    from orchestration.partitions import candle_partitions
    from tests.assets.conftest import sim_resources

    defs, settings = sim_definitions(tmp_path, now=NOW)
    warehouse = Warehouse.from_url(settings.warehouse_url)
    defs.resolve_job_def("markets_job").execute_in_process(instance=instance)
    result = defs.resolve_job_def("candles_1h_job").execute_in_process(instance=instance,
                                                                       partition_key="2024-03-10|sim")
    mtf_checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()
                  if e.asset_key == AssetKey("candles_mtf")}
    assert mtf_checks == {"unique_keys": True, "ohlc_sanity": True}

    four_hourly = warehouse.read_candles(timeframe="4h", exchange="sim", symbols=["BTC/USDT"])
    broken = four_hourly.with_columns((pl.col("low") * 0.5).alias("high"))
    start = four_hourly.get_column("ts").min()
    warehouse.replace_candles(broken, exchange="sim", timeframe="4h", start=start,
                              end=start + timedelta(days=1), symbols=["BTC/USDT"])
    partitions = candle_partitions(settings)
    mtf = build_mtf_asset(partitions)
    checks = [c for c in build_mtf_checks(mtf, partitions_def=partitions)
              if any(k.name == "ohlc_sanity" for k in c.check_keys)]
    run = materialize([mtf, *checks], selection=AssetSelection.checks(*checks), resources=sim_resources(settings, now=NOW),
                      tags={"dagster/partition": "2024-03-10|sim"}, raise_on_error=False)
    (evaluation,) = run.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.metadata["violations"].value == broken.height
