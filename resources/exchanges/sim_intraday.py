"""The simulator's intraday layer: a 1-minute path inside each UTC day, and exact aggregation.

Inside day ``g`` an asset's log price runs from the day's open to its close (both fixed by
:mod:`resources.exchanges.sim_daily`) along a heteroscedastic Brownian bridge at 1-minute
resolution: Student-t minute innovations, an intraday seasonality, log-normal per-hour volatility
multipliers (the source of fat-tailed hourly returns) and rare one-minute jumps. Every asset but
BTC adds ``beta`` times BTC's minute increments of the same day to its own (idiosyncratic) bridge,
so alts move with BTC at every horizon. Each (asset, day) has its own random stream, so any minute
is a pure function of (seed, asset, timestamp).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from ml.marketdata.frames import OHLCV_SCHEMA
from resources.exchanges.sim_daily import SimParams

MINUTES_PER_DAY = 1440
MINUTE_MS = 60_000

_SEASON = np.array(
    [1.0, 0.95, 0.9, 0.85, 0.8, 0.8, 0.85, 0.95, 1.05, 1.05, 1.0, 1.0,
     1.05, 1.25, 1.35, 1.3, 1.2, 1.1, 1.0, 0.95, 0.9, 0.85, 0.85, 0.9]
)  # fmt: skip
#: Relative volatility per UTC hour (root mean square 1): quiet Asian night, busy US open.
SEASONALITY = _SEASON / np.sqrt(np.mean(_SEASON**2))


@dataclass(frozen=True)
class DayPath:
    """One asset's minute path over one UTC day.

    ``logp`` has 1441 entries: the log price (USD) at every minute boundary from 00:00 to the
    next 00:00. The other arrays have one entry per minute: ``up`` (>= 1) / ``down`` (<= 1) are
    the wick multipliers of max / min(open, close), ``volume`` is in base units, ``scale`` is the
    minute's sigma.
    """

    logp: np.ndarray
    up: np.ndarray
    down: np.ndarray
    volume: np.ndarray
    scale: np.ndarray


@dataclass(frozen=True)
class Bars:
    """Columns of candles: ``ts`` open time in epoch ms (UTC), prices in USD, volume in base units."""

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return int(self.ts.size)

    def take(self, index: np.ndarray | slice) -> Bars:
        return Bars(*(column[index] for column in self.columns()))

    def columns(self) -> tuple[np.ndarray, ...]:
        return (self.ts, self.open, self.high, self.low, self.close, self.volume)

    def scaled(self, price: float, volume: float) -> Bars:
        """Prices times ``price`` and volume times ``volume`` (venue basis, venue share)."""
        if price == 1.0 and volume == 1.0:
            return self
        return Bars(
            self.ts, self.open * price, self.high * price, self.low * price,
            self.close * price, self.volume * volume,
        )  # fmt: skip

    def to_frame(self) -> pl.DataFrame:
        """The bars as a frame with schema :data:`ml.marketdata.frames.OHLCV_SCHEMA`."""
        data = dict(zip(OHLCV_SCHEMA, self.columns(), strict=True))
        return pl.DataFrame(data).with_columns(pl.col("ts").cast(OHLCV_SCHEMA["ts"]))

    @staticmethod
    def concat(parts: list[Bars]) -> Bars:
        if not parts:
            return empty_bars()
        if len(parts) == 1:
            return parts[0]
        return Bars(
            *(np.concatenate(cols) for cols in zip(*(p.columns() for p in parts), strict=True))
        )


def empty_bars() -> Bars:
    return Bars(np.empty(0, dtype=np.int64), *(np.empty(0) for _ in range(5)))


def generate_day(
    rng: np.random.Generator,
    params: SimParams,
    *,
    x_open: float,
    x_close: float,
    sigma: float,
    volume_per_minute: float,
    segment: str,
    factor: DayPath | None = None,
    beta: float = 1.0,
) -> DayPath:
    """Draw one day's minute path from ``x_open`` to ``x_close`` (log USD).

    ``sigma`` is the daily sigma of the asset's own bridge (BTC: total; others: idiosyncratic);
    ``factor`` is BTC's path of the same day, loaded with ``beta``. The draw order is fixed, so
    the same generator state always yields the same path.
    """
    p = params
    n = MINUTES_PER_DAY
    hourly = SEASONALITY * np.exp(
        p.hourly_vol_sigma * rng.standard_normal(24) - p.hourly_vol_sigma**2 / 2
    )
    hourly *= sigma / np.sqrt(60.0 * np.dot(hourly, hourly))  # minute variances sum to sigma**2
    scale = np.repeat(hourly, 60)
    variance = scale * scale
    z = rng.standard_normal(n) * scale
    n_jumps = int(rng.poisson(p.jumps_per_day(segment)))
    if n_jumps:
        where = rng.integers(0, n, n_jumps)
        z[where] += rng.standard_normal(n_jumps) * p.intraday_jump_scale * sigma / np.sqrt(24)

    target = x_close - x_open
    if factor is not None:
        target -= beta * (factor.logp[-1] - factor.logp[0])
    z -= (z.sum() - target) / variance.sum() * variance  # the bridge: increments sum to target
    if factor is not None:
        z += beta * np.diff(factor.logp)
        scale = np.sqrt(variance + (beta * factor.scale) ** 2)

    logp = np.empty(n + 1)
    logp[0] = 0.0
    np.cumsum(z, out=logp[1:])
    logp += x_open
    logp[-1] = x_close  # exactly the daily close, whatever the rounding
    draws = rng.standard_exponential((3, n))  # wick up, wick down, volume noise (mean 1)
    up = 1.0 + p.wick_scale * scale * draws[0]
    down = 1.0 / (1.0 + p.wick_scale * scale * draws[1])

    # volume: busier in volatile hours and on large moves; noise mean 1, E[0.5 + |Z|] ~ 1.3
    intensity = scale / np.sqrt(np.mean(scale * scale))
    activity = intensity * (0.5 + np.abs(z) / scale) * (0.4 + 0.6 * draws[2]) / 1.3
    if segment == "meme":
        spikes = np.flatnonzero(rng.random(n) < p.meme_spike_prob)
        activity[spikes] *= rng.uniform(*p.meme_spike_size, spikes.size)
    return DayPath(logp=logp, up=up, down=down, volume=volume_per_minute * activity, scale=scale)


def day_bars(path: DayPath, day_ms: int, factors: np.ndarray | None = None) -> Bars:
    """The 1440 minute candles of ``path`` (day opening at ``day_ms``).

    ``factors`` (1441 entries, optional) multiplies the price at each minute boundary, e.g. the
    perpetual premium; high and low take the larger and smaller factor of their minute. Open of
    minute ``i + 1`` is always exactly the close of minute ``i``.
    """
    prices = np.exp(path.logp)
    opens, closes = prices[:-1], prices[1:]
    highs = np.maximum(opens, closes) * path.up
    lows = np.minimum(opens, closes) * path.down
    if factors is not None:
        f0, f1 = factors[:-1], factors[1:]
        opens, closes = opens * f0, closes * f1
        highs, lows = highs * np.maximum(f0, f1), lows * np.minimum(f0, f1)
    ts = day_ms + MINUTE_MS * np.arange(MINUTES_PER_DAY, dtype=np.int64)
    return Bars(ts, opens, highs, lows, closes, path.volume.copy())


def aggregate(bars: Bars, step_ms: int) -> Bars:
    """Candles of ``step_ms`` from sorted minute bars: open first, high max, low min, close last,
    volume sum. A bucket with no minute has no candle (gaps stay gaps)."""
    if step_ms == MINUTE_MS or len(bars) == 0:
        return bars
    bucket = bars.ts - bars.ts % step_ms
    starts = np.flatnonzero(np.concatenate([[True], bucket[1:] != bucket[:-1]]))
    ends = np.concatenate([starts[1:], [len(bars)]]) - 1
    return Bars(
        bucket[starts],
        bars.open[starts],
        np.maximum.reduceat(bars.high, starts),
        np.minimum.reduceat(bars.low, starts),
        bars.close[ends],
        np.add.reduceat(bars.volume, starts),
    )
