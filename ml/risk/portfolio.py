"""A correlated portfolio: multivariate GBM through a Cholesky factor of the estimated covariance.

Log increments of the assets over one step are ``N((mu - diag(cov) / 2) dt, cov dt)``, drawn as
``L z`` with ``L`` the lower Cholesky factor of ``cov`` and ``z`` independent standard normals.

An estimated covariance need not be positive definite (assets with identical returns, fewer
observations than assets, pairwise-complete estimates): :func:`nearest_positive_definite` then
repairs it by **eigenvalue clipping of the correlation matrix** (the one-step projection onto
the positive semi-definite cone, Higham 2002's first step): negative and tiny eigenvalues are
raised to ``floor``, the result is rescaled to a unit diagonal, and the original volatilities are
put back. Each asset's variance is unchanged; the correlations move as little as the clipping
needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ml.risk.paths import DEFAULT_PATHS, DEFAULT_STEPS

EIGENVALUE_FLOOR = 1e-8


@dataclass(frozen=True)
class AssetModel:
    """Drift vector and covariance matrix per unit of time, of the assets' log-price dynamics
    (GBM ``mu``: ``E[S_t] = S_0 exp(mu t)``); ``repaired`` when the covariance needed the fix."""

    mu: np.ndarray
    cov: np.ndarray
    repaired: bool


def estimate_asset_model(log_returns: np.ndarray, *, dt: float = 1.0) -> AssetModel:
    """GBM drifts and the covariance of ``log_returns`` (shape ``(n_obs, n_assets)``, rows aligned
    in time, oldest first, all finite), repaired to positive definite when needed."""
    r = np.asarray(log_returns, dtype=float)
    if r.ndim != 2 or r.shape[0] < 2 or r.shape[1] < 1:
        raise ValueError(f"log returns must be (n_obs >= 2, n_assets >= 1), got shape {r.shape}")
    if not np.all(np.isfinite(r)):
        row = int(np.flatnonzero(~np.all(np.isfinite(r), axis=1))[0])
        raise ValueError(f"log returns must be finite; row {row} is not")
    cov = np.atleast_2d(np.cov(r, rowvar=False, ddof=1)) / dt
    fixed, repaired = nearest_positive_definite(cov)
    mu = r.mean(axis=0) / dt + 0.5 * np.diag(fixed)
    return AssetModel(mu=mu, cov=fixed, repaired=repaired)


def nearest_positive_definite(cov: np.ndarray, *, floor: float = EIGENVALUE_FLOOR
                              ) -> tuple[np.ndarray, bool]:
    """``(cov, False)`` when ``cov`` already has a Cholesky factor, else the repaired matrix
    (see the module docstring) and ``True``. The diagonal (variances) is kept exactly."""
    c = np.asarray(cov, dtype=float)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"covariance must be square, got shape {c.shape}")
    if not np.all(np.isfinite(c)) or np.any(np.diag(c) <= 0):
        raise ValueError("covariance must be finite with positive variances")
    c = 0.5 * (c + c.T)
    try:
        np.linalg.cholesky(c)
        return c, False
    except np.linalg.LinAlgError:
        pass
    std = np.sqrt(np.diag(c))
    corr = c / np.outer(std, std)
    values, vectors = np.linalg.eigh(corr)
    clipped = (vectors * np.maximum(values, floor)) @ vectors.T
    d = np.sqrt(np.diag(clipped))
    corr = clipped / np.outer(d, d)
    np.fill_diagonal(corr, 1.0)
    return corr * np.outer(std, std), True


def correlated_log_increments(model: AssetModel, *, n_paths: int, n_steps: int, dt: float = 1.0,
                              rng: np.random.Generator) -> np.ndarray:
    """Log increments, shape ``(n_paths, n_steps, n_assets)``, with covariance ``cov dt``."""
    factor = np.linalg.cholesky(model.cov)
    z = rng.standard_normal((n_paths, n_steps, factor.shape[0]))
    increments = z @ (factor.T * math.sqrt(dt))
    increments += (model.mu - 0.5 * np.diag(model.cov)) * dt
    return increments


def simulate_portfolio(model: AssetModel, weights: np.ndarray, *, n_paths: int = DEFAULT_PATHS,
                       n_steps: int = DEFAULT_STEPS, dt: float = 1.0, seed: int,
                       chunk: int = 1_000) -> np.ndarray:
    """Value paths of a buy-and-hold portfolio, shape ``(n_paths, n_steps + 1)``, start value 1.

    ``weights`` are the start allocations (fractions of the value, summing to 1, long only); each
    asset's holding then moves with its own price. Simulated ``chunk`` paths at a time to bound
    memory (``chunk x n_steps x n_assets`` floats); the result depends on ``seed`` and ``chunk``.
    """
    w = np.asarray(weights, dtype=float)
    if w.shape != model.mu.shape or np.any(w < 0) or not math.isclose(w.sum(), 1.0, abs_tol=1e-9):
        raise ValueError(f"weights must be {model.mu.shape[0]} non-negative fractions summing to 1")
    rng = np.random.default_rng(seed)
    values = np.empty((n_paths, n_steps + 1))
    values[:, 0] = 1.0
    for start in range(0, n_paths, chunk):
        count = min(chunk, n_paths - start)
        increments = correlated_log_increments(model, n_paths=count, n_steps=n_steps, dt=dt, rng=rng)
        growth = np.exp(np.cumsum(increments, axis=1))
        values[start:start + count, 1:] = growth @ w
    return values
