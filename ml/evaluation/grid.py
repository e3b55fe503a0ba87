"""A documented parameter grid over the segment walk-forward, and what the search costs in honesty:
the probability of backtest overfitting (CSCV) and the deflated Sharpe ratio given the trials.

The grid (:class:`ParameterGrid`, default 3 x 3 x 3 = 27 trials):

* movement threshold: the segment's threshold times ``threshold_factors`` (0.5, 1, 2);
* label horizon in candles: ``horizons`` (1, 4, 12);
* position margin of :class:`ml.evaluation.walkforward.PositionRule`: ``margins`` (0.05, 0.1,
  0.2). The score ``P(up) - P(down)`` of a 3-class model is small: on the 2024 Binance 1h data
  ``|score|`` exceeds 0.05 in about half the out-of-sample rows, 0.1 in a quarter and 0.2 in one
  in twenty, so the three margins open positions on the upper half, quarter and twentieth of the
  forecasts (0 would trade on every lean). A margin only re-reads the same probabilities, so it
  costs no refit.

Each trial holds a signal for its own label horizon (the trial's ``horizon``), as the reported
run holds it for the configured one (:attr:`SegmentWalkForwardConfig.position_rule`); a config
with an explicit ``rule`` keeps that rule's hold and ``long_only`` in every trial.

Every trial runs :func:`ml.evaluation.segment.segment_walk_forward` with the same windows, seed,
costs and model hyperparameters; only the grid's parameters change. Each trial's out-of-sample
equal-weight net returns on the same test bars form a ``bars x trials`` matrix, from which
:func:`ml.evaluation.overfitting.probability_of_backtest_overfitting` (CSCV, 16 blocks, or fewer
when the bars are few) and the deflated Sharpe ratio of the best trial follow. A trial that never
trades has zero dispersion; its per-period Sharpe counts as 0 (it can still be the "best").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import polars as pl

from ml.evaluation.overfitting import (
    BacktestOverfitting,
    deflated_sharpe_ratio,
    expected_maximum_sharpe,
    probability_of_backtest_overfitting,
    sharpe_ratio_moments,
)
from ml.evaluation.positions import rule_positions
from ml.evaluation.segment import (
    DEFAULT_SEGMENTS,
    SegmentWalkForward,
    SegmentWalkForwardConfig,
    portfolio_returns,
    segment_walk_forward,
)
from ml.evaluation.walkforward import PositionRule
from ml.features.segments import SegmentsConfig

#: CSCV blocks used when the bars allow (at least 2 bars per block); fewer, even, otherwise.
CSCV_SPLITS = 16


@dataclass(frozen=True)
class ParameterGrid:
    """Trials: every combination of threshold factor, horizon and position margin (module docs)."""

    threshold_factors: tuple[float, ...] = (0.5, 1.0, 2.0)
    horizons: tuple[int, ...] = (1, 4, 12)
    margins: tuple[float, ...] = (0.05, 0.1, 0.2)

    def __post_init__(self) -> None:
        if not (self.threshold_factors and self.horizons and self.margins):
            raise ValueError("every grid axis needs at least one value")
        if any(not f > 0 for f in self.threshold_factors) or any(h < 1 for h in self.horizons):
            raise ValueError("threshold factors must be positive and horizons at least 1 candle")
        for margin in self.margins:
            PositionRule(margin=margin)  # validates the margin

    @property
    def size(self) -> int:
        return len(self.threshold_factors) * len(self.horizons) * len(self.margins)


@dataclass(frozen=True)
class GridTrial:
    """One trial's parameters and its out-of-sample annualised Sharpe ratio."""

    threshold: float
    horizon: int
    margin: float
    sharpe: float


@dataclass(frozen=True)
class GridResult:
    """``returns``: ``ts`` and one column ``trial_<i>`` per trial (net equal-weight returns).

    ``pbo`` is None when the bars cannot fill two CSCV blocks of two bars. ``best`` indexes
    ``trials``; ``deflated_sharpe`` is the best trial's, given ``len(trials)`` trials and the
    variance ``sharpe_variance`` of the trials' per-period Sharpe ratios.
    """

    trials: tuple[GridTrial, ...]
    returns: pl.DataFrame
    pbo: BacktestOverfitting | None
    best: int
    sharpe_variance: float
    expected_maximum_sharpe: float
    deflated_sharpe: float
    cscv_blocks: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary: trials (parameters, Sharpe), PBO and its split count, best trial, DSR."""
        def finite(value: float) -> float | None:
            return float(value) if math.isfinite(value) else None

        return {
            "trials": [{"threshold": t.threshold, "horizon": t.horizon, "margin": t.margin,
                        "sharpe": finite(t.sharpe)} for t in self.trials],
            "pbo": None if self.pbo is None else self.pbo.pbo,
            "cscv_blocks": self.cscv_blocks, "cscv_combinations": None if self.pbo is None else self.pbo.splits,
            "best_trial": self.best, "trial_sharpe_variance": self.sharpe_variance,
            "expected_maximum_sharpe": self.expected_maximum_sharpe,
            "best_deflated_sharpe": finite(self.deflated_sharpe),
        }


def _per_period_sharpes(matrix: np.ndarray) -> np.ndarray:
    spread = matrix.std(axis=0, ddof=1)
    mean = matrix.mean(axis=0)
    return np.divide(mean, spread, out=np.zeros_like(mean), where=spread > 0)


def _cscv_blocks(bars: int) -> int | None:
    """:data:`CSCV_SPLITS`, or the largest even count leaving at least 2 bars per block (None if none)."""
    splits = CSCV_SPLITS
    while splits >= 2 and bars // splits < 2:
        splits -= 2
    return splits if splits >= 2 else None


def run_grid(
    candles: pl.DataFrame,
    *,
    segment: str,
    config: SegmentWalkForwardConfig | None = None,
    grid: ParameterGrid | None = None,
    segments: SegmentsConfig = DEFAULT_SEGMENTS,
    reuse: SegmentWalkForward | None = None,
    progress: Callable[[int, int], None] | None = None,
    symbols: Sequence[str] | None = None,
) -> GridResult:
    """Run every trial of ``grid`` (module docstring) and measure the search's overfitting.

    ``reuse``: a result already computed with ``config`` (same candles) whose threshold and horizon
    match a grid point is used for that point instead of refitting. ``progress(done, total)`` is
    called after each walk-forward (one per threshold x horizon); ``symbols`` as in
    :func:`segment_walk_forward`. Raises ``ValueError`` as
    :func:`segment_walk_forward` does, or when trials do not share their test bars.
    """
    config = config or SegmentWalkForwardConfig()
    grid = grid or ParameterGrid()
    base = segments.segments[segment].threshold if config.threshold is None else config.threshold  # type: ignore[index]
    points = [(base * factor, horizon) for factor in grid.threshold_factors for horizon in grid.horizons]
    trials: list[GridTrial] = []
    columns: dict[str, np.ndarray] = {}
    bars: np.ndarray | None = None
    for done, (threshold, horizon) in enumerate(points, start=1):
        if reuse is not None and math.isclose(reuse.threshold, threshold) and reuse.config.horizon == horizon:
            result = reuse
        else:
            result = segment_walk_forward(candles, segment=segment, segments=segments, permuted_baseline=False,
                                          symbols=symbols,
                                          config=replace(config, threshold=threshold, horizon=horizon))
        for margin in grid.margins:
            rule = PositionRule(margin=margin, long_only=config.position_rule.long_only,
                                hold=horizon if config.rule is None else config.rule.hold)
            positions = rule_positions(result.predictions, rule)
            trial_bars, returns = portfolio_returns(result.predictions, positions, config.costs)
            if bars is None:
                bars = trial_bars
            elif not np.array_equal(bars, trial_bars):
                raise ValueError(f"trial threshold={threshold} horizon={horizon} has other test bars than the first")
            columns[f"trial_{len(trials)}"] = returns
            sharpe = float(np.mean(returns) / np.std(returns, ddof=1)) if np.std(returns) > 0 else math.nan
            trials.append(GridTrial(threshold, horizon, margin, sharpe * math.sqrt(config.periods_per_year)))
        if progress is not None:
            progress(done, len(points))
    assert bars is not None
    matrix = np.column_stack(list(columns.values()))
    sharpes = _per_period_sharpes(matrix)
    best = int(np.argmax(sharpes))
    variance = float(np.var(sharpes, ddof=1)) if sharpes.size > 1 else 0.0
    try:
        sharpe, skewness, kurtosis, periods = sharpe_ratio_moments(matrix[:, best])
        deflated = deflated_sharpe_ratio(sharpe, periods=periods, trials=sharpes.size, sharpe_variance=variance,
                                         skewness=skewness, kurtosis=kurtosis)
    except ValueError:  # the best trial never traded: nothing to deflate, nothing claimed
        deflated = math.nan
    frame = pl.DataFrame({"ts": bars, **columns})
    blocks = _cscv_blocks(matrix.shape[0]) if sharpes.size > 1 else None
    pbo = None if blocks is None else probability_of_backtest_overfitting(matrix, splits=blocks)
    return GridResult(trials=tuple(trials), returns=frame, pbo=pbo, cscv_blocks=blocks,
                      best=best, sharpe_variance=variance,
                      expected_maximum_sharpe=expected_maximum_sharpe(sharpes.size, variance),
                      deflated_sharpe=deflated)


def with_grid(result: SegmentWalkForward, grid: GridResult) -> SegmentWalkForward:
    """``result`` with its Sharpe deflated by the grid's trials and the grid's PBO attached (its
    verdict then judges the reported strategy as one pick among ``len(grid.trials)``)."""
    return result.with_trials(len(grid.trials), grid.sharpe_variance, pbo=None if grid.pbo is None else grid.pbo.pbo,
                              extra={"grid": grid.to_dict()})
