"""Overfitting statistics for a search over many strategy variants ("trials").

* :func:`probability_of_backtest_overfitting`: combinatorially symmetric cross-validation (CSCV) of
  Bailey, Borwein, López de Prado and Zhu, "The Probability of Backtest Overfitting", Journal of
  Computational Finance 20(4), 2017 (SSRN 2326253, 2015).
* :func:`probabilistic_sharpe_ratio` and :func:`deflated_sharpe_ratio`: Bailey and López de Prado,
  "The Sharpe Ratio Efficient Frontier", Journal of Risk 15(2), 2012, and "The Deflated Sharpe
  Ratio: Correcting for Selection Bias, Backtest Overfitting and Non-Normality", Journal of
  Portfolio Management 40(5), 2014.

Sharpe ratios here are *per period* (not annualised), as in the papers' formulas: divide an
annualised ratio by ``sqrt(periods_per_year)`` first. Kurtosis is the plain (non-excess) one,
3 for a normal distribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from numpy.typing import ArrayLike

from ml.evaluation.costs import FloatArray

EULER_MASCHERONI = 0.5772156649015329


@dataclass(frozen=True)
class BacktestOverfitting:
    """Result of CSCV.

    Attributes
    ----------
    pbo
        Probability of backtest overfitting: share of the splits in which the trial that is best in
        sample ranks at or below the median out of sample (logit ``<= 0``).
    logits
        ``log(w / (1 - w))`` per split, ``w`` the relative out-of-sample rank of the in-sample best
        trial, ``rank / (N + 1)`` with rank 1 the worst.
    best_in_sample
        Per split, the in-sample Sharpe ratio (per period) of the selected trial.
    its_out_of_sample
        Per split, the out-of-sample Sharpe ratio (per period) of that same trial.
    """

    pbo: float
    logits: FloatArray
    best_in_sample: FloatArray
    its_out_of_sample: FloatArray

    @property
    def splits(self) -> int:
        return int(self.logits.size)


def _block_sharpes(total: FloatArray, squares: FloatArray, count: int) -> FloatArray:
    """Per-period Sharpe ratios from summed returns and summed squares over ``count`` rows.

    Zero dispersion gives 0 for a zero mean and ``±inf`` otherwise, so a never-trading trial ranks
    in the middle and a riskless gain at the top.
    """
    mean = total / count
    variance = np.maximum(squares - count * mean**2, 0.0) / (count - 1)
    spread = np.sqrt(variance)
    flat = spread <= 1e-12 * np.maximum(np.abs(mean), 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = np.where(flat, np.sign(mean) * np.inf, mean / np.where(flat, 1.0, spread))
    return np.where(flat & (mean == 0), 0.0, sharpe)


def probability_of_backtest_overfitting(
    trial_returns: ArrayLike, *, splits: int = 16
) -> BacktestOverfitting:
    """Probability of backtest overfitting by combinatorially symmetric cross-validation.

    Parameters
    ----------
    trial_returns
        Matrix ``T x N``: net returns per period (rows, in time order) of ``N >= 2`` trials, the
        variants a search chose from (e.g. thresholds x horizons), over the same periods.
    splits
        ``S``, an even number of contiguous blocks of ``T // S`` rows; the ``T mod S`` earliest rows
        are dropped. Every choice of ``S / 2`` blocks is an in-sample set, its complement the
        out-of-sample set: ``C(S, S/2)`` splits (12,870 for ``S = 16``).

    Returns
    -------
    :class:`BacktestOverfitting`. Performance is the per-period Sharpe ratio. The in-sample best
    trial is the first one with the highest Sharpe; its out-of-sample rank counts ties as half.
    For trials that are pure noise the PBO is about 0.5 (the in-sample winner is a random trial
    out of sample); a trial with a real edge that wins both halves drives it towards 0.
    """
    matrix = np.asarray(trial_returns, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] < 2:
        raise ValueError(
            f"trial_returns must be a T x N matrix with N >= 2, got shape {matrix.shape}"
        )
    if not np.all(np.isfinite(matrix)):
        row, column = np.argwhere(~np.isfinite(matrix))[0]
        raise ValueError(f"trial_returns has a non-finite value at row {row}, trial {column}")
    if splits < 2 or splits % 2:
        raise ValueError(f"splits must be an even number >= 2, got {splits}")
    rows_per_block = matrix.shape[0] // splits
    if rows_per_block < 2:
        raise ValueError(
            f"{matrix.shape[0]} periods cannot fill {splits} blocks of at least 2 periods"
        )
    trials = matrix.shape[1]
    blocks = matrix[matrix.shape[0] - rows_per_block * splits :].reshape(
        splits, rows_per_block, trials
    )
    block_sum = blocks.sum(axis=1)
    block_squares = (blocks**2).sum(axis=1)

    chosen = np.zeros((math.comb(splits, splits // 2), splits), dtype=np.float64)
    for index, in_sample in enumerate(combinations(range(splits), splits // 2)):
        chosen[index, list(in_sample)] = 1.0
    half = rows_per_block * splits // 2
    is_sharpe = _block_sharpes(chosen @ block_sum, chosen @ block_squares, half)
    oos_sharpe = _block_sharpes((1 - chosen) @ block_sum, (1 - chosen) @ block_squares, half)

    best = np.argmax(is_sharpe, axis=1)
    picked = np.arange(best.size)
    best_oos = oos_sharpe[picked, best]
    below = np.sum(oos_sharpe < best_oos[:, None], axis=1)
    equal = np.sum(oos_sharpe == best_oos[:, None], axis=1)
    rank = below + (equal + 1) / 2.0
    relative = rank / (trials + 1)
    logits = np.log(relative / (1.0 - relative))
    return BacktestOverfitting(
        pbo=float(np.mean(logits <= 0)),
        logits=logits,
        best_in_sample=is_sharpe[picked, best],
        its_out_of_sample=best_oos,
    )


def sharpe_ratio_moments(returns: ArrayLike) -> tuple[float, float, float, int]:
    """Per-period Sharpe ratio (ddof=1), skewness, plain kurtosis and length of ``returns``."""
    from scipy import stats

    values = np.asarray(returns, dtype=np.float64)
    if values.ndim != 1 or values.size < 3 or not np.all(np.isfinite(values)):
        raise ValueError("returns must be a finite one-dimensional series of at least 3 periods")
    spread = float(np.std(values, ddof=1))
    if spread == 0:
        raise ValueError("returns have zero dispersion: the Sharpe ratio is undefined")
    skewness = float(stats.skew(values))
    kurtosis = float(stats.kurtosis(values, fisher=False))
    return float(values.mean()) / spread, skewness, kurtosis, int(values.size)


def probabilistic_sharpe_ratio(
    sharpe: float,
    *,
    periods: int,
    skewness: float = 0.0,
    kurtosis: float = 3.0,
    benchmark: float = 0.0,
) -> float:
    """Probability that the true Sharpe ratio exceeds ``benchmark``, given the observed ``sharpe``.

    ``PSR = Phi((SR - SR*) sqrt(T - 1) / sqrt(1 - skew SR + (kurt - 1) / 4 SR^2))``, all per
    period, ``T = periods`` observations; non-normal returns (negative skew, fat tails) widen the
    estimate's error and lower the probability.
    """
    from scipy import stats

    if periods < 2:
        raise ValueError(f"periods must be at least 2, got {periods}")
    variance_factor = 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if not variance_factor > 0:
        raise ValueError(
            f"skewness {skewness} and kurtosis {kurtosis} give a non-positive variance factor "
            f"at Sharpe {sharpe}"
        )
    z = (sharpe - benchmark) * math.sqrt(periods - 1) / math.sqrt(variance_factor)
    return float(stats.norm.cdf(z))


def expected_maximum_sharpe(trials: int, sharpe_variance: float) -> float:
    """Expected maximum per-period Sharpe ratio of ``trials`` skill-less trials.

    ``SR0 = sqrt(V) ((1 - g) Phi^-1(1 - 1/N) + g Phi^-1(1 - 1/(N e)))``, ``g`` the
    Euler-Mascheroni constant, ``V`` the variance of the trials' Sharpe ratios. 0 for one trial.
    """
    from scipy import stats

    if trials < 1:
        raise ValueError(f"trials must be at least 1, got {trials}")
    if not sharpe_variance >= 0:
        raise ValueError(f"sharpe_variance must be non-negative, got {sharpe_variance!r}")
    if trials == 1:
        return 0.0
    quantiles = (1.0 - EULER_MASCHERONI) * stats.norm.ppf(1.0 - 1.0 / trials)
    quantiles += EULER_MASCHERONI * stats.norm.ppf(1.0 - 1.0 / (trials * math.e))
    return math.sqrt(sharpe_variance) * float(quantiles)


def deflated_sharpe_ratio(
    sharpe: float,
    *,
    periods: int,
    trials: int,
    sharpe_variance: float,
    skewness: float = 0.0,
    kurtosis: float = 3.0,
) -> float:
    """Deflated Sharpe ratio: the PSR against the Sharpe ratio the best of ``trials`` pure-luck
    trials would be expected to show (:func:`expected_maximum_sharpe`).

    Parameters
    ----------
    sharpe
        Per-period Sharpe ratio of the selected strategy.
    periods
        Number of return observations behind ``sharpe``.
    trials
        Number of independent trials the strategy was selected from (itself included).
    sharpe_variance
        Variance of the per-period Sharpe ratios across the trials.
    skewness, kurtosis
        Of the selected strategy's returns (plain kurtosis, 3 when normal).

    Returns
    -------
    Probability in ``[0, 1]`` that the strategy's true Sharpe ratio beats selection luck; above
    0.95 is significant at 5 %.
    """
    benchmark = expected_maximum_sharpe(trials, sharpe_variance)
    return probabilistic_sharpe_ratio(
        sharpe, periods=periods, skewness=skewness, kurtosis=kurtosis, benchmark=benchmark
    )


@dataclass(frozen=True)
class SelectionSignificance:
    """Deflated Sharpe ratio of the best of several trials run on the same periods."""

    best_trial: int
    sharpe: float
    sharpe_variance: float
    expected_maximum: float
    deflated_sharpe: float

    def significant(self, level: float = 0.95) -> bool:
        """Whether the deflated Sharpe ratio reaches ``level`` (0.95: significant at 5 %)."""
        return self.deflated_sharpe >= level


def best_trial_significance(trial_returns: ArrayLike) -> SelectionSignificance:
    """Pick the trial with the highest per-period Sharpe ratio in ``trial_returns`` (``T x N``) and
    deflate its Sharpe ratio by the number of trials and the variance of their Sharpe ratios.

    With one trial the benchmark is 0 and the result is the plain PSR against zero. Trials are
    treated as independent; correlated trials make ``N`` an overstatement (a conservative DSR).
    """
    matrix = np.asarray(trial_returns, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] < 3 or matrix.shape[1] < 1:
        raise ValueError(
            f"trial_returns must be a T x N matrix with T >= 3, got shape {matrix.shape}"
        )
    spreads = matrix.std(axis=0, ddof=1)
    if np.any(spreads == 0):
        raise ValueError(
            f"trial {int(np.argmax(spreads == 0))} has zero dispersion: its Sharpe is undefined"
        )
    sharpes = matrix.mean(axis=0) / spreads
    best = int(np.argmax(sharpes))
    sharpe, skewness, kurtosis, periods = sharpe_ratio_moments(matrix[:, best])
    variance = float(np.var(sharpes, ddof=1)) if sharpes.size > 1 else 0.0
    return SelectionSignificance(
        best_trial=best,
        sharpe=sharpe,
        sharpe_variance=variance,
        expected_maximum=expected_maximum_sharpe(sharpes.size, variance),
        deflated_sharpe=deflated_sharpe_ratio(
            sharpe,
            periods=periods,
            trials=sharpes.size,
            sharpe_variance=variance,
            skewness=skewness,
            kurtosis=kurtosis,
        ),
    )
