"""Seeded random frames for the feature tests: BTC, ETH and PEPE with gaps and a ragged start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
from hypothesis import strategies as st

from ml.features import FeatureConfig
from ml.marketdata.frames import CANDLE_SCHEMA, DERIVATIVES_SCHEMA

SYMBOLS = ("BTC/USDT", "ETH/USDT", "PEPE/USDT")

#: Short windows so that every feature has values within a few hundred candles.
SMALL = FeatureConfig(
    return_periods=(1, 3), volatility_windows=(5,), volume_window=5, higher_timeframes=("4h", "12h"),
    higher_rsi_period=3, beta_window=10, open_interest_periods=(1, 3), shifts=(1, 2),
    correlated_symbols=("ETH/USDT",),
)


def random_market(seed: int, n: int, *, gap_rate: float = 0.03) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(candles, derivatives): ``n`` 1h candles per symbol from a random hour (some missing) and
    funding / open interest of each symbol's perpetual observed every ~2 hours at odd minutes."""
    rng = np.random.default_rng(seed)
    start = datetime(2024, 3, 1, tzinfo=UTC) + timedelta(hours=int(rng.integers(0, 24)))
    frames, derivs = [], []
    for symbol in SYMBOLS:
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
        open_ = np.concatenate([[close[0]], close[:-1]])
        keep = rng.random(n) >= gap_rate
        frames.append(pl.DataFrame({
            "exchange": "sim", "symbol": symbol, "timeframe": "1h",
            "ts": [start + timedelta(hours=i) for i in range(n)],
            "open": open_, "high": np.maximum(open_, close) * 1.004, "low": np.minimum(open_, close) * 0.996,
            "close": close, "volume": rng.gamma(2.0, 10.0, n),
        }).filter(pl.Series(keep)))
        m = n // 2
        derivs.append(pl.DataFrame({
            "exchange": "sim", "symbol": f"{symbol}:USDT",
            "ts": [start + timedelta(hours=2 * i, minutes=int(rng.integers(0, 120))) for i in range(m)],
            "funding_rate": rng.normal(0, 1e-4, m), "next_funding_ts": None, "mark_price": None,
            "open_interest": rng.uniform(1e5, 2e5, m), "open_interest_value": None,
        }, schema_overrides=DERIVATIVES_SCHEMA))
    candles = pl.concat(frames).select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()])
    return candles, pl.concat(derivs).unique(["symbol", "ts"]).sort("symbol", "ts")


@st.composite
def markets(draw: st.DrawFn, min_n: int = 30, max_n: int = 260) -> tuple[pl.DataFrame, pl.DataFrame]:
    return random_market(draw(st.integers(0, 2**32 - 1)), draw(st.integers(min_n, max_n)))
