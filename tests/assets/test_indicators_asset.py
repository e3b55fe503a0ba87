"""``indicators`` through Dagster: every timeframe, partition values equal a full-history run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
from dagster import DagsterInstance
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from assets.indicators import closing_slice
from ml.indicators import compute_indicators
from resources.warehouse.store import Warehouse
from tests.assets.conftest import sim_definitions

NOW = datetime(2024, 3, 12, 9, 30, tzinfo=UTC)


def test_closing_slices() -> None:
    one_ms = timedelta(milliseconds=1)
    assert closing_slice("2024-03-10", "1h") == (datetime(2024, 3, 9, 23, tzinfo=UTC) + one_ms,
                                                 datetime(2024, 3, 10, 23, tzinfo=UTC) + one_ms)
    assert closing_slice("2024-03-10", "1d") == (datetime(2024, 3, 9, tzinfo=UTC) + one_ms,
                                                 datetime(2024, 3, 10, tzinfo=UTC) + one_ms)
    start, end = closing_slice("2024-03-10", "1w")  # a Sunday: the week that opened Monday 4 March
    assert start <= datetime(2024, 3, 4, tzinfo=UTC) < end
    start, end = closing_slice("2024-02-29", "1M")
    assert start == datetime(2024, 2, 1, tzinfo=UTC) and end > start
    start, end = closing_slice("2024-02-28", "1M")
    assert start == end


def test_partitions_equal_one_full_history_computation(tmp_path: Path) -> None:
    defs, settings = sim_definitions(tmp_path, now=NOW)
    warehouse = Warehouse.from_url(settings.warehouse_url)
    with DagsterInstance.ephemeral() as instance:
        assert defs.resolve_job_def("markets_job").execute_in_process(instance=instance).success
        result = defs.resolve_job_def("candles_1h_job").execute_in_process(
            instance=instance, tags={ASSET_PARTITION_RANGE_START_TAG: "2024-02-20|sim",
                                     ASSET_PARTITION_RANGE_END_TAG: "2024-03-11|sim"})
        assert result.success
    events = result.asset_materializations_for_node("indicators")
    timeframes = {tf for event in events for tf in event.metadata["rows_by_timeframe"].value}
    assert timeframes >= {"1h", "2h", "4h", "12h", "1d", "3d", "1w"}
    assert len(events) == 21
    for event in events:  # each partition counts the indicators of the candles closing on its own day
        day = str(event.partition).split("|")[0]
        own = event.metadata["rows_by_timeframe"].value
        for timeframe in ("1h", "1d", "1w"):
            start, end = closing_slice(day, timeframe)
            stored = warehouse.read_indicators(timeframe=timeframe, exchange="sim", start=start, end=end).height
            assert own.get(timeframe, 0) == stored, (day, timeframe)
        assert event.metadata["rows"].value == sum(own.values())
    stored = warehouse.read_indicators(timeframe="1h", exchange="sim", symbols=["BTC/USDT", "PEPE/USDT"])
    candles = warehouse.read_candles(timeframe="1h", exchange="sim", symbols=["BTC/USDT", "PEPE/USDT"])
    assert stored.height == candles.height
    full = compute_indicators(candles)
    # the last week is past EMA-200 warm-up in both: partition values equal the full computation
    tail = pl.col("ts") >= datetime(2024, 3, 5, tzinfo=UTC)
    ours, reference = stored.filter(tail), full.filter(tail)
    for column in ("ema_21", "rsi_14", "macd", "atr_14", "bb_upper", "vwap", "supertrend", "td_up", "fvg_bull"):
        left, right = ours.get_column(column), reference.get_column(column)
        if left.dtype.is_float():
            assert ((left - right).abs() <= 1e-9 * right.abs().clip(lower_bound=1e-12)).all(), column
        else:
            assert left.equals(right), column
    weekly = warehouse.read_indicators(timeframe="1w", exchange="sim", symbols=["BTC/USDT"])
    assert weekly.height == warehouse.read_candles(timeframe="1w", exchange="sim", symbols=["BTC/USDT"]).height
