"""No look-ahead: for random cut points t, changing any candle after t (and any derivatives
observation after t's close) changes no feature at or before t and no label whose horizon ends at
or before t's close."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml.features import build_features, make_labels
from tests.ml.features.support import SMALL, markets, random_market

HOUR = timedelta(hours=1)


def _perturb(frame: pl.DataFrame, later: pl.Expr, columns: tuple[str, ...], seed: int) -> pl.DataFrame:
    factor = pl.Series(np.exp(np.random.default_rng(seed).normal(0, 0.1, frame.height)))
    return frame.with_columns(pl.when(later).then(pl.col(c) * factor).otherwise(pl.col(c)).alias(c) for c in columns)


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(markets(), st.floats(0.0, 1.0), st.integers(0, 2**32 - 1))
def test_changing_the_future_changes_no_feature_or_label_of_the_past(
    market: tuple[pl.DataFrame, pl.DataFrame], where: float, seed: int,
) -> None:
    candles, derivatives = market
    times = candles.get_column("ts").unique().sort()
    cut = times[int(where * (times.len() - 1))]
    changed = _perturb(candles, pl.col("ts") > cut, ("open", "high", "low", "close", "volume"), seed)
    changed_derivs = _perturb(derivatives, pl.col("ts") > cut + HOUR, ("funding_rate", "open_interest"), seed)

    before = build_features(candles, config=SMALL, derivatives=derivatives)
    after = build_features(changed, config=SMALL, derivatives=changed_derivs)
    past = pl.col("ts") <= cut
    assert before.filter(past).equals(after.filter(past))
    if before.filter(~past).height:  # the perturbation does reach the features after the cut
        assert not before.filter(~past).equals(after.filter(~past))

    labels_before = make_labels(candles, horizon=3)
    labels_after = make_labels(changed, horizon=3)
    known = pl.col("label_end_ts") <= cut + HOUR
    assert labels_before.filter(known).equals(labels_after.filter(known))


@settings(max_examples=20, deadline=None, derandomize=True)
@given(markets(max_n=200), st.floats(0.05, 0.95))
def test_truncating_the_future_changes_no_feature_of_the_past(
    market: tuple[pl.DataFrame, pl.DataFrame], where: float,
) -> None:
    """freqtrade's look-ahead analysis: the frame cut at t gives the same features up to t."""
    candles, derivatives = market
    times = candles.get_column("ts").unique().sort()
    cut = times[int(where * (times.len() - 1))]
    past = pl.col("ts") <= cut
    full = build_features(candles, config=SMALL, derivatives=derivatives).filter(past)
    truncated = build_features(candles.filter(past), config=SMALL,
                               derivatives=derivatives.filter(pl.col("ts") <= cut + HOUR))
    assert full.equals(truncated)


def test_the_random_markets_exercise_every_feature() -> None:
    """Guards the property tests against vacuity: every feature has values on such a market."""
    candles, derivatives = random_market(7, 260)
    features = build_features(candles, config=SMALL, derivatives=derivatives)
    empty = [c for c in features.columns if features.get_column(c).null_count() == features.height]
    assert empty == []
