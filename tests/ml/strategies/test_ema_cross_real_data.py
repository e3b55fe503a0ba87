"""EMA-crossover scalper on real Binance 2024 candles (../shared/fixtures/binance_2024): 15m
built from the 5m files by complete 3-candle buckets, 1h from the 1h files, BTC, ETH and SOL."""

from __future__ import annotations

import collections
from datetime import timedelta

import polars as pl
import pytest

from ml.marketdata.frames import CANDLE_SCHEMA
from ml.strategies.ema_cross import EmaCrossConfig, detect_ema_cross
from ml.strategies.signal import MarketSignal
from tests.ml.strategies.ema_support import aggregate
from tests.support.fixtures import shared_fixtures_dir

PAIRS = ("BTC", "ETH", "SOL")


def load(base: str, timeframe: str) -> pl.DataFrame:
    path = shared_fixtures_dir() / "binance_2024" / f"{base}_USDT-{timeframe}.feather"
    return pl.read_ipc(path).select(
        pl.lit("binance").alias("exchange"), pl.lit(f"{base}/USDT").alias("symbol"), pl.lit(timeframe).alias("timeframe"),
        pl.col("date").alias("ts"), "open", "high", "low", "close", "volume",
    ).select(pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items())


@pytest.fixture(scope="module")
def market() -> tuple[pl.DataFrame, pl.DataFrame]:
    m5 = pl.concat([load(base, "5m") for base in PAIRS])
    m15 = aggregate(m5, "15m", per_bucket=3)
    h1 = pl.concat([load(base, "1h") for base in PAIRS])
    return m15, h1


@pytest.fixture(scope="module")
def signals(market: tuple[pl.DataFrame, pl.DataFrame]) -> list[MarketSignal]:
    m15, h1 = market
    return detect_ema_cross(m15, h1)


def test_signals_on_real_data_are_few_consistent_and_reported(
    market: tuple[pl.DataFrame, pl.DataFrame], signals: list[MarketSignal]
) -> None:
    m15, _ = market
    per_symbol = collections.Counter((s.symbol, s.direction) for s in signals)
    risks = collections.Counter(s.risk_level for s in signals)
    confirmations = collections.Counter(s.factors["htf_confirmations"] for s in signals)
    report = (f"ema_cross on {m15.height} real 15m candles (BTC, ETH, SOL, 2024-01..09): {len(signals)} signals;"
              f" {dict(sorted(per_symbol.items()))}; risk {dict(risks)}; 1h confirmations {dict(confirmations)}")
    print(report)
    assert m15.height > 3 * 20_000
    assert {s.symbol for s in signals} == {f"{b}/USDT" for b in PAIRS}
    assert {s.direction for s in signals} == {"long", "short"}
    assert 30 <= len(signals) <= m15.height // 50, "a scalper that fires almost never or on every other candle"
    closes = dict(zip(zip(m15["symbol"], m15["ts"], strict=True), m15["close"], strict=True))
    for s in signals:
        assert s.entry == closes[(s.symbol, s.trigger_ts)]
        assert s.factors["htf_confirmations"] >= 2 and s.factors["adx"] >= 20 and s.factors["volume_ratio"] >= 1.1
        assert (s.factors["rsi"] > 55) if s.direction == "long" else (s.factors["rsi"] < 45)
        assert s.risk_reward >= 1.0 - 1e-9 or len(s.targets) == 1


def test_real_data_signals_before_a_cut_do_not_see_the_rest(
    market: tuple[pl.DataFrame, pl.DataFrame], signals: list[MarketSignal]
) -> None:
    m15, h1 = market
    cut = m15["ts"].min() + timedelta(days=120)
    m15_cut = m15.filter(pl.col("ts") + timedelta(minutes=15) <= cut)
    h1_cut = h1.filter(pl.col("ts") + timedelta(hours=1) <= cut)
    before = [s for s in signals if s.trigger_ts + timedelta(minutes=15) <= cut]
    assert before and len(before) < len(signals)
    assert detect_ema_cross(m15_cut, h1_cut) == before
    assert detect_ema_cross(m15, h1, EmaCrossConfig()) == signals  # deterministic
