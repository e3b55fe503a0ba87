"""Correlated portfolio through a Cholesky factor; repair of a non-positive-definite covariance."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from ml.risk import (
    AssetModel,
    estimate_asset_model,
    nearest_positive_definite,
    simulate_portfolio,
    summarise_paths,
)
from ml.risk.portfolio import correlated_log_increments
from tests.ml.risk.support import binance_frame

TARGET_CORR = np.array([[1.0, 0.8, -0.3], [0.8, 1.0, 0.1], [-0.3, 0.1, 1.0]])
VOLS = np.array([0.01, 0.02, 0.005])


def _model(corr: np.ndarray = TARGET_CORR) -> AssetModel:
    return AssetModel(mu=np.array([1e-4, 0.0, -1e-4]), cov=corr * np.outer(VOLS, VOLS), repaired=False)


def test_cholesky_increments_reproduce_the_target_correlation_and_volatility() -> None:
    increments = correlated_log_increments(_model(), n_paths=500, n_steps=100,
                                           rng=np.random.default_rng(3)).reshape(-1, 3)
    np.testing.assert_allclose(np.corrcoef(increments, rowvar=False), TARGET_CORR, atol=0.01)
    np.testing.assert_allclose(increments.std(axis=0), VOLS, rtol=0.01)


def test_portfolio_value_matches_its_assets_in_expectation() -> None:
    weights = np.array([0.5, 0.3, 0.2])
    paths = simulate_portfolio(_model(), weights, n_paths=4_000, n_steps=50, seed=1, chunk=700)
    assert paths.shape == (4_000, 51) and np.all(paths[:, 0] == 1.0)
    expected = float(weights @ np.exp(_model().mu * 50))  # E[S_T / S_0] = exp(mu T) per asset
    terminal = paths[:, -1]
    assert terminal.mean() == pytest.approx(expected, abs=4 * terminal.std() / math.sqrt(4_000))


def test_diversification_lowers_var_below_the_weighted_sum() -> None:
    model = _model()
    weights = np.array([0.5, 0.0, 0.5])
    mixed = summarise_paths(simulate_portfolio(model, weights, n_paths=5_000, n_steps=48, seed=2))
    alone = [summarise_paths(simulate_portfolio(model, np.eye(3)[i], n_paths=5_000, n_steps=48, seed=2))
             for i in (0, 2)]
    assert mixed.var[0.95] < 0.5 * alone[0].var[0.95] + 0.5 * alone[1].var[0.95]


def test_same_seed_same_portfolio() -> None:
    weights = np.full(3, 1 / 3)
    first = simulate_portfolio(_model(), weights, n_paths=300, n_steps=20, seed=9)
    np.testing.assert_array_equal(first, simulate_portfolio(_model(), weights, n_paths=300, n_steps=20, seed=9))
    assert not np.array_equal(first, simulate_portfolio(_model(), weights, n_paths=300, n_steps=20, seed=10))


def test_positive_definite_covariance_is_left_alone() -> None:
    cov = TARGET_CORR * np.outer(VOLS, VOLS)
    fixed, repaired = nearest_positive_definite(cov)
    assert not repaired
    np.testing.assert_array_equal(fixed, cov)


def test_non_positive_definite_covariance_is_repaired_keeping_the_variances() -> None:
    # Pairwise-consistent but jointly impossible correlations (eigenvalue < 0).
    corr = np.array([[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]])
    assert np.linalg.eigvalsh(corr).min() < 0
    cov = corr * np.outer(VOLS, VOLS)
    with pytest.raises(np.linalg.LinAlgError):
        np.linalg.cholesky(cov)
    fixed, repaired = nearest_positive_definite(cov)
    assert repaired
    np.linalg.cholesky(fixed)
    np.testing.assert_allclose(np.diag(fixed), VOLS**2, rtol=1e-12)
    fixed_corr = fixed / np.outer(VOLS, VOLS)
    assert np.all(np.sign(fixed_corr) == np.sign(corr))
    assert np.abs(fixed_corr - corr).max() < 0.5
    paths = simulate_portfolio(AssetModel(mu=np.zeros(3), cov=fixed, repaired=True), np.full(3, 1 / 3),
                               n_paths=100, n_steps=10, seed=1)
    assert np.all(np.isfinite(paths))


def test_identical_assets_fewer_observations_than_assets_are_repaired() -> None:
    rng = np.random.default_rng(4)
    base = rng.normal(0, 0.01, (3, 1))
    returns = np.hstack([base, base, rng.normal(0, 0.01, (3, 3))])  # 3 observations, 5 assets
    model = estimate_asset_model(returns)
    assert model.repaired
    np.linalg.cholesky(model.cov)


@pytest.mark.parametrize(("weights", "match"), [([0.5, 0.5], "weights"), ([0.7, 0.7, -0.4], "weights"),
                                                ([0.2, 0.2, 0.2], "weights")])
def test_bad_weights_raise(weights: list[float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        simulate_portfolio(_model(), np.array(weights), n_paths=10, n_steps=5, seed=1)


def test_real_binance_portfolio_reproduces_the_estimated_correlation() -> None:
    pairs = ["BTC_USDT", "ETH_USDT", "SOL_USDT", "DOGE_USDT"]
    frames = [binance_frame(p).rename({"close": p}) for p in pairs]
    joined = frames[0]
    for frame in frames[1:]:
        joined = joined.join(frame, on="date", how="inner")
    closes = joined.sort("date").select(pairs).to_numpy()
    returns = np.diff(np.log(closes), axis=0)
    model = estimate_asset_model(returns)
    assert not model.repaired
    sample = np.corrcoef(returns, rowvar=False)
    assert sample[0, 1] > 0.6  # BTC and ETH move together
    increments = correlated_log_increments(model, n_paths=400, n_steps=100,
                                           rng=np.random.default_rng(0)).reshape(-1, len(pairs))
    np.testing.assert_allclose(np.corrcoef(increments, rowvar=False), sample, atol=0.015)
    summary = summarise_paths(simulate_portfolio(model, np.full(4, 0.25), n_paths=2_000,
                                                 n_steps=720, seed=5))
    assert 0.05 < summary.var[0.95] < summary.cvar[0.95] < 0.9
    assert pl.Series(returns[:, 0]).len() == closes.shape[0] - 1


def test_buy_and_hold_value_is_the_weighted_sum_of_asset_growth() -> None:
    mu = np.array([0.01, -0.01, 0.0])
    model = AssetModel(mu=mu, cov=np.diag(np.full(3, 1e-14)), repaired=False)  # nearly deterministic
    weights = np.array([0.5, 0.3, 0.2])
    paths = simulate_portfolio(model, weights, n_paths=3, n_steps=40, seed=1)
    expected = np.exp(np.outer(np.arange(41), mu)) @ weights
    np.testing.assert_allclose(paths, np.tile(expected, (3, 1)), rtol=1e-5)
