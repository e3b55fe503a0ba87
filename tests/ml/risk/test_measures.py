"""VaR, CVaR, drawdowns and stress tests against closed forms and a naive loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from ml.risk import (
    GBMParams,
    MertonParams,
    expected_shortfall,
    max_drawdowns,
    simulate_gbm,
    simulate_merton,
    stress_test,
    summarise_paths,
    value_at_risk,
)


@pytest.mark.parametrize("level", [0.95, 0.99])
def test_var_and_cvar_of_normal_returns_match_the_analytic_values(level: float) -> None:
    mu, sigma = 0.001, 0.02
    pnl = np.random.default_rng(1).normal(mu, sigma, 400_000)
    z = norm.ppf(level)
    assert value_at_risk(pnl, level) == pytest.approx(sigma * z - mu, rel=0.01)
    assert expected_shortfall(pnl, level) == pytest.approx(sigma * norm.pdf(z) / (1 - level) - mu,
                                                           rel=0.015)


@pytest.mark.parametrize("seed", range(5))
def test_cvar_is_never_below_var(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pnl = np.concatenate([rng.standard_t(3, 500), rng.uniform(-1, 1, 37)])
    for level in (0.9, 0.95, 0.99):
        assert expected_shortfall(pnl, level) >= value_at_risk(pnl, level)


def test_max_drawdowns_match_a_per_path_loop() -> None:
    paths = simulate_merton(MertonParams(mu=0.0, sigma=0.03, jump_intensity=0.1, jump_mean=-0.05,
                                         jump_std=0.05), n_paths=57, n_steps=40, seed=2)
    expected = []
    for path in paths:
        peak, worst = path[0], 0.0
        for value in path:
            peak = max(peak, value)
            worst = max(worst, 1 - value / peak)
        expected.append(worst)
    np.testing.assert_allclose(max_drawdowns(paths, chunk=10), expected, rtol=1e-12)
    assert max_drawdowns(np.array([[1.0, 2.0, 3.0]]))[0] == 0.0
    assert max_drawdowns(np.array([[1.0, 2.0, 0.5, 4.0]]))[0] == pytest.approx(0.75)


def _gbm_var(mu: float, sigma: float, horizon: int, level: float) -> float:
    """Loss quantile of S_T / S_0 - 1 under GBM (log-normal)."""
    log_q = (mu - 0.5 * sigma**2) * horizon + sigma * math.sqrt(horizon) * norm.ppf(1 - level)
    return -math.expm1(log_q)


def test_summary_of_gbm_paths_matches_the_log_normal_quantiles() -> None:
    params = GBMParams(mu=1e-4, sigma=0.01)
    summary = summarise_paths(simulate_gbm(params, n_paths=20_000, n_steps=48, seed=4))
    for level in (0.95, 0.99):
        assert summary.var[level] == pytest.approx(_gbm_var(1e-4, 0.01, 48, level), rel=0.04)
        assert summary.cvar[level] >= summary.var[level]
    quantiles = list(summary.drawdown_quantiles.values())
    assert quantiles == sorted(quantiles) and 0 < quantiles[0] < 1
    figures = summary.as_dict()
    assert figures["var_95"] == summary.var[0.95] and figures["max_drawdown_q99"] == quantiles[-1]
    assert figures["n_paths"] == 20_000 and figures["horizon_steps"] == 48
    assert figures["mean_return"] == pytest.approx(math.expm1(1e-4 * 48), abs=0.002)


def test_stress_scales_var_with_volatility() -> None:
    params = GBMParams(mu=0.0, sigma=0.002)
    results = stress_test(params, lambda p: simulate_gbm(p, n_paths=20_000, n_steps=100, seed=6))
    assert list(results) == [1.0, 2.0, 3.0, 5.0]
    base = results[1.0].var[0.95]
    for multiplier, summary in results.items():
        analytic = _gbm_var(0.0, 0.002 * multiplier, 100, 0.95)
        assert summary.var[0.95] == pytest.approx(analytic, rel=0.04)
        # Roughly proportional to sigma (log-normal curvature bends it a little below).
        assert 0.85 * multiplier <= summary.var[0.95] / base <= 1.05 * multiplier
        assert summary.drawdown_quantiles[0.5] >= results[1.0].drawdown_quantiles[0.5]


def test_merton_stress_scales_diffusion_and_jump_volatility() -> None:
    params = MertonParams(mu=0.0, sigma=0.004, jump_intensity=0.02, jump_mean=0.0, jump_std=0.02)
    seen: list[MertonParams] = []

    def simulate(p: MertonParams) -> np.ndarray:
        seen.append(p)
        return simulate_merton(p, n_paths=5_000, n_steps=100, seed=1)

    results = stress_test(params, simulate, multipliers=(3.0,))
    assert seen[1].sigma == pytest.approx(0.012) and seen[1].jump_std == pytest.approx(0.06)
    assert seen[1].jump_intensity == params.jump_intensity
    assert results[3.0].var[0.99] > 2.5 * results[1.0].var[0.99]


@pytest.mark.parametrize("paths", [np.ones((3, 1)), np.array([[1.0, -1.0]]), np.array([[1.0, np.inf]]),
                                   np.ones(4)])
def test_bad_paths_raise(paths: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"paths|path values"):
        summarise_paths(paths)


def test_bad_level_raises() -> None:
    with pytest.raises(ValueError, match="confidence level"):
        value_at_risk(np.zeros(10), 95)
