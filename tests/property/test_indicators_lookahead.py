"""No look-ahead: changing candles after a cut point leaves every indicator up to it unchanged.

Covers every column, the multi-timeframe divergence included (its higher-timeframe candles are
re-aggregated from the changed candles), on random frames of several symbols.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml.indicators import IndicatorParams, compute_indicators
from tests.ml.indicators.strategies import candle_frames
from tests.ml.indicators.support import aggregate

PARAMS = IndicatorParams(swing_length=3, structure_max_age=60)  # structures form often in 400 bars


def _perturb(candles: pl.DataFrame, cut: pl.Expr, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    factor = pl.Series(np.exp(rng.normal(0, 0.05, candles.height)))
    later = cut
    return candles.with_columns(
        pl.when(later).then(pl.col(c) * factor).otherwise(pl.col(c)).alias(c)
        for c in ("open", "high", "low", "close")
    ).with_columns(
        pl.when(later).then(pl.col("volume") * factor * 3).otherwise(pl.col("volume")).alias("volume")
    )


def _higher(candles: pl.DataFrame) -> pl.DataFrame:
    return compute_indicators(aggregate(candles, "4h")).select("exchange", "symbol", "timeframe", "ts", "rsi_14")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(candle_frames(), st.floats(0.0, 1.0), st.integers(0, 2**32 - 1))
def test_changing_later_candles_changes_nothing_before(candles: pl.DataFrame, where: float, seed: int) -> None:
    times = candles.get_column("ts").unique().sort()
    cut_ts = times[int(where * (times.len() - 1))]
    changed = _perturb(candles, pl.col("ts") > cut_ts, seed)
    before = compute_indicators(candles, params=PARAMS, higher_timeframe_rsi=_higher(candles))
    after = compute_indicators(changed, params=PARAMS, higher_timeframe_rsi=_higher(changed))
    keep = pl.col("ts") <= cut_ts
    assert before.filter(keep).equals(after.filter(keep))


@settings(max_examples=25, deadline=None)
@given(candle_frames(max_n=300), st.floats(0.05, 0.95))
def test_truncating_the_future_changes_nothing_before(candles: pl.DataFrame, where: float) -> None:
    """freqtrade's look-ahead analysis: the same frame cut at ``t`` gives the same values up to t."""
    times = candles.get_column("ts").unique().sort()
    cut_ts = times[int(where * (times.len() - 1))]
    keep = pl.col("ts") <= cut_ts
    full = compute_indicators(candles, params=PARAMS).filter(keep)
    truncated = compute_indicators(candles.filter(keep), params=PARAMS)
    assert full.equals(truncated)
