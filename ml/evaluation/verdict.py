"""The plain-language verdict of a walk-forward, and JSON-safe conversion of report values.

An edge is claimed ("edge after fees") only when all three hold: the deflated Sharpe ratio of the
out-of-sample net returns is at least :data:`SIGNIFICANCE_LEVEL` given the number of trials tried,
and the out-of-sample Sharpe ratio beats both the same model trained on permuted labels and
buy-and-hold in the same windows and costs. Otherwise the verdict names every check that failed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ml.evaluation.metrics import PerformanceSummary

#: Deflated Sharpe ratio at or above which an edge is called significant (5 % level).
SIGNIFICANCE_LEVEL = 0.95


@dataclass(frozen=True)
class Verdict:
    """Plain-language conclusion: ``edge`` only when all three checks pass."""

    edge: bool
    text: str
    checks: dict[str, bool]


def jsonable(value: Any) -> Any:
    """Datetimes to ISO-8601, non-finite floats to None (JSON has no NaN), recursively."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def verdict_of(out_of_sample: PerformanceSummary, baselines: dict[str, PerformanceSummary],
               deflated_sharpe: float, trials: int) -> Verdict:
    """"edge after fees" only when the deflated Sharpe is significant and the strategy's Sharpe
    beats both the permuted-label model and buy-and-hold; otherwise the text names what failed."""
    sharpe = out_of_sample.sharpe

    def beats(name: str) -> bool:
        other = baselines[name].sharpe  # nan: the baseline never moved, i.e. a Sharpe of 0
        return math.isfinite(sharpe) and sharpe > (0.0 if math.isnan(other) else other)

    checks = {"deflated_sharpe_significant": bool(deflated_sharpe >= SIGNIFICANCE_LEVEL),
              "beats_permuted_labels": beats("permuted_labels"), "beats_buy_and_hold": beats("buy_and_hold")}
    if all(checks.values()):
        return Verdict(True, f"edge after fees: deflated Sharpe {deflated_sharpe:.3f} >= {SIGNIFICANCE_LEVEL} "
                       f"over {trials} trial(s), Sharpe {sharpe:.2f} beats permuted labels and buy-and-hold", checks)
    failed = []
    if not checks["deflated_sharpe_significant"]:
        failed.append(f"deflated Sharpe {deflated_sharpe:.3f} is below {SIGNIFICANCE_LEVEL} over {trials} trial(s)")
    if not checks["beats_permuted_labels"]:
        failed.append(f"Sharpe {sharpe:.2f} does not beat permuted labels ({baselines['permuted_labels'].sharpe:.2f})")
    if not checks["beats_buy_and_hold"]:
        failed.append(f"Sharpe {sharpe:.2f} does not beat buy-and-hold ({baselines['buy_and_hold'].sharpe:.2f})")
    return Verdict(False, "no edge after fees: " + "; ".join(failed), checks)
