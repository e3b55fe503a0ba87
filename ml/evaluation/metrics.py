"""Performance metrics of a net return series, and the in-sample/out-of-sample overfitting flag.

All functions take *net simple returns per period* (fees and slippage already paid, see
:mod:`ml.evaluation.costs`), non-cumulative, one per bar, and ``periods_per_year`` to annualise
(8760 for 1h candles on a market open around the clock, 365 for daily). The definitions follow
empyrical(-reloaded), which the tests use as reference: Sharpe and Sortino annualise the
per-period mean by ``periods_per_year`` and the dispersion by its square root, the drawdown is
measured from the running peak of wealth starting at 1 (the starting capital counts as a peak),
and the annual return is the geometric one.

Undefined values are ``nan`` rather than a made-up number: a Sharpe ratio of a series with zero
dispersion is ``±inf`` for a non-zero mean and ``nan`` for a zero mean; a Calmar ratio without
drawdown is ``nan``; metrics of fewer than two returns are ``nan``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from ml.evaluation.costs import FloatArray, as_float_array

HOURS_PER_YEAR = 8760
#: In-sample/out-of-sample ratio above which a result is flagged as overfitted.
OVERFIT_RATIO_THRESHOLD = 2.0


def _returns(returns: ArrayLike) -> FloatArray:
    return as_float_array(returns, "returns")


def _check_periods(periods_per_year: float) -> None:
    if not periods_per_year > 0:
        raise ValueError(f"periods_per_year must be positive, got {periods_per_year!r}")


def _ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator`` with ``±inf`` for a zero denominator and ``nan`` for ``0 / 0``."""
    if denominator == 0:
        return math.nan if numerator == 0 else math.copysign(math.inf, numerator)
    return numerator / denominator


def sharpe_ratio(returns: ArrayLike, *, periods_per_year: float = HOURS_PER_YEAR) -> float:
    """Annualised Sharpe ratio, zero risk-free rate: ``mean / std(ddof=1) * sqrt(periods_per_year)``."""
    _check_periods(periods_per_year)
    values = _returns(returns)
    if values.size < 2:
        return math.nan
    spread = 0.0 if values.max() == values.min() else float(np.std(values, ddof=1))
    return _ratio(float(values.mean()), spread) * math.sqrt(periods_per_year)


def downside_risk(returns: ArrayLike, *, periods_per_year: float = HOURS_PER_YEAR) -> float:
    """Annualised downside deviation below zero: ``sqrt(mean(min(r, 0)^2) * periods_per_year)``."""
    _check_periods(periods_per_year)
    values = _returns(returns)
    if values.size < 1:
        return math.nan
    return math.sqrt(float(np.mean(np.minimum(values, 0.0) ** 2))) * math.sqrt(periods_per_year)


def sortino_ratio(returns: ArrayLike, *, periods_per_year: float = HOURS_PER_YEAR) -> float:
    """Annualised Sortino ratio: ``mean * periods_per_year / downside_risk`` (target return 0)."""
    values = _returns(returns)
    if values.size < 2:
        return math.nan
    risk = downside_risk(values, periods_per_year=periods_per_year)
    return _ratio(float(values.mean()) * periods_per_year, risk)


def wealth(returns: ArrayLike) -> FloatArray:
    """Wealth after each period, starting from 1: ``cumprod(1 + r)``."""
    return np.cumprod(1.0 + _returns(returns))


def drawdowns(returns: ArrayLike) -> FloatArray:
    """Drawdown after each period, ``wealth / running peak - 1`` (``<= 0``); the start counts as a peak."""
    path = np.concatenate(([1.0], wealth(returns)))
    peak = np.maximum.accumulate(path)
    return (path / peak - 1.0)[1:]


def max_drawdown(returns: ArrayLike) -> float:
    """Largest fall from a running peak of wealth, as a negative fraction (``-0.2`` = 20 %)."""
    values = _returns(returns)
    if values.size < 1:
        return math.nan
    return float(np.min(drawdowns(values)))


def annual_return(returns: ArrayLike, *, periods_per_year: float = HOURS_PER_YEAR) -> float:
    """Compound annual growth rate: ``final_wealth ** (periods_per_year / n) - 1``.

    A wealth that reaches zero or below (a total loss) gives ``-1``; a rate too large for a float
    (a short window of strong gains) gives ``inf``.
    """
    _check_periods(periods_per_year)
    values = _returns(returns)
    if values.size < 1:
        return math.nan
    final = float(np.prod(1.0 + values))
    if final <= 0:
        return -1.0
    with np.errstate(over="ignore"):
        growth = np.power(np.float64(final), periods_per_year / values.size)
    return float(growth) - 1.0


def calmar_ratio(returns: ArrayLike, *, periods_per_year: float = HOURS_PER_YEAR) -> float:
    """Annual return divided by the magnitude of the maximum drawdown; ``nan`` without drawdown."""
    values = _returns(returns)
    drawdown = max_drawdown(values)
    if not drawdown < 0:
        return math.nan
    ratio = annual_return(values, periods_per_year=periods_per_year) / abs(drawdown)
    return ratio if math.isfinite(ratio) else math.nan


def win_rate(returns: ArrayLike) -> float:
    """Fraction of non-zero returns that are positive.

    Per period: pass the net period returns; periods with a return of exactly zero (flat, no cost)
    are neither wins nor losses and are left out. Per trade: pass
    :func:`ml.evaluation.costs.trade_returns`. ``nan`` when there is no non-zero return.
    """
    values = _returns(returns)
    decided = values[values != 0]
    return math.nan if decided.size == 0 else float(np.mean(decided > 0))


def profit_factor(returns: ArrayLike) -> float:
    """Sum of gains over the magnitude of the sum of losses (per period or per trade).

    ``inf`` with gains and no loss, ``nan`` with neither.
    """
    values = _returns(returns)
    gains = float(values[values > 0].sum())
    losses = float(-values[values < 0].sum())
    return _ratio(gains, losses)


def mean_return_p_value(
    returns: ArrayLike, *, alternative: Literal["greater", "two-sided", "less"] = "greater"
) -> float:
    """p-value of Student's one-sample t-test of the mean return against zero (scipy.stats).

    The default one-sided alternative ``greater`` asks "is the mean return positive?", the question
    an edge claims. Returns ``nan`` for fewer than two returns or zero dispersion. The test assumes
    independent returns; serial correlation makes it optimistic.
    """
    from scipy import stats

    values = _returns(returns)
    if values.size < 2 or values.max() == values.min():
        return math.nan
    return float(stats.ttest_1samp(values, 0.0, alternative=alternative).pvalue)


@dataclass(frozen=True)
class OverfitAssessment:
    """In-sample against out-of-sample performance of one metric (usually the Sharpe ratio).

    ``ratio`` is ``in_sample / out_of_sample`` with these sign rules:

    * in-sample ``<= 0`` (or ``nan``): nothing was claimed in sample, so there is nothing to
      degrade: ``ratio = nan``, not flagged;
    * in-sample ``> 0`` and out-of-sample ``<= 0`` (or ``nan``): the edge vanished or reversed out
      of sample: ``ratio = inf``, flagged;
    * both ``> 0``: the plain ratio, flagged when it exceeds ``threshold``.
    """

    in_sample: float
    out_of_sample: float
    ratio: float
    threshold: float
    overfit: bool


def assess_overfit(
    in_sample: float, out_of_sample: float, *, threshold: float = OVERFIT_RATIO_THRESHOLD
) -> OverfitAssessment:
    """Flag a strategy whose in-sample metric exceeds ``threshold`` times its out-of-sample one."""
    if not threshold > 0:
        raise ValueError(f"threshold must be positive, got {threshold!r}")
    if not in_sample > 0:
        ratio, overfit = math.nan, False
    elif not out_of_sample > 0:
        ratio, overfit = math.inf, True
    else:
        ratio = in_sample / out_of_sample
        overfit = ratio > threshold
    return OverfitAssessment(in_sample, out_of_sample, ratio, threshold, overfit)


@dataclass(frozen=True)
class PerformanceSummary:
    """Every metric of one return series (one window or a whole walk-forward)."""

    periods: int
    sharpe: float
    sortino: float
    calmar: float
    max_drawdown: float
    annual_return: float
    total_return: float
    win_rate_per_period: float
    win_rate_per_trade: float
    profit_factor_per_period: float
    profit_factor_per_trade: float
    trades: int
    p_value: float


def summarise(
    returns: ArrayLike, trades: ArrayLike, *, periods_per_year: float = HOURS_PER_YEAR
) -> PerformanceSummary:
    """All metrics of net period ``returns`` and the matching net ``trades`` returns.

    ``trades`` comes from :func:`ml.evaluation.costs.trade_returns` on the same positions; an
    empty array (never traded) gives ``nan`` per-trade figures and ``trades = 0``.
    """
    values = _returns(returns)
    per_trade = as_float_array(trades, "trades")
    return PerformanceSummary(
        periods=int(values.size),
        sharpe=sharpe_ratio(values, periods_per_year=periods_per_year),
        sortino=sortino_ratio(values, periods_per_year=periods_per_year),
        calmar=calmar_ratio(values, periods_per_year=periods_per_year),
        max_drawdown=max_drawdown(values),
        annual_return=annual_return(values, periods_per_year=periods_per_year),
        total_return=float(np.prod(1.0 + values) - 1.0) if values.size else math.nan,
        win_rate_per_period=win_rate(values),
        win_rate_per_trade=win_rate(per_trade),
        profit_factor_per_period=profit_factor(values),
        profit_factor_per_trade=profit_factor(per_trade),
        trades=int(per_trade.size),
        p_value=mean_return_p_value(values),
    )
