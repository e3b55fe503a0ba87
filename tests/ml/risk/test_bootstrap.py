"""Stationary bootstrap of realised returns: indices, mean preservation, seeded determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml.risk import bootstrap_value_paths, stationary_bootstrap_indices, summarise_paths
from tests.ml.risk.support import binance_closes


def test_indices_continue_blocks_and_restart_at_the_mean_rate() -> None:
    index = stationary_bootstrap_indices(100, n_paths=2_000, n_steps=200, mean_block=10.0, seed=1)
    assert index.shape == (2_000, 200) and index.min() >= 0 and index.max() < 100
    continued = index[:, 1:] == (index[:, :-1] + 1) % 100
    # A new block starts w.p. 1/10 and lands on the next index by chance w.p. 1/100.
    assert continued.mean() == pytest.approx(0.9 + 0.1 / 100, abs=0.003)
    # Every observation equally likely (the circular wrap: no fewer draws near the ends).
    counts = np.bincount(index.ravel(), minlength=100)
    assert counts.min() > 0.85 * 4_000 and counts.max() < 1.15 * 4_000


def test_bootstrap_preserves_the_mean_return() -> None:
    returns = np.random.default_rng(2).standard_t(4, 1_000) * 0.01 + 0.0005
    paths = bootstrap_value_paths(returns, n_paths=4_000, n_steps=250, mean_block=20.0, seed=3)
    resampled = paths[:, 1:] / paths[:, :-1] - 1
    standard_error = returns.std() * math.sqrt(20.0 / resampled.size) * 3  # blocks: fewer draws
    assert resampled.mean() == pytest.approx(returns.mean(), abs=standard_error)
    assert resampled.std() == pytest.approx(returns.std(), rel=0.03)


def test_bootstrap_keeps_volatility_clusters_that_an_iid_resample_loses() -> None:
    rng = np.random.default_rng(4)
    regimes = np.repeat(rng.choice([0.002, 0.03], 40), 50)  # 2,000 steps in calm/wild stretches
    returns = rng.normal(0, 1, regimes.size) * regimes

    def abs_autocorr(paths: np.ndarray) -> float:
        r = np.abs(paths[:, 1:] / paths[:, :-1] - 1)
        return float(np.corrcoef(r[:, :-1].ravel(), r[:, 1:].ravel())[0, 1])
    blocks = bootstrap_value_paths(returns, n_paths=300, n_steps=500, mean_block=50.0, seed=5)
    iid = bootstrap_value_paths(returns, n_paths=300, n_steps=500, mean_block=1.0, seed=5)
    assert abs_autocorr(blocks) > 0.3
    assert abs(abs_autocorr(iid)) < 0.05


def test_same_seed_same_paths() -> None:
    returns = np.linspace(-0.02, 0.03, 50)
    first = bootstrap_value_paths(returns, n_paths=100, seed=7)
    assert first.shape == (100, 51)
    np.testing.assert_array_equal(first, bootstrap_value_paths(returns, n_paths=100, seed=7))
    assert not np.array_equal(first, bootstrap_value_paths(returns, n_paths=100, seed=8))


@pytest.mark.parametrize(("returns", "match"), [(np.array([0.1]), "at least 2"),
                                                (np.array([0.1, -1.0, 0.2]), "row 1"),
                                                (np.array([0.1, np.nan]), "row 1")])
def test_bad_returns_raise(returns: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        bootstrap_value_paths(returns, n_paths=10, seed=1)


def test_bad_block_length_raises() -> None:
    with pytest.raises(ValueError, match="mean_block"):
        stationary_bootstrap_indices(10, n_paths=2, n_steps=3, mean_block=0.5, seed=1)


def test_real_buy_and_hold_bootstrap_gives_risk_figures() -> None:
    closes = binance_closes("SOL_USDT")
    returns = closes[1:] / closes[:-1] - 1
    summary = summarise_paths(bootstrap_value_paths(returns, n_paths=2_000, n_steps=720, seed=11))
    assert summary.n_paths == 2_000 and summary.horizon_steps == 720
    assert 0.05 < summary.var[0.95] < summary.var[0.99] <= summary.cvar[0.99] < 1
    assert 0.05 < summary.drawdown_quantiles[0.5] < summary.drawdown_quantiles[0.99] < 1
