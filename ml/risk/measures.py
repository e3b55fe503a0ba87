"""Risk figures of simulated or bootstrapped value paths: VaR, CVaR, drawdowns, stress tests.

Conventions: a path matrix has shape ``(n_paths, n_steps + 1)`` of positive values, column 0 the
start. The horizon P&L of a path is ``value_end / value_start - 1`` (a fraction of the start
value). VaR and CVaR are reported as positive *losses* (a VaR of 0.12 means losing 12 % or more
happens with probability ``1 - level``); a drawdown is ``1 - value / running peak`` (0 to 1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, Self, TypeVar

import numpy as np

VAR_LEVELS = (0.95, 0.99)
DRAWDOWN_QUANTILES = (0.5, 0.9, 0.95, 0.99)
STRESS_MULTIPLIERS = (2.0, 3.0, 5.0)


def value_at_risk(pnl: np.ndarray, level: float) -> float:
    """The ``level`` quantile of the loss ``-pnl`` (linear interpolation between samples)."""
    _check_level(level)
    return float(np.quantile(-np.asarray(pnl, dtype=float), level))


def expected_shortfall(pnl: np.ndarray, level: float) -> float:
    """CVaR: the mean loss over the outcomes whose loss is at least the ``level`` VaR.

    Always ``>= value_at_risk(pnl, level)``: it averages losses that are all at least that VaR.
    """
    loss = -np.asarray(pnl, dtype=float)
    var = value_at_risk(pnl, level)
    return float(np.mean(loss[loss >= var]))


def max_drawdowns(paths: np.ndarray, *, chunk: int = 2_000) -> np.ndarray:
    """The maximum drawdown of each path, shape ``(n_paths,)``, in [0, 1).

    Computed ``chunk`` paths at a time to bound the temporary memory.
    """
    values = _check_paths(paths)
    out = np.empty(values.shape[0])
    for start in range(0, values.shape[0], chunk):
        block = values[start:start + chunk]
        peaks = np.maximum.accumulate(block, axis=1)
        out[start:start + chunk] = np.max(1.0 - block / peaks, axis=1)
    return out


@dataclass(frozen=True)
class RiskSummary:
    """Risk figures of one set of paths (fractions of the start value; losses positive)."""

    n_paths: int
    horizon_steps: int
    mean_return: float
    var: dict[float, float]
    cvar: dict[float, float]
    drawdown_quantiles: dict[float, float]

    def as_dict(self) -> dict[str, float | int]:
        """Flat, JSON-ready figures: ``var_95``, ``cvar_99``, ``max_drawdown_q50`` ..."""
        flat: dict[str, float | int] = {"n_paths": self.n_paths, "horizon_steps": self.horizon_steps,
                                        "mean_return": self.mean_return}
        flat |= {f"var_{round(level * 100)}": v for level, v in self.var.items()}
        flat |= {f"cvar_{round(level * 100)}": v for level, v in self.cvar.items()}
        flat |= {f"max_drawdown_q{round(q * 100)}": v for q, v in self.drawdown_quantiles.items()}
        return flat


def summarise_paths(paths: np.ndarray, *, levels: Sequence[float] = VAR_LEVELS,
                    drawdown_quantiles: Sequence[float] = DRAWDOWN_QUANTILES) -> RiskSummary:
    """VaR and CVaR of the horizon P&L at ``levels`` and quantiles of the per-path max drawdown."""
    values = _check_paths(paths)
    pnl = values[:, -1] / values[:, 0] - 1.0
    drawdowns = max_drawdowns(values)
    return RiskSummary(
        n_paths=values.shape[0],
        horizon_steps=values.shape[1] - 1,
        mean_return=float(np.mean(pnl)),
        var={level: value_at_risk(pnl, level) for level in levels},
        cvar={level: expected_shortfall(pnl, level) for level in levels},
        drawdown_quantiles={q: float(np.quantile(drawdowns, q)) for q in drawdown_quantiles},
    )


class VolatilityScalable(Protocol):
    def scaled_volatility(self, multiplier: float) -> Self: ...


P = TypeVar("P", bound=VolatilityScalable)


def stress_test(params: P, simulate: Callable[[P], np.ndarray], *,
                                       multipliers: Sequence[float] = STRESS_MULTIPLIERS
                                       ) -> dict[float, RiskSummary]:
    """Risk figures with the volatility multiplied by each of ``multipliers`` (1 included).

    ``simulate(params)`` returns a path matrix; pass a function with a fixed seed (for example
    ``lambda p: simulate_gbm(p, seed=7)``) so every multiplier sees the same random numbers and
    the figures differ only by the stress.
    """
    scenarios = (1.0, *(m for m in multipliers if m != 1.0))
    return {m: summarise_paths(simulate(params.scaled_volatility(m))) for m in scenarios}


def _check_paths(paths: np.ndarray) -> np.ndarray:
    values = np.asarray(paths, dtype=float)
    if values.ndim != 2 or values.shape[0] < 1 or values.shape[1] < 2:
        raise ValueError(f"paths must be (n_paths >= 1, n_steps + 1 >= 2), got shape {values.shape}")
    if not np.all(np.isfinite(values) & (values > 0)):
        raise ValueError("path values must be positive and finite")
    return values


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be in (0, 1), got {level!r}")
