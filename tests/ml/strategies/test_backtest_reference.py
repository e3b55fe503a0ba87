"""The benchmark's per-row Python loop of the BOS rules gives the vectorised function's signals, bit for
bit, on the real 2024 Binance 5m candles and on seeded random walks: so the throughput ratio the
benchmark prints compares two implementations of the same thing."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from benchmarks.strategies import bos_per_row, real_5m_candles, vectorised_events
from ml.strategies.backtest import strategy_config
from tests.ml.strategies.test_backtest import minute_walk
from tests.support.fixtures import shared_fixtures_dir

CONFIGS = [
    {"event_filter_type": "BOTH"},
    {"event_filter_type": "BOTH", "bos_strength_threshold": 1.002, "min_volume_multiplier": 1.0,
     "require_body_ratio": 0.3},
    {"event_filter_type": "BOS_DOWN", "lookback": 5, "volume_window": 7, "min_candles": 40,
     "min_event_interval_minutes": 60},
]


@pytest.mark.parametrize("overrides", CONFIGS)
def test_per_row_loop_equals_detect_bos_on_real_candles(overrides: dict) -> None:
    candles = real_5m_candles(shared_fixtures_dir() / "binance_2024").filter(
        pl.col("ts") < datetime(2024, 2, 15, tzinfo=UTC))
    config = strategy_config("bos", overrides, timeframe="5m")
    expected = vectorised_events(candles, config)
    assert len(expected) > 10
    assert bos_per_row(candles, config) == expected


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_per_row_loop_equals_detect_bos_on_random_walks(seed: int) -> None:
    candles = pl.concat([minute_walk(3000, seed=seed, symbol="AAA/USDT"), minute_walk(2000, seed=seed + 10,
                                                                                       symbol="BBB/USDT")])
    config = strategy_config("bos", CONFIGS[1], timeframe="1m")
    expected = vectorised_events(candles, config)
    assert len(expected) > 10
    assert bos_per_row(candles.sample(fraction=1.0, shuffle=True, seed=seed), config) == expected
