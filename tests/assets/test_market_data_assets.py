"""Every market-data asset materialised through Dagster on the embedded default."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetKey, BackfillPolicy, DagsterInstance, Definitions, MultiPartitionKey
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from resources.warehouse.store import Warehouse
from tests.assets.conftest import NOW, sim_definitions


def _run(defs: Definitions, job: str, instance: DagsterInstance, **kwargs: object):
    return defs.resolve_job_def(job).execute_in_process(instance=instance, raise_on_error=False, **kwargs)


def _key(day: str, exchange: str = "sim") -> str:
    return str(MultiPartitionKey({"date": day, "exchange": exchange}))


def test_markets_then_candles_then_checks(sim_defs: tuple[Definitions, Warehouse],
                                           instance: DagsterInstance) -> None:
    defs, warehouse = sim_defs
    assert _run(defs, "markets_job", instance).success
    markets = warehouse.read_markets("sim")
    assert markets.height > 100
    assert sorted(markets.get_column("liquidity_rank").to_list()) == list(range(1, markets.height + 1))

    yesterday = _run(defs, "candles_1h_job", instance, partition_key=_key("2024-03-11"))
    assert yesterday.success
    spot = markets.filter(pl.col("market_type") == "spot").height
    candles = warehouse.read_candles(timeframe="1h", exchange="sim")
    assert candles.get_column("symbol").n_unique() == spot  # 1h tracks the whole spot universe
    assert candles.height == spot * 24
    checks = {e.check_name: e.passed for e in yesterday.get_asset_check_evaluations()
              if e.asset_key.to_user_string() == "candles_1h"}
    # the newest candle (23:00 yesterday) closed 9.5 h before NOW: stale until today's partition lands
    assert checks == {"unique_keys": True, "ohlc_sanity": True, "no_gaps": True, "fresh": False}

    today = _run(defs, "candles_1h_job", instance, partition_key=_key("2024-03-12"))
    assert today.success
    assert warehouse.read_candles(timeframe="1h", exchange="sim").height == spot * (24 + 9)
    checks = {e.check_name: e.passed for e in today.get_asset_check_evaluations()
              if e.asset_key.to_user_string() == "candles_1h"}
    assert checks == {"unique_keys": True, "ohlc_sanity": True, "no_gaps": True, "fresh": True}

    minute_run = _run(defs, "candles_1m_job", instance, partition_key=_key("2024-03-12"))
    assert minute_run.success
    minutes = warehouse.read_candles(timeframe="1m", exchange="sim")
    assert minutes.get_column("symbol").n_unique() == 12  # top-N by liquidity
    assert minutes.get_column("ts").max() == NOW - timedelta(minutes=1)  # closed candles only
    assert minutes.height == 12 * (9 * 60 + 30)  # 00:00 .. 09:29


def test_rematerialising_a_partition_is_idempotent(sim_defs: tuple[Definitions, Warehouse],
                                                   instance: DagsterInstance) -> None:
    defs, warehouse = sim_defs
    _run(defs, "markets_job", instance)
    _run(defs, "candles_1h_job", instance, partition_key=_key("2024-03-10"))
    first = warehouse.read_candles(timeframe="1h")
    _run(defs, "candles_1h_job", instance, partition_key=_key("2024-03-10"))
    assert warehouse.read_candles(timeframe="1h").equals(first)


def test_seven_day_backfill_of_two_exchanges_as_single_runs(tmp_path: Path, instance: DagsterInstance) -> None:
    defs, settings = sim_definitions(tmp_path, exchanges=("sim", "sim_b"))
    warehouse = Warehouse.from_url(settings.warehouse_url)
    candles_1h = defs.resolve_assets_def("candles_1h")
    assert candles_1h.backfill_policy == BackfillPolicy.single_run()
    assert _run(defs, "markets_job", instance).success
    for exchange in ("sim", "sim_b"):
        tags = {ASSET_PARTITION_RANGE_START_TAG: _key("2024-03-04", exchange),
                ASSET_PARTITION_RANGE_END_TAG: _key("2024-03-10", exchange)}
        result = _run(defs, "candles_1h_job", instance, tags=tags)
        assert result.success
        materialized = {str(m.partition) for m in result.asset_materializations_for_node("candles_1h")}
        assert materialized == {_key(f"2024-03-{d:02d}", exchange) for d in range(4, 11)}
    stored = warehouse.read_candles(timeframe="1h")
    per_exchange = stored.group_by("exchange").agg(pl.col("ts").min().alias("first"), pl.col("ts").max().alias("last"),
                                                   pl.col("symbol").n_unique().alias("symbols"))
    assert sorted(per_exchange.get_column("exchange").to_list()) == ["sim", "sim_b"]
    for row in per_exchange.iter_rows(named=True):
        assert row["first"].isoformat().startswith("2024-03-04T00:00")
        assert row["last"].isoformat().startswith("2024-03-10T23:00")
        assert stored.filter(pl.col("exchange") == row["exchange"]).height == row["symbols"] * 24 * 7
    runs = instance.get_runs()
    assert len([r for r in runs if r.job_name == "candles_1h_job"]) == 2


def test_one_failing_symbol_never_stops_the_others(tmp_path: Path, instance: DagsterInstance) -> None:
    defs, settings = sim_definitions(tmp_path, failing=["ETH/USDT", "DOGE/USDT"])
    warehouse = Warehouse.from_url(settings.warehouse_url)
    _run(defs, "markets_job", instance)
    result = _run(defs, "candles_1h_job", instance, partition_key=_key("2024-03-11"))
    assert result.success
    (materialization,) = result.asset_materializations_for_node("candles_1h")
    metadata = materialization.metadata
    assert metadata["symbols_failed"].value == 2
    assert metadata["symbols_fetched"].value == metadata["symbols_tracked"].value - 2
    assert set(metadata["failures"].value) == {"ETH/USDT", "DOGE/USDT"}
    symbols = set(warehouse.read_candles(timeframe="1h").get_column("symbol").unique().to_list())
    assert "BTC/USDT" in symbols and "ETH/USDT" not in symbols
    gaps = {e.check_name: e for e in result.get_asset_check_evaluations()}["no_gaps"]
    assert not gaps.passed  # the missing symbols are reported, not hidden
    assert gaps.metadata["missing_candles"].value == 48


def test_the_step_fails_when_every_symbol_fails(tmp_path: Path, instance: DagsterInstance) -> None:
    defs, settings = sim_definitions(tmp_path)
    _run(defs, "markets_job", instance)
    every_symbol = Warehouse.from_url(settings.warehouse_url).read_markets().get_column("symbol").to_list()
    defs, _ = sim_definitions(tmp_path, failing=every_symbol)
    result = _run(defs, "candles_1h_job", instance, partition_key=_key("2024-03-11"))
    assert not result.success
    error = str(result.get_step_failure_events()[0].event_specific_data.error)
    assert "sim: no 1h symbol stored on any day of the run" in error
    # three symbols in a row failed: the simulated venue counts as unreachable, the rest is not asked
    assert "sim: unreachable since 2024-03-12T09:30:00+00:00 (3 symbol-days in a row" in error
    assert "2024-03-11|sim: 3 symbols failed; " in error and " not attempted: sim unreachable" in error
    assert result.asset_materializations_for_node("candles_1h") == []
    assert instance.get_materialized_partitions(AssetKey("candles_1h")) == set()


def test_candles_without_a_universe_fail_clearly(sim_defs: tuple[Definitions, Warehouse],
                                                 instance: DagsterInstance) -> None:
    defs, _ = sim_defs
    result = _run(defs, "candles_1h_job", instance, partition_key=_key("2024-03-11"))
    assert not result.success
    assert "materialise `markets` first" in str(result.get_step_failure_events()[0].event_specific_data.error)


def test_derivatives_and_coingecko(sim_defs: tuple[Definitions, Warehouse], instance: DagsterInstance) -> None:
    defs, warehouse = sim_defs
    _run(defs, "markets_job", instance)
    assert _run(defs, "derivatives_job", instance).success
    derivatives = warehouse.read_derivatives("sim")
    perps = warehouse.read_markets("sim").filter(pl.col("market_type") == "swap").height
    assert derivatives.height == perps
    assert derivatives.get_column("ts").unique().to_list() == [NOW.replace(minute=0)]
    assert derivatives.get_column("funding_rate").abs().max() <= 0.0075
    assert _run(defs, "coingecko_job", instance).success
    snapshot = warehouse.read_coingecko()
    assert snapshot.height == 2000
    assert snapshot.get_column("market_cap_rank").to_list() == list(range(1, 2001))
    near = snapshot.filter(pl.col("within_5pct_of_ath"))
    assert near.filter(pl.col("price_usd") < pl.col("ath_usd") * 0.95).is_empty()


def test_retention_deletes_only_old_1m_candles(sim_defs: tuple[Definitions, Warehouse],
                                               instance: DagsterInstance) -> None:
    defs, warehouse = sim_defs
    from datetime import UTC, datetime

    from tests.support.builders import make_candles

    old = make_candles(60, "1m", start=datetime(2020, 1, 1, tzinfo=UTC))
    recent_start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=1)
    recent = make_candles(60, "1m", start=recent_start)
    for frame in (old, recent):
        start = frame.get_column("ts").min()
        warehouse.replace_candles(frame, exchange="sim", timeframe="1m", start=start,
                                  end=start + timedelta(hours=1), symbols=["BTC/USDT"])
    hourly = make_candles(5, "1h", start=datetime(2020, 1, 1, tzinfo=UTC))
    warehouse.replace_candles(hourly, exchange="sim", timeframe="1h", start=datetime(2020, 1, 1, tzinfo=UTC),
                              end=datetime(2020, 1, 2, tzinfo=UTC), symbols=["BTC/USDT"])
    result = _run(defs, "candles_1m_retention_job", instance)
    assert result.success
    assert result.output_for_node("delete_old_1m_candles") == 60
    assert warehouse.read_candles(timeframe="1m").equals(recent)
    assert warehouse.read_candles(timeframe="1h").height == 5


@pytest.mark.parametrize("job", ["markets_job", "derivatives_job", "coingecko_job"])
def test_unpartitioned_jobs_are_idempotent(sim_defs: tuple[Definitions, Warehouse], instance: DagsterInstance,
                                           job: str) -> None:
    defs, warehouse = sim_defs
    _run(defs, "markets_job", instance)
    assert _run(defs, job, instance).success
    before = (warehouse.read_markets().height, warehouse.read_derivatives().height, warehouse.read_coingecko().height)
    assert _run(defs, job, instance).success
    assert (warehouse.read_markets().height, warehouse.read_derivatives().height,
            warehouse.read_coingecko().height) == before


def test_the_same_assets_on_postgresql(tmp_path: Path, instance: DagsterInstance, postgres_url: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNALWORKS_DATABASE_URL", postgres_url)
    defs, _ = sim_definitions(tmp_path, database_url=postgres_url)
    warehouse = Warehouse.from_url(postgres_url)
    assert warehouse.postgres
    assert _run(defs, "markets_job", instance).success
    result = _run(defs, "candles_1h_job", instance, partition_key=_key("2024-03-11"))
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations() if e.check_name != "fresh")
    spot = warehouse.read_markets("sim").filter(pl.col("market_type") == "spot").height
    assert warehouse.read_candles(timeframe="1h", exchange="sim").height == spot * 24
    assert warehouse.read_candles(timeframe="1d", exchange="sim").height == spot
    assert _run(defs, "coingecko_job", instance).success
    assert _run(defs, "derivatives_job", instance).success
