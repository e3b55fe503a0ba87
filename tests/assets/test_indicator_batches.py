"""Indicators computed a few symbols at a time are the indicators computed all at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from assets.indicators import TIMEFRAMES, build_indicators_by_day
from assets.mtf import build_multi_timeframe
from resources.warehouse.store import Warehouse
from tests.support.builders import make_candles

START = datetime(2024, 1, 1, tzinfo=UTC)
SYMBOLS = ("BTC/USDT", "DOGE/USDT", "ETH/USDT", "PEPE/USDT", "SOL/USDT")
DAYS = [f"2024-02-{day:02d}" for day in (25, 26, 27, 28, 29)]  # a Sunday (1w) to a month end (1M)


def _warehouse(url: str) -> Warehouse:
    warehouse = Warehouse.from_url(url)
    candles = make_candles(24 * 60, symbols=SYMBOLS, start=START, seed=3)
    end = START + timedelta(days=60)
    warehouse.replace_candles(candles, exchange="sim", timeframe="1h", start=START, end=end, symbols=SYMBOLS)
    build_multi_timeframe(warehouse, exchange="sim", days=[(START + timedelta(days=d)).date().isoformat()
                                                            for d in range(60)], now=end)
    return warehouse


def _all_indicators(warehouse: Warehouse) -> pl.DataFrame:
    return pl.concat([warehouse.read_indicators(timeframe=tf, exchange="sim") for tf in TIMEFRAMES]) \
        .sort("timeframe", "symbol", "ts")


def test_batches_of_two_symbols_store_what_one_batch_stores(warehouse_url: str, tmp_path: Path) -> None:
    together = _warehouse(f"sqlite:///{tmp_path / 'together.db'}")
    batched = _warehouse(warehouse_url)
    counts_together = build_indicators_by_day(together, exchange="sim", days=DAYS, batch_symbols=100)
    counts_batched = build_indicators_by_day(batched, exchange="sim", days=DAYS, batch_symbols=2)
    assert counts_batched == counts_together
    assert counts_together["2024-02-29"]["1h"] == 24 * len(SYMBOLS)
    left, right = _all_indicators(batched), _all_indicators(together)
    assert left.height == right.height > 0
    assert set(left.get_column("symbol").unique()) == set(SYMBOLS)
    assert set(left.get_column("timeframe").unique()) >= {"1h", "2h", "4h", "12h", "1d", "3d", "1w", "1M"}
    assert left.equals(right)
