"""GBM and Merton parameter estimation: recovery of planted parameters, real Binance 1h data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml.risk import (
    GBMParams,
    MertonParams,
    detect_jumps,
    estimate_gbm,
    estimate_merton,
    log_returns_from_closes,
    simulate_gbm,
    simulate_merton,
)
from tests.ml.risk.support import binance_closes


def _log_returns(paths: np.ndarray) -> np.ndarray:
    return np.diff(np.log(paths[0]))


def test_gbm_estimation_recovers_planted_parameters() -> None:
    planted = GBMParams(mu=3e-4, sigma=0.012)
    fitted = estimate_gbm(_log_returns(simulate_gbm(planted, n_paths=1, n_steps=50_000, seed=1)))
    assert fitted.sigma == pytest.approx(0.012, rel=0.02)
    assert fitted.mu == pytest.approx(3e-4, abs=4 * 0.012 / math.sqrt(50_000))


PLANTED = [
    MertonParams(mu=2e-4, sigma=0.01, jump_intensity=0.02, jump_mean=-0.08, jump_std=0.02),
    MertonParams(mu=0.0, sigma=0.005, jump_intensity=0.005, jump_mean=0.06, jump_std=0.015),
]


@pytest.mark.parametrize("planted", PLANTED)
def test_merton_estimation_recovers_planted_parameters(planted: MertonParams) -> None:
    returns = _log_returns(simulate_merton(planted, n_paths=1, n_steps=60_000, seed=7))
    fitted = estimate_merton(returns)
    assert fitted.sigma == pytest.approx(planted.sigma, rel=0.03)
    assert fitted.jump_intensity == pytest.approx(planted.jump_intensity, rel=0.15)
    assert fitted.jump_mean == pytest.approx(planted.jump_mean, rel=0.1)
    assert fitted.jump_std == pytest.approx(planted.jump_std, rel=0.25)
    assert fitted.mu == pytest.approx(planted.mu, abs=0.02 * planted.sigma + 2e-4)


def test_pure_diffusion_has_almost_no_jumps() -> None:
    returns = _log_returns(simulate_gbm(GBMParams(mu=0.0, sigma=0.01), n_paths=1, n_steps=50_000, seed=3))
    fitted = estimate_merton(returns)
    assert fitted.jump_intensity < 5e-4
    assert fitted.sigma == pytest.approx(0.01, rel=0.02)


def test_detect_jumps_flags_the_planted_outliers() -> None:
    rng = np.random.default_rng(5)
    returns = rng.normal(0.0, 0.01, 5_000)
    planted = rng.choice(5_000, 25, replace=False)
    returns[planted] += rng.choice([-1, 1], 25) * rng.uniform(0.08, 0.2, 25)
    flagged = np.flatnonzero(detect_jumps(returns))
    assert set(planted) <= set(flagged)
    assert len(flagged) <= 25 + 2


def test_estimation_uses_only_the_window_it_is_given() -> None:
    """Parameters for a window ending at t are a function of the returns up to t: altering the
    returns after t changes nothing."""
    returns = _log_returns(simulate_merton(PLANTED[0], n_paths=1, n_steps=3_000, seed=2))
    altered = returns.copy()
    altered[2_000:] = np.random.default_rng(0).normal(0.0, 0.2, 1_000)
    assert estimate_merton(returns[:2_000]) == estimate_merton(altered[:2_000])


@pytest.mark.parametrize(("values", "match"), [
    (np.zeros(10), "at least 30"),
    (np.r_[np.zeros(40), np.nan], "row 40"),
    (np.zeros((40, 2)), "1-d"),
])
def test_bad_returns_raise(values: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        estimate_merton(values)


def test_bad_closes_raise_naming_the_row() -> None:
    with pytest.raises(ValueError, match="row 2"):
        log_returns_from_closes(np.array([1.0, 2.0, 0.0, 3.0]))


@pytest.mark.parametrize("pair", ["BTC_USDT", "ETH_USDT", "PEPE_USDT"])
def test_real_binance_1h_returns_have_fat_tails_and_a_consistent_fit(pair: str) -> None:
    returns = log_returns_from_closes(binance_closes(pair))
    fitted = estimate_merton(returns)
    assert 0.002 < fitted.sigma < 0.03  # hourly volatility of a liquid crypto pair
    # A normal would flag 0.006 % of hours at 4 sigma; crypto flags far more (fat tails).
    assert 0.001 < fitted.jump_intensity < 0.05
    assert fitted.jump_std > 0
    model_variance = fitted.sigma**2 + fitted.jump_intensity * (fitted.jump_mean**2 + fitted.jump_std**2)
    assert model_variance == pytest.approx(returns.var(ddof=1), rel=0.15)
    paths = simulate_merton(fitted, n_paths=2_000, n_steps=len(returns), seed=1)
    simulated = np.log(paths[:, -1] / paths[:, 0])
    assert simulated.mean() == pytest.approx(returns.sum(), abs=3 * simulated.std() / math.sqrt(2_000))


def test_real_meme_is_more_volatile_than_bitcoin() -> None:
    btc = estimate_merton(log_returns_from_closes(binance_closes("BTC_USDT")))
    pepe = estimate_merton(log_returns_from_closes(binance_closes("PEPE_USDT")))
    assert pepe.sigma > 1.5 * btc.sigma


@pytest.mark.parametrize("seed", range(3))
def test_detected_jumps_are_a_fixed_point_of_the_diffusion_fit(seed: int) -> None:
    """The centre and scale re-estimated from the non-jumps flag exactly the same jumps."""
    from scipy.stats import norm

    returns = np.random.default_rng(seed).standard_t(3, 4_000) * 0.01  # fat tails
    jumps = detect_jumps(returns, threshold=3.0)
    calm = returns[~jumps]
    kept_share = 1 - 2 * 3.0 * norm.pdf(3.0) / (2 * norm.cdf(3.0) - 1)
    scale = calm.std(ddof=1) / math.sqrt(kept_share)
    np.testing.assert_array_equal(jumps, np.abs(returns - calm.mean()) > 3.0 * scale)
    assert 0 < jumps.sum() < 0.1 * returns.size
