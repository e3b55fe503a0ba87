"""Regime features: causal, defined values, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from ml.models.regime_features import (
    FEATURES,
    MIN_VOLATILITY,
    RegimeConfig,
    regime_feature_matrix,
    wilder_rsi,
)
from tests.ml.models.planted import planted_market

CONFIG = RegimeConfig()


def test_changing_candles_after_t_changes_no_feature_at_or_before_t() -> None:
    candles, _ = planted_market(600, seed=3)
    close = candles.get_column("close").to_numpy()
    volume = candles.get_column("volume").to_numpy()
    reference = regime_feature_matrix(close, volume, CONFIG)
    rng = np.random.default_rng(11)
    for cut in rng.integers(CONFIG.warmup, 590, size=8):
        altered_close, altered_volume = close.copy(), volume.copy()
        altered_close[cut + 1 :] *= np.exp(rng.normal(0, 0.05, altered_close.size - cut - 1))
        altered_volume[cut + 1 :] *= rng.uniform(0.1, 10.0, altered_volume.size - cut - 1)
        altered = regime_feature_matrix(altered_close, altered_volume, CONFIG)
        np.testing.assert_array_equal(altered[: cut + 1], reference[: cut + 1])
        assert not np.array_equal(altered[cut + 1 :], reference[cut + 1 :])


def test_warm_up_rows_are_nan_and_the_rest_defined() -> None:
    candles, _ = planted_market(300, seed=4)
    features = regime_feature_matrix(candles["close"].to_numpy(), candles["volume"].to_numpy(), CONFIG)
    assert features.shape == (300, len(FEATURES))
    complete = ~np.isnan(features).any(axis=1)
    assert not complete[: CONFIG.warmup].any()
    assert complete[CONFIG.warmup :].all()


def test_feature_values_match_their_definitions() -> None:
    close = np.array([100.0, 101.0, 99.0, 102.0, 102.0, 103.0])
    volume = np.array([10.0, 20.0, 30.0, 0.0, 40.0, 50.0])
    config = RegimeConfig(return_window=2, volatility_window=3, volume_window=2, rsi_period=3)
    features = regime_feature_matrix(close, volume, config)
    log_return = np.diff(np.log(close))
    np.testing.assert_allclose(features[2:, 0], np.log(close[2:] / close[:-2]) / 2)
    np.testing.assert_allclose(features[3, 1], np.log(np.std(log_return[0:3], ddof=1)))
    np.testing.assert_allclose(features[5, 1], np.log(np.std(log_return[2:5], ddof=1)))
    np.testing.assert_allclose(features[2, 2], np.log1p(30.0 / 25.0))
    np.testing.assert_allclose(features[3, 2], np.log1p(0.0))
    # RSI(3) at row 3: gains 1, 0, 3 and losses 0, 2, 0 -> 100 * 4 / 6
    np.testing.assert_allclose(features[3, 3], (100 * 4 / 6 - 50) / 50)
    assert np.isnan(features[:3]).any(axis=1).all() and not np.isnan(features[3:]).any()


def test_a_window_without_any_move_has_a_finite_floored_volatility() -> None:
    config = RegimeConfig(volatility_window=3, volume_window=3, rsi_period=3, return_window=3)
    features = regime_feature_matrix(np.full(10, 7.0), np.zeros(10), config)
    np.testing.assert_array_equal(features[3:], np.tile([0.0, np.log(MIN_VOLATILITY), 0.0, 0.0], (7, 1)))


def test_rsi_extremes() -> None:
    assert np.allclose(wilder_rsi(np.arange(1.0, 40.0), 14)[14:], 100.0)
    assert np.allclose(wilder_rsi(np.arange(40.0, 1.0, -1.0), 14)[14:], 0.0)
    assert np.allclose(wilder_rsi(np.full(30, 5.0), 14)[14:], 50.0)
    assert np.isnan(wilder_rsi(np.arange(1.0, 40.0), 14)[:14]).all()


@pytest.mark.parametrize(
    ("close", "volume", "message"),
    [
        ([1.0, 0.0, 2.0], [1.0, 1.0, 1.0], "row 1"),
        ([1.0, np.nan, 2.0], [1.0, 1.0, 1.0], "row 1"),
        ([1.0, 2.0, 3.0], [1.0, -1.0, 1.0], "volume must be"),
        ([1.0, 2.0], [1.0, 1.0, 1.0], "one length"),
    ],
)
def test_invalid_candles_are_rejected_with_the_row(close: list[float], volume: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        regime_feature_matrix(np.array(close), np.array(volume), CONFIG)


def test_config_is_frozen_and_validated() -> None:
    with pytest.raises(ValidationError):
        CONFIG.n_iter = 3  # type: ignore[misc]
    with pytest.raises(ValidationError):
        RegimeConfig(covariance_type="spherical")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        RegimeConfig(size_multipliers={"bull_trend": 1.5})  # type: ignore[arg-type]
