"""The ``indicators`` checks: pass per day on computed indicators, fail on the day whose stored
rows are wrong (written through the real warehouse), and only on that day."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetCheckKey, AssetKey, AssetSelection, DagsterInstance, materialize
from sqlalchemy import text

from assets.indicator_checks import build_indicator_checks
from assets.indicators import build_indicators_asset, closing_slice
from orchestration.partitions import candle_partitions
from orchestration.settings import Settings
from resources.warehouse.store import Warehouse
from tests.assets.conftest import sim_definitions, sim_resources
from tests.support.dagster_ui import check_statuses, ui_instance

DAYS = ("2024-03-10|sim", "2024-03-11|sim")
RANGE_TAGS = {"dagster/asset_partition_range_start": DAYS[0], "dagster/asset_partition_range_end": DAYS[-1]}
CHECKS = ("unique_keys", "finite_values", "complete")


@dataclass
class Computed:
    settings: Settings
    warehouse: Warehouse
    instance: DagsterInstance

    def statuses(self, check: str) -> dict[str, str]:
        key = AssetCheckKey(AssetKey("indicators"), check)
        return check_statuses(self.instance, key, candle_partitions(self.settings))

    def run_checks(self) -> dict[str, dict[str, dict]]:
        """Run the three checks alone over both days; check -> day -> passed and metadata."""
        partitions = candle_partitions(self.settings)
        asset = build_indicators_asset(partitions)
        checks = build_indicator_checks(asset, partitions_def=partitions)
        result = materialize([asset, *checks], selection=AssetSelection.checks(*checks), tags=RANGE_TAGS,
                             resources=sim_resources(self.settings), instance=self.instance, raise_on_error=False)
        found: dict[str, dict[str, dict]] = {check: {} for check in CHECKS}
        for evaluation in result.get_asset_check_evaluations():
            found[evaluation.check_name][evaluation.partition] = {
                "passed": evaluation.passed, **{k: v.value for k, v in evaluation.metadata.items()}}
        return found


def _compute(tmp_path: Path, database_url: str | None) -> Iterator[Computed]:
    defs, settings = sim_definitions(tmp_path, database_url=database_url, candles_1m_symbols=3)
    with ui_instance(tmp_path) as instance:
        assert defs.resolve_job_def("markets_job").execute_in_process(instance=instance).success
        assert defs.resolve_job_def("candles_1m_job").execute_in_process(instance=instance, tags=RANGE_TAGS).success
        assert defs.resolve_job_def("candles_1h_job").execute_in_process(instance=instance, tags=RANGE_TAGS).success
        yield Computed(settings, Warehouse.from_url(settings.warehouse_url), instance)


@pytest.fixture
def computed(tmp_path: Path) -> Iterator[Computed]:
    yield from _compute(tmp_path, None)


def _day_slice(warehouse: Warehouse, partition: str, timeframe: str, symbol: str) -> tuple[pl.DataFrame, tuple]:
    start, end = closing_slice(partition.split("|")[0], timeframe)
    rows = warehouse.read_indicators(timeframe=timeframe, exchange="sim", symbols=[symbol], start=start, end=end)
    assert rows.height, f"no {timeframe} indicators of {symbol} on {partition}"
    return rows, (start, end)


def test_the_job_runs_the_checks_and_every_day_passes(computed: Computed) -> None:
    for check in CHECKS:
        assert computed.statuses(check) == dict.fromkeys(DAYS, "SUCCEEDED"), check
    figures = computed.run_checks()
    for day in DAYS:
        start, end = closing_slice(day.split("|")[0], "1m")
        one_minute = computed.warehouse.read_candles(timeframe="1m", exchange="sim", start=start, end=end).height
        assert one_minute == 3 * 1440
        assert figures["complete"][day]["rows_checked"] > one_minute  # 1m, 1h and the timeframes built from 1h
        assert figures["unique_keys"][day]["rows_checked"] == figures["complete"][day]["rows_checked"]
        assert figures["complete"][day]["missing_rows"] == 0


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_finite_values_fails_on_the_day_with_a_non_finite_value(engine: str, tmp_path: Path,
                                                                 request: pytest.FixtureRequest,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    database_url = request.getfixturevalue("postgres_url") if engine == "postgres" else None
    if database_url:  # the warehouse resource reads it at run time, as in a deployment
        monkeypatch.setenv("SIGNALWORKS_DATABASE_URL", database_url)
    for computed in _compute(tmp_path, database_url):
        rows, (start, end) = _day_slice(computed.warehouse, DAYS[0], "1h", "BTC/USDT")
        # SQLite stores NaN as NULL (not defined): infinity is what it can hold wrongly
        bad_value = float("nan") if engine == "postgres" else float("inf")
        broken = rows.with_columns(pl.when(pl.col("ts") == rows.get_column("ts")[10]).then(bad_value)
                                   .otherwise(pl.col("rsi_14")).alias("rsi_14"))
        computed.warehouse.replace_indicators(broken, exchange="sim", timeframe="1h", start=start, end=end,
                                              symbols=["BTC/USDT"])
        figures = computed.run_checks()["finite_values"]
        assert figures[DAYS[0]]["passed"] is False
        assert figures[DAYS[0]]["rows_with_non_finite_values"] == 1 and figures[DAYS[0]]["columns"] == ["rsi_14"]
        assert figures[DAYS[1]]["passed"] is True and figures[DAYS[1]]["rows_with_non_finite_values"] == 0
        assert computed.statuses("finite_values") == {DAYS[0]: "FAILED", DAYS[1]: "SUCCEEDED"}


def test_complete_fails_on_the_day_a_candle_lost_its_indicators(computed: Computed) -> None:
    rows, (start, end) = _day_slice(computed.warehouse, DAYS[1], "1h", "ETH/USDT")
    computed.warehouse.replace_indicators(rows.filter(pl.col("ts") != rows.get_column("ts")[5]), exchange="sim",
                                          timeframe="1h", start=start, end=end, symbols=["ETH/USDT"])
    figures = computed.run_checks()["complete"]
    assert figures[DAYS[1]]["passed"] is False
    assert figures[DAYS[1]]["missing_rows"] == 1 and figures[DAYS[1]]["missing_by_timeframe"] == {"1h": 1}
    assert "ETH/USDT" in figures[DAYS[1]]["sample"]
    assert figures[DAYS[0]]["passed"] is True
    assert computed.statuses("complete") == {DAYS[0]: "SUCCEEDED", DAYS[1]: "FAILED"}


def test_unique_keys_fails_on_the_day_a_duplicate_slipped_in(computed: Computed) -> None:
    """The primary key prevents duplicates; this guards against storage that lost it (a restore
    without constraints): rebuild the table without its key and copy one row of the first day."""
    _, (start, end) = _day_slice(computed.warehouse, DAYS[0], "1h", "SOL/USDT")
    with computed.warehouse.engine.begin() as connection:
        connection.execute(text("CREATE TABLE indicators_copy AS SELECT * FROM indicators"))
        connection.execute(text("DROP TABLE indicators"))
        connection.execute(text("ALTER TABLE indicators_copy RENAME TO indicators"))
        connection.execute(text("INSERT INTO indicators SELECT * FROM indicators WHERE symbol = 'SOL/USDT' "
                                "AND timeframe = '1h' AND ts >= :a AND ts < :b LIMIT 1"),
                           {"a": int(start.timestamp() * 1000), "b": int(end.timestamp() * 1000)})
    figures = computed.run_checks()["unique_keys"]
    assert figures[DAYS[0]]["passed"] is False and figures[DAYS[0]]["duplicates"] == 1
    assert figures[DAYS[1]]["passed"] is True and figures[DAYS[1]]["duplicates"] == 0
    assert computed.statuses("unique_keys") == {DAYS[0]: "FAILED", DAYS[1]: "SUCCEEDED"}
