"""PBO by CSCV, PSR and DSR: exact small cases, the paper's worked example, noise against a planted edge."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml.evaluation.overfitting import (
    best_trial_significance,
    deflated_sharpe_ratio,
    expected_maximum_sharpe,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
)

SEEDS = range(40)


def _two_halves(first: list[float], second: list[float]) -> np.ndarray:
    """Two blocks of four periods; columns are trials."""
    return np.array([first] * 4 + [second] * 4) + np.array(
        [[0.001], [-0.001], [0.002], [-0.002]] * 2
    )


def test_pbo_is_one_when_the_in_sample_winner_always_loses_out_of_sample() -> None:
    # trial 0 shines in the first half only, trial 1 in the second half only
    result = probability_of_backtest_overfitting(
        _two_halves([0.01, -0.01], [-0.01, 0.01]), splits=2
    )
    assert result.splits == 2 and result.pbo == 1.0
    np.testing.assert_allclose(result.logits, math.log(0.5))  # rank 1 of 2: w = 1/3


def test_pbo_is_zero_when_one_trial_dominates_everywhere() -> None:
    result = probability_of_backtest_overfitting(
        _two_halves([0.01, -0.01], [0.01, -0.01]), splits=2
    )
    assert result.pbo == 0.0
    np.testing.assert_allclose(result.logits, math.log(2.0))  # rank 2 of 2: w = 2/3


def test_pbo_counts_a_tie_at_the_median_as_overfit() -> None:
    """Identical trials: the in-sample pick is luck; ties rank as half, so w = 1.5 / 3, logit 0,
    and a logit of 0 (no better than the median) counts towards the PBO."""
    twins = _two_halves([0.01, 0.01], [-0.01, -0.01])
    result = probability_of_backtest_overfitting(twins, splits=2)
    np.testing.assert_allclose(result.logits, 0.0)
    assert result.pbo == 1.0


def test_pbo_of_pure_noise_is_about_one_half() -> None:
    """For iid trials the in-sample winner is a random trial out of sample: its rank is uniform."""
    pbos = [
        probability_of_backtest_overfitting(
            np.random.default_rng(seed).normal(0, 0.01, (480, 10)), splits=8
        ).pbo
        for seed in SEEDS
    ]
    assert 0.4 < float(np.mean(pbos)) < 0.6


def test_pbo_of_a_planted_edge_is_near_zero() -> None:
    for seed in SEEDS[:10]:
        trials = np.random.default_rng(seed).normal(0, 0.01, (480, 10))
        trials[:, 3] += 0.004  # per-period Sharpe 0.4: the genuine edge
        result = probability_of_backtest_overfitting(trials, splits=8)
        assert result.splits == 70 and result.pbo < 0.05, (seed, result.pbo)


def test_pbo_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="even"):
        probability_of_backtest_overfitting(np.zeros((40, 3)), splits=3)
    with pytest.raises(ValueError, match="N >= 2"):
        probability_of_backtest_overfitting(np.zeros((40, 1)))
    with pytest.raises(ValueError, match="cannot fill 16 blocks"):
        probability_of_backtest_overfitting(np.zeros((20, 3)), splits=16)
    with pytest.raises(ValueError, match="row 2, trial 1"):
        matrix = np.zeros((40, 3))
        matrix[2, 1] = np.nan
        probability_of_backtest_overfitting(matrix, splits=4)


def test_deflated_sharpe_reproduces_the_papers_worked_example() -> None:
    """Bailey and López de Prado (2014), section 5: annualised SR 2.5 over 1,250 daily returns, 100
    trials whose annualised Sharpe ratios have variance 0.5, skewness -3, kurtosis 10: the expected
    maximum is 0.1132 per day and the DSR 0.9004 (not significant at 5 %)."""
    sharpe, variance = 2.5 / math.sqrt(250), 0.5 / 250
    assert expected_maximum_sharpe(100, variance) == pytest.approx(0.1132, abs=5e-5)
    dsr = deflated_sharpe_ratio(
        sharpe, periods=1250, trials=100, sharpe_variance=variance, skewness=-3, kurtosis=10
    )
    assert dsr == pytest.approx(0.9004, abs=5e-5)


def test_probabilistic_sharpe_ratio_properties() -> None:
    assert probabilistic_sharpe_ratio(0.1, periods=500, benchmark=0.1) == pytest.approx(0.5)
    normal = probabilistic_sharpe_ratio(0.1, periods=500)
    assert normal == pytest.approx(0.98707, abs=1e-5)  # Phi(0.1 sqrt(499) / sqrt(1 + 0.01 / 2))
    assert probabilistic_sharpe_ratio(0.1, periods=500, skewness=-2, kurtosis=9) < normal
    assert expected_maximum_sharpe(1, 0.5) == 0.0
    with pytest.raises(ValueError, match="periods"):
        probabilistic_sharpe_ratio(0.1, periods=1)


def _seeded_trials(planted_sharpe: float) -> list[bool]:
    """Significance of the best of 20 trials of 500 periods, per seed; trial 0 carries the edge."""
    verdicts = []
    for seed in SEEDS:
        trials = np.random.default_rng(seed).standard_normal((500, 20))
        trials[:, 0] += planted_sharpe
        verdicts.append(best_trial_significance(trials).significant())
    return verdicts


def test_deflated_sharpe_claims_nothing_on_pure_noise_in_95_percent_of_seeds() -> None:
    verdicts = _seeded_trials(0.0)
    assert sum(verdicts) <= 0.05 * len(verdicts), (
        f"noise called significant in {sum(verdicts)} seeds"
    )


def test_deflated_sharpe_finds_a_planted_edge() -> None:
    verdicts = _seeded_trials(0.3)
    assert sum(verdicts) >= 0.95 * len(verdicts), f"edge found in only {sum(verdicts)} seeds"


def test_best_trial_significance_names_the_best_trial() -> None:
    trials = np.random.default_rng(7).standard_normal((500, 20))
    trials[:, 5] += 0.3
    result = best_trial_significance(trials)
    assert result.best_trial == 5 and result.sharpe > result.expected_maximum > 0
