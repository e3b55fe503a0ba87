"""Hypothesis strategies for random candle frames (ties, flat stretches, zero volume)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
from hypothesis import strategies as st

from ml.marketdata.frames import CANDLE_SCHEMA


def random_candles(rng: np.random.Generator, n: int, symbols: int, tick: float, timeframe: str = "1h") -> pl.DataFrame:
    """``symbols`` random walks of ``n`` candles on a price grid of ``tick`` (many ties)."""
    step = {"1h": timedelta(hours=1), "15m": timedelta(minutes=15)}[timeframe]
    start = datetime(2024, 3, 1, 5, tzinfo=UTC)
    frames = []
    for s in range(symbols):
        level = float(rng.choice([0.0004, 1.0, 250.0, 60_000.0]))
        moves = rng.normal(0, 0.01, n) * (rng.random(n) > 0.2)  # flat stretches
        close = np.maximum(np.round(level * np.exp(np.cumsum(moves)) / (tick * level)) * tick * level, tick * level)
        open_ = np.concatenate([[close[0]], close[:-1]])
        wick = np.round(rng.exponential(0.004, (2, n)) / tick) * tick * level
        high = np.maximum(open_, close) + wick[0]
        low = np.maximum(np.minimum(open_, close) - wick[1], tick * level / 2)
        volume = np.where(rng.random(n) < 0.1, 0.0, rng.gamma(2.0, 10.0, n))
        frames.append(
            pl.DataFrame(
                {
                    "exchange": "sim",
                    "symbol": f"S{s}/USDT",
                    "timeframe": timeframe,
                    "ts": [start + i * step for i in range(n)],
                    "open": open_,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": volume,
                }
            )
        )
    return pl.concat(frames).select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()])


@st.composite
def candle_frames(draw: st.DrawFn, max_n: int = 400, max_symbols: int = 3) -> pl.DataFrame:
    n = draw(st.integers(1, max_n))
    symbols = draw(st.integers(1, max_symbols))
    tick = draw(st.sampled_from([1e-4, 1e-3, 1e-2]))
    seed = draw(st.integers(0, 2**32 - 1))
    return random_candles(np.random.default_rng(seed), n, symbols, tick)
