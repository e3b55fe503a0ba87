"""GBM and Merton paths against their closed-form moments; seeded determinism; bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml.risk import GBMParams, MertonParams, simulate_gbm, simulate_merton

PATHS, STEPS = 4_000, 50


def _terminal_log_returns(paths: np.ndarray) -> np.ndarray:
    return np.log(paths[:, -1] / paths[:, 0])


@pytest.mark.parametrize(("mu", "sigma", "dt"), [(2e-4, 0.01, 1.0), (-0.3, 0.8, 1 / 365), (0.0, 0.05, 0.5)])
def test_gbm_terminal_log_return_matches_theory(mu: float, sigma: float, dt: float) -> None:
    paths = simulate_gbm(GBMParams(mu=mu, sigma=sigma), s0=250.0, n_paths=PATHS, n_steps=STEPS,
                         dt=dt, seed=11)
    horizon = STEPS * dt
    x = _terminal_log_returns(paths)
    mean, var = (mu - 0.5 * sigma**2) * horizon, sigma**2 * horizon
    assert paths.shape == (PATHS, STEPS + 1)
    assert np.all(paths[:, 0] == 250.0)
    assert abs(x.mean() - mean) < 4 * math.sqrt(var / PATHS)
    assert abs(x.var(ddof=1) - var) < 4 * var * math.sqrt(2 / (PATHS - 1))


def test_gbm_increments_are_independent_across_steps() -> None:
    increments = np.diff(np.log(simulate_gbm(GBMParams(mu=0.0, sigma=0.02), n_paths=PATHS,
                                             n_steps=STEPS, seed=5)), axis=1)
    lag_one = np.corrcoef(increments[:, :-1].ravel(), increments[:, 1:].ravel())[0, 1]
    assert abs(lag_one) < 4 / math.sqrt(increments[:, 1:].size)
    assert abs(increments.std() - 0.02) < 0.0005


MERTON = MertonParams(mu=1e-3, sigma=0.01, jump_intensity=0.05, jump_mean=-0.04, jump_std=0.03)


def test_merton_moments_match_theory() -> None:
    paths = simulate_merton(MERTON, s0=2.0, n_paths=PATHS, n_steps=STEPS, seed=3)
    p = MERTON
    x = _terminal_log_returns(paths)
    log_mean = (p.mu - 0.5 * p.sigma**2 - p.jump_intensity * p.jump_compensator
                + p.jump_intensity * p.jump_mean) * STEPS
    log_var = (p.sigma**2 + p.jump_intensity * (p.jump_mean**2 + p.jump_std**2)) * STEPS
    assert abs(x.mean() - log_mean) < 4 * math.sqrt(log_var / PATHS)
    assert abs(x.var(ddof=1) - log_var) < 0.1 * log_var
    growth = paths[:, -1] / paths[:, 0]
    # Compensated drift: E[S_T] = S_0 exp(mu T), jumps or not.
    assert abs(growth.mean() - math.exp(p.mu * STEPS)) < 4 * growth.std(ddof=1) / math.sqrt(PATHS)


def test_merton_jump_count_per_step_is_poisson() -> None:
    params = MertonParams(mu=0.0, sigma=1e-6, jump_intensity=0.2, jump_mean=0.5, jump_std=1e-6)
    increments = np.diff(np.log(simulate_merton(params, n_paths=2_000, n_steps=20, seed=8)), axis=1)
    drift = -params.jump_intensity * params.jump_compensator
    counts = np.rint((increments - drift) / 0.5).astype(int)  # each jump adds 0.5, noise ~1e-6
    observed = np.bincount(counts.ravel(), minlength=4)[:4] / counts.size
    expected = [math.exp(-0.2) * 0.2**k / math.factorial(k) for k in range(4)]
    assert np.allclose(observed, expected, atol=0.006)


def test_merton_without_jumps_is_the_gbm_with_the_same_seed() -> None:
    gbm = simulate_gbm(GBMParams(mu=1e-3, sigma=0.02), n_paths=100, n_steps=30, seed=9)
    merton = simulate_merton(MertonParams(mu=1e-3, sigma=0.02, jump_intensity=0.0, jump_mean=0.0,
                                          jump_std=0.0), n_paths=100, n_steps=30, seed=9)
    np.testing.assert_allclose(merton, gbm, rtol=1e-12)


@pytest.mark.parametrize(("simulate", "params"), [(simulate_gbm, GBMParams(mu=0.0, sigma=0.02)),
                                                  (simulate_merton, MERTON)])
def test_same_seed_same_paths_other_seed_other_paths(simulate, params) -> None:
    first = simulate(params, n_paths=200, n_steps=40, seed=42)
    np.testing.assert_array_equal(first, simulate(params, n_paths=200, n_steps=40, seed=42))
    assert not np.array_equal(first, simulate(params, n_paths=200, n_steps=40, seed=43))


@pytest.mark.parametrize("kwargs", [{"s0": 0.0}, {"s0": math.nan}, {"n_paths": 0}, {"n_steps": 0},
                                    {"dt": -1.0}])
def test_bad_sizes_raise_clear_errors(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"s0|path|dt"):
        simulate_gbm(GBMParams(mu=0.0, sigma=0.01), seed=1, **{"n_paths": 10, "n_steps": 5, **kwargs})


def test_negative_volatility_is_rejected() -> None:
    with pytest.raises(ValueError, match="sigma"):
        GBMParams(mu=0.0, sigma=-0.1)
    with pytest.raises(ValueError, match="jump_intensity"):
        MertonParams(mu=0.0, sigma=0.1, jump_intensity=-1.0, jump_mean=0.0, jump_std=0.1)
