"""The live BOS scan after one new candle (scan_markets over the op's buffer, cooldown seeded from
the earlier signals) finds exactly the full recomputation's signals of that candle, candle after
candle, on simulated and on real candles: the figure the scan benchmark prints compares two ways
of getting the same answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from benchmarks.strategies import (
    full_scan_signals,
    live_scan_signals,
    planted_breaks,
    real_5m_candles,
    simulated_minutes,
)
from ml.marketdata.frames import CANDLE_SCHEMA
from ml.strategies.bos import SEED_CONFIG, BosConfig
from ml.strategies.scan import BOS_LOOKBACK
from tests.support.fixtures import shared_fixtures_dir

LOOSE = {"event_filter_type": "BOTH", "bos_strength_threshold": 1.002, "min_volume_multiplier": 1.0,
         "require_body_ratio": 0.3, "min_event_interval_minutes": 30}  # a cooldown that bites: kept matters


def assert_live_scans_equal_full(candles: pl.DataFrame, config: BosConfig, newest: list[datetime]) -> int:
    """For each new candle (open time) in ``newest``: live scan == the full recomputation's signals
    of that candle. Returns how many signals were compared."""
    full = full_scan_signals(candles, config)
    compared = 0
    for t in newest:
        expected = [s for s in full if s.trigger_ts == t]
        live = live_scan_signals(candles, t, config, [s for s in full if s.trigger_ts < t])
        assert live == expected, f"new candle {t}"
        compared += len(expected)
    return compared


def breaks(candles: pl.DataFrame, config: BosConfig) -> list[datetime]:
    """Trigger times of every break, the ones the cooldown drops included."""
    uncooled = config.model_copy(update={"min_event_interval_minutes": 0})
    return sorted({s.trigger_ts for s in full_scan_signals(candles, uncooled)})


@pytest.mark.parametrize("seed", [0, 1])
def test_the_benchmarks_live_scan_equals_the_full_recomputation_on_simulated_minutes(seed: int) -> None:
    candles = planted_breaks(simulated_minutes(30, 2 * BOS_LOOKBACK, seed=seed), every=3)
    minutes = candles.get_column("ts").unique().sort().to_list()
    config = BosConfig(**LOOSE)
    compared = assert_live_scans_equal_full(candles, config, minutes[-40:])
    assert compared >= 8, compared  # planted breaks on the newest candle, and the walks' own
    seed_compared = assert_live_scans_equal_full(candles, SEED_CONFIG, minutes[-1:])
    assert seed_compared >= 5, seed_compared  # most of the 10 planted breaks pass the seed filters


def freqtrade_1m() -> pl.DataFrame:
    frame = pl.read_ipc(shared_fixtures_dir() / "freqtrade" / "UNITTEST_BTC-1m.feather")
    return frame.select(
        pl.lit("binance").alias("exchange"), pl.lit("BTC/USDT").alias("symbol"), pl.lit("1m").alias("timeframe"),
        pl.col("date").alias("ts"), "open", "high", "low", "close", "volume",
    ).select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()])


def test_live_scans_equal_the_full_recomputation_on_real_1m_candles() -> None:
    candles = freqtrade_1m()  # freqtrade's real BTC/USDT 1m candles, Nov 2017 (13,681)
    config = BosConfig(**LOOSE)
    triggers = breaks(candles, config)
    minutes = candles.get_column("ts").to_list()
    # every break after the first buffer (kept or cooled down), the minute after some, and quiet minutes
    newest = [t for t in triggers if t > minutes[BOS_LOOKBACK]]
    newest += [t + timedelta(minutes=1) for t in newest[::10]] + minutes[5000:5060]
    compared = assert_live_scans_equal_full(candles, config, sorted(set(newest)))
    assert compared >= 100, compared


def test_live_scans_equal_the_full_recomputation_on_real_5m_candles() -> None:
    candles = real_5m_candles(shared_fixtures_dir() / "binance_2024").filter(
        pl.col("ts") < datetime(2024, 2, 1, tzinfo=UTC))
    config = BosConfig(interval="5m", **LOOSE)
    triggers = breaks(candles, config)
    first = candles.get_column("ts").min() + timedelta(minutes=5 * BOS_LOOKBACK)
    compared = assert_live_scans_equal_full(candles, config, [t for t in triggers if t > first][:150])
    assert compared >= 150, compared
