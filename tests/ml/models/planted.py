"""A seeded simulated market with planted regimes (known answers for the regime detector).

Segments of 150-300 hourly candles follow each other, each in one regime (never the same twice
in a row), with per-candle log-return drift and volatility and a volume level:

=================  ========  ==========  ===========
regime             drift     volatility  volume mean
=================  ========  ==========  ===========
Bull trend         +0.30 %   0.8 %       100
Bear trend         -0.30 %   0.8 %       100
Sideways            0.00 %   0.4 %        60
High volatility     0.00 %   3.0 %       250
=================  ========  ==========  ===========
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from ml.marketdata.frames import TS
from ml.models.regime_features import REGIMES

PLANTED: dict[str, tuple[float, float, float]] = {
    "Bull trend": (0.003, 0.008, 100.0),
    "Bear trend": (-0.003, 0.008, 100.0),
    "Sideways": (0.0, 0.004, 60.0),
    "High volatility": (0.0, 0.03, 250.0),
}


def planted_market(n: int, *, seed: int) -> tuple[pl.DataFrame, np.ndarray]:
    """``(candles, planted regime name per candle)``: ``n`` hourly candles from 2024-01-01 UTC."""
    rng = np.random.default_rng(seed)
    regimes: list[str] = []
    previous = None
    while len(regimes) < n:
        name = str(rng.choice([r for r in REGIMES if r != previous]))
        regimes.extend([name] * int(rng.integers(150, 301)))
        previous = name
    planted = np.array(regimes[:n], dtype=object)
    drift, vol, volume_mean = (np.array([PLANTED[r][i] for r in planted]) for i in range(3))
    close = 100.0 * np.exp(np.cumsum(drift + vol * rng.standard_normal(n)))
    volume = volume_mean * rng.gamma(4.0, 0.25, n)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    candles = pl.DataFrame(
        {"ts": [start + timedelta(hours=i) for i in range(n)], "close": close, "volume": volume}
    ).with_columns(pl.col("ts").cast(TS))
    return candles, planted
