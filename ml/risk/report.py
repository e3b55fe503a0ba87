"""One symbol's Monte Carlo risk figures, from its closes: what a ``risk_report`` asset publishes.

Pure: estimation (:mod:`ml.risk.estimation`) on the closes it is given, then GBM and Merton
paths from those parameters, their risk summaries and the volatility stresses of the Merton
model. The closes must end at the report's time; nothing after the last close is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ml.risk.estimation import (
    DEFAULT_THRESHOLD,
    estimate_gbm,
    estimate_merton,
    log_returns_from_closes,
)
from ml.risk.measures import STRESS_MULTIPLIERS, RiskSummary, stress_test, summarise_paths
from ml.risk.params import GBMParams, MertonParams
from ml.risk.paths import DEFAULT_PATHS, DEFAULT_STEPS, simulate_gbm, simulate_merton


@dataclass(frozen=True)
class SymbolRisk:
    """Fitted parameters and risk summaries of one symbol; ``stress`` maps a volatility
    multiplier (1 = unstressed) to the Merton model's summary."""

    gbm_params: GBMParams
    merton_params: MertonParams
    gbm: RiskSummary
    merton: RiskSummary
    stress: dict[float, RiskSummary]

    def rows(self) -> list[dict[str, float | int | str]]:
        """One flat row per model and scenario (``model``, ``vol_multiplier`` + figures)."""
        rows = [{"model": "gbm", "vol_multiplier": 1.0, **self.gbm.as_dict()}]
        rows += [{"model": "merton", "vol_multiplier": m, **s.as_dict()} for m, s in self.stress.items()]
        return rows


def symbol_risk(closes: np.ndarray, *, n_paths: int = DEFAULT_PATHS, n_steps: int = DEFAULT_STEPS,
                dt: float = 1.0, threshold: float = DEFAULT_THRESHOLD,
                multipliers: Sequence[float] = STRESS_MULTIPLIERS, seed: int) -> SymbolRisk:
    """Risk of holding the symbol for ``n_steps`` candles, from its ``closes`` (oldest first).

    Parameters
    ----------
    closes
        Consecutive closes of one timeframe, positive and finite, at least 31.
    n_paths, n_steps
        Simulation size; the horizon is ``n_steps`` candles (720 1h candles = 30 days).
    dt
        Candle length in the unit of the parameters (1: per candle).
    threshold
        Jump threshold in diffusion standard deviations (:func:`ml.risk.estimate_merton`).
    multipliers
        Volatility stresses of the Merton model.
    seed
        Every simulation uses this seed (common random numbers across models and stresses).
    """
    returns = log_returns_from_closes(closes)
    gbm_params = estimate_gbm(returns, dt=dt)
    merton_params = estimate_merton(returns, dt=dt, threshold=threshold)
    gbm = summarise_paths(simulate_gbm(gbm_params, n_paths=n_paths, n_steps=n_steps, dt=dt, seed=seed))

    def merton_paths(params: MertonParams) -> np.ndarray:
        return simulate_merton(params, n_paths=n_paths, n_steps=n_steps, dt=dt, seed=seed)

    stress = stress_test(merton_params, merton_paths, multipliers=multipliers)
    return SymbolRisk(gbm_params=gbm_params, merton_params=merton_params, gbm=gbm,
                      merton=stress[1.0], stress=stress)
