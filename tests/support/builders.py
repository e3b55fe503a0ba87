"""Seeded data builders for tests."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl

from ml.marketdata.frames import CANDLE_SCHEMA, TS
from ml.marketdata.timeframes import timeframe_ms, to_ms


def make_candles(
    n: int,
    timeframe: str = "1h",
    *,
    symbols: tuple[str, ...] = ("BTC/USDT",),
    exchange: str = "sim",
    start: datetime = datetime(2024, 1, 1, tzinfo=UTC),
    seed: int = 42,
) -> pl.DataFrame:
    """``n`` valid candles per symbol from ``start`` (a seeded random walk), CANDLE_SCHEMA."""
    rng = np.random.default_rng(seed)
    step = timeframe_ms(timeframe)
    frames = []
    for symbol in symbols:
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        open_ = np.concatenate([[close[0]], close[:-1]])
        high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.005, n))
        low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.005, n))
        frames.append(
            pl.DataFrame(
                {
                    "exchange": exchange,
                    "symbol": symbol,
                    "timeframe": timeframe,
                    "ts": to_ms(start) + np.arange(n, dtype=np.int64) * step,
                    "open": open_,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": rng.gamma(2.0, 50.0, n),
                }
            ).with_columns(pl.col("ts").cast(TS))
        )
    return pl.concat(frames).select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()])
