"""Calibration of class probabilities: Brier score, expected calibration error, reliability curve,
and temperature scaling fitted on held-out data.

Definitions (``p`` is an ``(n, k)`` array of probabilities, ``y`` the true classes):

* **Brier score** (multi-class): ``mean_i sum_k (p_ik - [y_i == k])^2``; 0 is perfect, 2 is the
  worst (certain and wrong).
* **Expected calibration error**: the top-label confidence ``c_i = max_k p_ik`` is put in
  ``n_bins`` equal-width bins over [0, 1] (bin ``b`` holds ``b/n_bins < c <= (b+1)/n_bins``, the
  first bin also holds 0); ``ECE = sum_b (n_b / n) |accuracy_b - mean confidence_b|`` where
  ``accuracy_b`` is the share of rows in the bin whose top class is the true class.
* **Temperature scaling** (Guo et al. 2017, the multi-class form of Platt scaling with a single
  parameter): ``p' = softmax(log p / T)`` with ``T > 0`` chosen to minimise the log-loss on
  held-out rows (scipy's bounded scalar minimiser over ``log T``). ``T > 1`` softens an
  overconfident model; the top class never changes, so accuracy is untouched. It must be fitted
  on rows the model was not trained on (the caller's held-out window) and applied to later rows.
* **Platt scaling** (one-vs-rest, Platt 1999 / Zadrozny & Elkan 2002): for each class ``k`` a
  logistic ``q_k = sigmoid(a_k log p_k + b_k)`` is fitted on held-out rows (class ``k`` against the
  rest), then the rows are renormalised, ``p'_k = q_k / sum_j q_j``. Targets use Platt's smoothing
  (``(N+ + 1)/(N+ + 2)`` for positives, ``1/(N- + 2)`` for negatives), so a class absent from the
  held-out rows still gets finite parameters. Unlike a temperature it may change the top class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

#: Probabilities are clipped to this floor before logs (avoids log 0 for a certain model).
PROBABILITY_FLOOR = 1e-12

RELIABILITY_SCHEMA: dict[str, pl.DataType] = {
    "bin": pl.Int64(), "lower": pl.Float64(), "upper": pl.Float64(), "count": pl.Int64(),
    "mean_confidence": pl.Float64(), "accuracy": pl.Float64(),
}


def _validated(proba: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(proba, dtype=float)
    labels = np.asarray(y)
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"probabilities must have shape (n, k) with n > 0, got {p.shape}")
    if labels.shape != (p.shape[0],):
        raise ValueError(f"{p.shape[0]} probability rows but labels have shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= p.shape[1]:
        raise ValueError(f"labels must be integer classes 0..{p.shape[1] - 1}")
    if np.any(~np.isfinite(p)) or np.any(p < 0) or not np.allclose(p.sum(axis=1), 1.0, atol=1e-6):
        raise ValueError("probability rows must be finite, non-negative and sum to 1")
    return p, labels


def brier_score(proba: np.ndarray, y: np.ndarray) -> float:
    """Multi-class Brier score (see module docstring), in [0, 2]."""
    p, labels = _validated(proba, y)
    onehot = np.eye(p.shape[1])[labels]
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


def log_loss(proba: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-probability of the true class (natural log), probabilities floored."""
    p, labels = _validated(proba, y)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(labels)), labels], PROBABILITY_FLOOR, None))))


def _bin_index(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    # b/n < c <= (b+1)/n  ->  ceil(c * n) - 1, with c == 0 in bin 0.
    return np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)


def reliability_table(proba: np.ndarray, y: np.ndarray, n_bins: int = 10) -> pl.DataFrame:
    """Reliability curve of the top-label confidence: one row per equal-width bin (RELIABILITY_SCHEMA).

    Empty bins have ``count`` 0 and null ``mean_confidence`` and ``accuracy``.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    p, labels = _validated(proba, y)
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == labels).astype(float)
    bins = _bin_index(confidence, n_bins)
    rows = []
    for b in range(n_bins):
        in_bin = bins == b
        count = int(in_bin.sum())
        rows.append({
            "bin": b, "lower": b / n_bins, "upper": (b + 1) / n_bins, "count": count,
            "mean_confidence": float(confidence[in_bin].mean()) if count else None,
            "accuracy": float(correct[in_bin].mean()) if count else None,
        })
    return pl.DataFrame(rows, schema=RELIABILITY_SCHEMA)


def expected_calibration_error(proba: np.ndarray, y: np.ndarray, n_bins: int = 10) -> float:
    """ECE over ``n_bins`` equal-width confidence bins (see module docstring), in [0, 1]."""
    table = reliability_table(proba, y, n_bins).filter(pl.col("count") > 0)
    n = int(table["count"].sum())
    gaps = (table["accuracy"] - table["mean_confidence"]).abs() * table["count"]
    return float(gaps.sum() / n)


@dataclass(frozen=True)
class TemperatureScaler:
    """A fitted temperature; ``apply`` rescales probabilities from the same model."""

    temperature: float
    held_out_rows: int

    def apply(self, proba: np.ndarray) -> np.ndarray:
        """``softmax(log p / T)`` row-wise; same shape as ``proba``."""
        return apply_temperature(proba, self.temperature)


def apply_temperature(proba: np.ndarray, temperature: float) -> np.ndarray:
    """Rescale probability rows by ``softmax(log p / temperature)`` (temperature > 0)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    p = np.asarray(proba, dtype=float)
    logits = np.log(np.clip(p, PROBABILITY_FLOOR, None)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(proba: np.ndarray, y: np.ndarray, *, bounds: tuple[float, float] = (0.05, 20.0),
                    ) -> TemperatureScaler:
    """Temperature minimising the held-out log-loss of ``proba`` against ``y``.

    ``proba`` must be the model's predictions on held-out rows (not its training rows). The
    search is bounded to ``bounds`` (deterministic; no randomness involved).
    """
    from scipy.optimize import minimize_scalar

    p, labels = _validated(proba, y)
    low, high = bounds
    if not 0 < low < high:
        raise ValueError(f"bounds must satisfy 0 < low < high, got {bounds}")

    def loss(log_t: float) -> float:
        return log_loss(apply_temperature(p, float(np.exp(log_t))), labels)

    result = minimize_scalar(loss, bounds=(np.log(low), np.log(high)), method="bounded",
                             options={"xatol": 1e-6})
    return TemperatureScaler(temperature=float(np.exp(result.x)), held_out_rows=len(labels))


@dataclass(frozen=True)
class PlattScaler:
    """Fitted one-vs-rest Platt parameters; ``apply`` rescales probabilities from the same model.

    ``slopes[k]`` and ``intercepts[k]`` are ``a_k`` and ``b_k`` of class ``k`` (module docstring).
    """

    slopes: tuple[float, ...]
    intercepts: tuple[float, ...]
    held_out_rows: int

    def apply(self, proba: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, same shape as ``proba``; rows sum to 1."""
        return apply_platt(proba, np.asarray(self.slopes), np.asarray(self.intercepts))


def apply_platt(proba: np.ndarray, slopes: np.ndarray, intercepts: np.ndarray) -> np.ndarray:
    """``q_k = sigmoid(a_k log p_k + b_k)`` per class, renormalised row-wise."""
    p = np.asarray(proba, dtype=float)
    if p.ndim != 2 or p.shape[1] != len(slopes) or len(slopes) != len(intercepts):
        raise ValueError(f"probabilities of shape {p.shape} for {len(slopes)} Platt classes")
    z = np.log(np.clip(p, PROBABILITY_FLOOR, None)) * slopes + intercepts
    q = 1.0 / (1.0 + np.exp(-np.clip(z, -500.0, 500.0)))
    q = np.clip(q, PROBABILITY_FLOOR, None)
    return q / q.sum(axis=1, keepdims=True)


def _fit_binary_platt(score: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    """(a, b) minimising the cross-entropy of ``sigmoid(a score + b)`` against Platt's smoothed targets."""
    from scipy.optimize import minimize

    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    target = np.where(positive, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))

    def loss_and_gradient(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = theta[0] * score + theta[1]
        # log(1 + e^z) - t z, the cross-entropy of sigmoid(z) against t, written stably
        loss = np.logaddexp(0.0, z) - target * z
        residual = 1.0 / (1.0 + np.exp(-z)) - target
        return float(loss.mean()), np.array([np.mean(residual * score), np.mean(residual)])

    result = minimize(loss_and_gradient, x0=np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
    return float(result.x[0]), float(result.x[1])


def fit_platt(proba: np.ndarray, y: np.ndarray) -> PlattScaler:
    """One-vs-rest Platt scaling fitted on held-out rows (see the module docstring).

    ``proba`` must be the model's predictions on rows it was not trained on; the fit is
    deterministic (L-BFGS from ``a = 1, b = 0``).
    """
    p, labels = _validated(proba, y)
    score = np.log(np.clip(p, PROBABILITY_FLOOR, None))
    fitted = [_fit_binary_platt(score[:, k], labels == k) for k in range(p.shape[1])]
    return PlattScaler(slopes=tuple(a for a, _ in fitted), intercepts=tuple(b for _, b in fitted),
                       held_out_rows=len(labels))
