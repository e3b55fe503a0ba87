"""Hand-built candle sequences for the EMA-crossover tests.

The 15m sequence: 60 candles falling 0.2 % each (volume 100), then 20 rising 1 % each (volume
200), from ``T0``. TA-Lib on these closes: EMA 9 crosses above EMA 21 at candle 64 (RSI 14 = 69.0,
ADX 14 = 77.5, ATR 14 = 0.63 % of the close, volume 200 / SMA20 = 1.6), the first cross of the
series; candle 62 is the first with RSI above 55. The 1h sequence starts 40 h before ``T0``, so
the last 1h candle closed by candle 64's close (16:15) is 1h candle 55 (15:00-16:00).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from ml.marketdata.frames import CANDLE_SCHEMA

T0 = datetime(2024, 3, 1, tzinfo=UTC)
CROSS = 64  # the trigger candle of the long sequence
H1_START = T0 - timedelta(hours=40)
H1_USED = 55  # the 1h candle the trigger at CROSS confirms on
STEP = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1)}


def sequence(
    returns: Sequence[float],
    volumes: Sequence[float],
    timeframe: str,
    start: datetime,
    *,
    symbol: str = "BTC/USDT",
    exchange: str = "binance",
    wicks: Mapping[int, tuple[float, float]] | None = None,
    mirror: bool = False,
) -> pl.DataFrame:
    """Candles whose closes compound ``returns`` from 100, open = previous close, high / low 0.1 %
    beyond the body; ``wicks`` multiplies candle i's high and low; ``mirror`` maps each price p
    to 10_000 / p (a fall becomes a rise of the same log size, highs become lows)."""
    close = 100.0 * np.cumprod(1.0 + np.asarray(returns, dtype=float))
    open_ = np.concatenate([[100.0], close[:-1]])
    high = np.maximum(open_, close) * 1.001
    low = np.minimum(open_, close) * 0.999
    for i, (high_factor, low_factor) in (wicks or {}).items():
        high[i] *= high_factor
        low[i] *= low_factor
    if mirror:
        open_, close, high, low = 10_000 / open_, 10_000 / close, 10_000 / low, 10_000 / high
    return pl.DataFrame({
        "exchange": exchange, "symbol": symbol, "timeframe": timeframe,
        "ts": [start + STEP[timeframe] * i for i in range(len(close))],
        "open": open_, "high": high, "low": low, "close": close, "volume": np.asarray(volumes, dtype=float),
    }).select(pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items())


def candles_15m(*, rising_volume: float = 200.0, mirror: bool = False, symbol: str = "BTC/USDT") -> pl.DataFrame:
    """The falling-then-rising 15m sequence (see the module docstring)."""
    return sequence([-0.002] * 60 + [0.01] * 20, [100.0] * 60 + [rising_volume] * 20, "15m", T0,
                    mirror=mirror, symbol=symbol)


#: 1h shapes (returns of 60 candles from H1_START, volume 100 each unless changed) and the checks
#: of the 4 that pass at candle H1_USED, found with TA-Lib:
#: * "all": rising 0.5 % an hour: EMA 9 > EMA 21, RSI 100, close at the top of its range.
#: * "no_momentum": rising, then 3 falls of 3 % up to H1_USED: EMA 9 still above EMA 21, RSI 39.3
#:   (59.9 mirrored); a low wick (x 0.7) at candle 50 keeps the close above the midpoint of the
#:   last 12 candles.
#: * "no_trend": falling 0.5 % an hour, then 3 rises of 3 %: EMA 9 still below EMA 21, RSI 59.0
#:   (40.1 mirrored), the close above its 12-candle midpoint.
SHAPES: dict[str, tuple[list[float], dict[int, tuple[float, float]]]] = {
    "all": ([0.005] * 60, {}),
    "no_momentum": ([0.005] * (H1_USED - 2) + [-0.03] * 3 + [0.0] * 4, {50: (1.0, 0.7)}),
    "no_trend": ([-0.005] * (H1_USED - 2) + [0.03] * 3 + [0.0] * 4, {}),
}


def candles_1h(
    shape: str = "all",
    *,
    low_volume: bool = False,
    high_wick: bool = False,
    mirror: bool = False,
    symbol: str = "BTC/USDT",
) -> pl.DataFrame:
    """A 1h shape of :data:`SHAPES`; ``low_volume`` halves the volume from candle H1_USED on (the
    volume check fails), ``high_wick`` puts a high wick (x 1.5) on candle H1_USED - 3, lifting the
    12-candle midpoint above the close (the structure check fails)."""
    returns, wicks = SHAPES[shape]
    wicks = dict(wicks)
    if high_wick:
        wicks[H1_USED - 3] = (1.5, wicks.get(H1_USED - 3, (1.0, 1.0))[1])
    volumes = [100.0] * H1_USED + [50.0 if low_volume else 100.0] * (len(returns) - H1_USED)
    return sequence(returns, volumes, "1h", H1_START, wicks=wicks, mirror=mirror, symbol=symbol)


def random_market(n: int, symbols: Sequence[str], *, seed: int, exchange: str = "binance") -> tuple[pl.DataFrame, pl.DataFrame]:
    """``n`` seeded 15m candles per symbol from ``T0`` (trending regimes of 20-80 candles with a
    drift of up to +-0.15 % a candle, 0.3 % noise, volume rising with the move) and the 1h candles
    built from them by complete 4-candle buckets."""
    rng = np.random.default_rng(seed)
    frames = []
    for symbol in symbols:
        drift = np.repeat(rng.uniform(-0.0015, 0.0015, n), rng.integers(20, 80, n))[:n]
        returns = drift + rng.normal(0.0, 0.003, n)
        volumes = rng.gamma(2.0, 50.0, n) * (1.0 + np.abs(returns) / 0.003)
        frame = sequence(returns, volumes, "15m", T0, symbol=symbol, exchange=exchange)
        spread = rng.uniform(0.0, 0.002, (2, n))
        frames.append(frame.with_columns(pl.col("high") * (1 + spread[0]), pl.col("low") * (1 - spread[1])))
    m15 = pl.concat(frames)
    return m15, aggregate(m15)


def aggregate(m15: pl.DataFrame, timeframe: str = "1h", per_bucket: int = 4) -> pl.DataFrame:
    """Candles of ``timeframe`` from complete buckets of ``per_bucket`` shorter candles (open of the
    first, highest high, lowest low, close of the last, summed volume); incomplete buckets dropped."""
    every = {"1h": "1h", "15m": "15m"}[timeframe]
    return (m15.sort("exchange", "symbol", "ts")
            .group_by_dynamic("ts", every=every, group_by=["exchange", "symbol"], closed="left", label="left")
            .agg(pl.col("open").first(), pl.col("high").max(), pl.col("low").min(), pl.col("close").last(),
                 pl.col("volume").sum(), pl.len().alias("n"))
            .filter(pl.col("n") == per_bucket)
            .with_columns(pl.lit(timeframe).alias("timeframe"))
            .select(pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()))
