"""The no-look-ahead canary: a trained pipeline's predictions at or before a cut time ``t`` must
not move when every candle after ``t`` is altered.

freqtrade's look-ahead analysis, applied to the whole model path (features, regime features,
XGBoost, calibration): the candles after ``t`` are scaled by seeded random factors (prices of a
candle by one common factor, so OHLC stays consistent; volumes by another), the features are
rebuilt from the altered candles with the same builder, and the two prediction sets are compared
row by row at ``ts <= t``. Any difference means something at ``t`` read the future.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl

from ml.models.training import KEY, PROBABILITY_OUTPUT, TrainedSegment, predict_rows

#: ``build(candles) -> feature frame`` (the key plus the model's features).
FeatureBuilder = Callable[[pl.DataFrame], pl.DataFrame]


@dataclass(frozen=True)
class CanaryResult:
    """``passed`` when at least one row at or before ``cut`` was compared and none differed."""

    cut: datetime
    rows_compared: int
    rows_differing: int
    max_abs_difference: float
    candles_altered: int
    rows_after_cut_changed: int

    @property
    def passed(self) -> bool:
        return self.rows_compared > 0 and self.rows_differing == 0


def alter_after(candles: pl.DataFrame, cut: datetime, *, seed: int, scale: float = 0.05) -> pl.DataFrame:
    """``candles`` with every candle opening after ``cut`` scaled by seeded log-normal factors."""
    rng = np.random.default_rng(seed)
    later = pl.col("ts") > cut
    price = pl.Series(np.exp(rng.normal(0.0, scale, candles.height)))
    volume = pl.Series(np.exp(rng.normal(0.0, 6 * scale, candles.height)))
    return candles.with_columns(
        *[pl.when(later).then(pl.col(c) * price).otherwise(pl.col(c)).alias(c) for c in ("open", "high", "low", "close")],
        pl.when(later).then(pl.col("volume") * volume).otherwise(pl.col("volume")).alias("volume"),
    )


def no_look_ahead_canary(trained: TrainedSegment, candles: pl.DataFrame, *, cut: datetime,
                         build: FeatureBuilder, seed: int) -> CanaryResult:
    """Compare the predictions at ``ts <= cut`` from ``candles`` and from ``candles`` altered after ``cut``.

    Parameters
    ----------
    trained
        The pipeline under test.
    candles
        Candles of every symbol ``build`` needs (reference and correlated symbols included).
    cut
        UTC candle open time; at least one candle must open after it.
    build
        Rebuilds the feature frame from candles, exactly as training did.
    seed
        Seeds the alteration.

    Raises
    ------
    ValueError
        When no candle opens after ``cut`` (the canary would prove nothing).
    """
    later = candles.filter(pl.col("ts") > cut).height
    if not later:
        raise ValueError(f"no candle opens after {cut}: nothing to alter")
    altered = alter_after(candles, cut, seed=seed)
    symbols = list(trained.symbols)

    def predictions(source: pl.DataFrame) -> pl.DataFrame:
        features = build(source).filter(pl.col("symbol").is_in(symbols))
        return predict_rows(trained, features, source)

    before, after = predictions(candles), predictions(altered)
    joined = before.join(after, on=KEY, how="inner", suffix="_altered")
    difference = np.abs(joined.select(PROBABILITY_OUTPUT).to_numpy()
                        - joined.select([f"{c}_altered" for c in PROBABILITY_OUTPUT]).to_numpy()).max(axis=1)
    past = joined.get_column("ts") <= cut
    past_difference = difference[past.to_numpy()]
    return CanaryResult(
        cut=cut, rows_compared=int(past.sum()), rows_differing=int((past_difference > 0).sum()),
        max_abs_difference=float(past_difference.max(initial=0.0)), candles_altered=later,
        rows_after_cut_changed=int((difference[~past.to_numpy()] > 0).sum()),
    )
