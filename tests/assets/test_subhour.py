"""5m and 15m candles from stored 1m candles: complete buckets only, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from dagster import DagsterInstance

from assets.subhour import build_subhour_candles
from ml.marketdata.frames import CANDLE_SCHEMA
from ml.marketdata.resample import resample
from resources.exchanges.sim import SimExchange
from resources.warehouse.store import Warehouse
from tests.assets.conftest import sim_definitions

DAY = datetime(2024, 3, 10, tzinfo=UTC)
NOW = DAY + timedelta(hours=5, minutes=7)  # 05:05 bucket (5m) and 05:00 bucket (15m) still open
SYMBOLS = ("BTC/USDT", "ETH/USDT")


def sim_minutes(symbols: tuple[str, ...], start: datetime, end: datetime, now: datetime) -> pl.DataFrame:
    exchange = SimExchange(clock=lambda: now)
    frames = [exchange.fetch_ohlcv(symbol, "1m", start, end).with_columns(
        pl.lit("sim").alias("exchange"), pl.lit(symbol).alias("symbol"), pl.lit("1m").alias("timeframe"))
        for symbol in symbols]
    return pl.concat(frames).select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()])


def test_buckets_are_built_from_the_stored_minutes_and_only_when_complete(warehouse: Warehouse) -> None:
    minutes = sim_minutes(SYMBOLS, DAY, NOW, NOW)
    hole = DAY + timedelta(hours=2, minutes=7)
    stored = minutes.filter(~((pl.col("symbol") == "ETH/USDT") & (pl.col("ts") == hole)))
    warehouse.replace_candles(stored, exchange="sim", timeframe="1m", start=DAY, end=NOW, symbols=SYMBOLS)

    report = build_subhour_candles(warehouse, exchange="sim", start=DAY, end=DAY + timedelta(days=1), now=NOW)

    for timeframe, closed in (("5m", 61), ("15m", 20)):
        built = warehouse.read_candles(timeframe=timeframe, exchange="sim")
        expected, _ = resample(stored, timeframe, now=NOW, source="1m")
        assert built.equals(expected), timeframe
        btc = built.filter(pl.col("symbol") == "BTC/USDT")
        assert btc.height == closed  # buckets closed by 05:07; the one still open is not a candle
        length = 5 if timeframe == "5m" else 15
        first = minutes.filter((pl.col("symbol") == "BTC/USDT") & (pl.col("ts") < DAY + timedelta(minutes=length)))
        assert btc.row(0, named=True)["open"] == first["open"][0]
        assert btc.row(0, named=True)["close"] == first["close"][-1]
        assert btc.row(0, named=True)["volume"] == pytest.approx(first["volume"].sum(), rel=1e-12)
        eth = built.filter(pl.col("symbol") == "ETH/USDT")
        assert eth.height == closed - 1  # the bucket holding the missing minute is not built
        assert hole - timedelta(minutes=2 if timeframe == "5m" else 7) not in eth.get_column("ts").to_list()
    lacking = {(r["symbol"], r["timeframe"], r["ts"]) for r in report.incomplete}
    assert lacking == {("ETH/USDT", "5m", "2024-03-10T02:05:00+00:00"), ("ETH/USDT", "15m", "2024-03-10T02:00:00+00:00")}
    assert report.pending == 4  # the open 05:05 (5m) and 05:00 (15m) buckets of both symbols

    # the missing minute arrives: its buckets are built; a second build rewrites nothing else
    warehouse.replace_candles(minutes, exchange="sim", timeframe="1m", start=DAY, end=NOW, symbols=SYMBOLS)
    again = build_subhour_candles(warehouse, exchange="sim", start=hole, end=hole + timedelta(minutes=1), now=NOW,
                                  symbols=["ETH/USDT"])
    assert again.incomplete == []
    for timeframe in ("5m", "15m"):
        expected, _ = resample(minutes, timeframe, now=NOW, source="1m")
        assert warehouse.read_candles(timeframe=timeframe, exchange="sim").equals(expected), timeframe


def test_the_1m_job_builds_the_subhour_candles_of_its_partition(tmp_path: Path, instance: DagsterInstance) -> None:
    now = datetime(2024, 3, 12, 9, 30, tzinfo=UTC)
    defs, settings = sim_definitions(tmp_path, now=now, candles_1m_symbols=3)
    warehouse = Warehouse.from_url(settings.warehouse_url)
    defs.resolve_job_def("markets_job").execute_in_process(instance=instance)
    result = defs.resolve_job_def("candles_1m_job").execute_in_process(instance=instance, partition_key="2024-03-12|sim")
    assert result.success
    minutes = warehouse.read_candles(timeframe="1m", exchange="sim")
    assert minutes.get_column("symbol").n_unique() == 3
    for timeframe, count in (("5m", 9 * 12 + 6), ("15m", 9 * 4 + 2)):  # 00:00 .. 09:30 closed
        stored = warehouse.read_candles(timeframe=timeframe, exchange="sim")
        expected, _ = resample(minutes, timeframe, now=now, source="1m")
        assert stored.equals(expected) and stored.height == 3 * count, timeframe
    metadata = result.asset_materializations_for_node("candles_subhour")[0].metadata
    assert metadata["candles_by_timeframe"].value == {"5m": 3 * (9 * 12 + 6), "15m": 3 * (9 * 4 + 2)}
    assert metadata["incomplete_buckets"].value == 0
