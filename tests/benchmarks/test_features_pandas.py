"""The features benchmark's pandas reference computes what ``build_features`` computes: same
columns in the same order, same missing values, values within 1e-9, on small seeded frames with
gaps, ragged starts and two exchanges (so a wrong definition cannot hide behind the ratio)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from benchmarks.features_pandas import build_features_pandas
from ml.features import FeatureConfig, build_features
from ml.features.segments import SegmentsConfig
from tests.ml.features.support import random_market

#: Short windows: every column has values within a few hundred candles.
SHORT = FeatureConfig(return_periods=(1, 3), volatility_windows=(5, 9), volume_window=5,
                      higher_timeframes=("4h", "12h"), higher_rsi_period=3, beta_window=10)


def _two_exchanges(seed: int, n: int) -> pl.DataFrame:
    first, _ = random_market(seed, n)
    second, _ = random_market(seed + 1000, n)
    return pl.concat([first, second.with_columns(pl.lit("other").alias("exchange"))])


@pytest.mark.parametrize(("config", "n"), [(SHORT, 300), (FeatureConfig(), 1000)], ids=["short", "default"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pandas_reference_equals_build_features(config: FeatureConfig, n: int, seed: int) -> None:
    candles = _two_exchanges(seed, n)
    expected = build_features(candles, config=config)
    got = pl.from_pandas(build_features_pandas(candles.sample(fraction=1.0, shuffle=True, seed=seed).to_pandas(),
                                               config, SegmentsConfig()))
    assert got.columns == expected.columns
    assert got.height == expected.height
    for column in expected.columns:
        ours, theirs = expected.get_column(column), got.get_column(column)
        if not ours.dtype.is_float():
            assert theirs.cast(ours.dtype).equals(ours), column
            continue
        missing = ours.is_null().to_numpy()
        assert np.array_equal(theirs.fill_nan(None).is_null().to_numpy(), missing), f"{column}: missing values differ"
        assert (~missing).sum() > 0, f"{column} has no value to compare"
        np.testing.assert_allclose(theirs.to_numpy()[~missing], ours.to_numpy()[~missing], rtol=1e-9, atol=1e-9,
                                   err_msg=column)


def test_pandas_reference_refuses_what_it_does_not_build() -> None:
    candles, _ = random_market(0, 50)
    for config in (FeatureConfig(shifts=(1,)), FeatureConfig(correlated_symbols=("ETH/USDT",))):
        with pytest.raises(ValueError, match="neither shifts nor correlated"):
            build_features_pandas(candles.to_pandas(), config, SegmentsConfig())
