"""Vectorised, seeded price paths: geometric Brownian motion and Merton jump diffusion.

Both use the exact log-normal discretisation (no Euler error whatever ``dt``): the log-price
increments over one step are drawn from their true distribution and cumulated. A path matrix
has shape ``(n_paths, n_steps + 1)``; column 0 is the start price ``s0``.
"""

from __future__ import annotations

import math

import numpy as np

from ml.risk.params import GBMParams, MertonParams

DEFAULT_PATHS = 10_000
DEFAULT_STEPS = 720


def simulate_gbm(params: GBMParams, *, s0: float = 1.0, n_paths: int = DEFAULT_PATHS,
                 n_steps: int = DEFAULT_STEPS, dt: float = 1.0, seed: int) -> np.ndarray:
    """Prices of ``n_paths`` GBM paths of ``n_steps`` steps of length ``dt``.

    Parameters
    ----------
    params
        Drift and volatility per unit of time (see :mod:`ml.risk.params`).
    s0
        Start price (> 0), column 0 of the result.
    n_paths, n_steps
        Matrix size; 10,000 x 720 by default (30 days of 1h steps).
    dt
        Step length in the unit of ``params``.
    seed
        Seed of the ``numpy.random.Generator`` (PCG64): the same seed gives the same matrix.

    Returns
    -------
    numpy.ndarray
        float64, shape ``(n_paths, n_steps + 1)``, every value > 0. Each log increment is
        ``N((mu - sigma**2 / 2) dt, sigma**2 dt)``, independent across steps and paths.
    """
    _check_sizes(s0, n_paths, n_steps, dt)
    rng = np.random.default_rng(seed)
    increments = rng.standard_normal((n_paths, n_steps))
    increments *= params.sigma * math.sqrt(dt)
    increments += (params.mu - 0.5 * params.sigma**2) * dt
    return _prices_from_log_increments(increments, s0)


def simulate_merton(params: MertonParams, *, s0: float = 1.0, n_paths: int = DEFAULT_PATHS,
                    n_steps: int = DEFAULT_STEPS, dt: float = 1.0, seed: int) -> np.ndarray:
    """Prices of ``n_paths`` Merton jump-diffusion paths of ``n_steps`` steps of length ``dt``.

    The log increment of a step is ``(mu - sigma**2/2 - lambda kappa) dt + sigma sqrt(dt) Z``
    plus the sum of the step's jumps ``Y_i ~ N(jump_mean, jump_std**2)``, their number Poisson
    with mean ``lambda dt`` (``kappa``: :attr:`MertonParams.jump_compensator`), so
    ``E[S_t] = s0 exp(mu t)``.

    The jumps are drawn as one Poisson process over the whole matrix: a Poisson total with mean
    ``lambda dt n_paths n_steps``, each jump placed in a uniformly chosen cell. Given the total
    the cell counts are multinomial, so each cell's count is exactly Poisson(``lambda dt``) and
    independent of the others' (Poisson splitting); drawing only the jumps that occur costs
    ``O(jumps)`` rather than a Poisson draw per cell.

    Parameters and result are as :func:`simulate_gbm`'s; the same seed gives the same matrix.
    """
    _check_sizes(s0, n_paths, n_steps, dt)
    rng = np.random.default_rng(seed)
    drift = (params.mu - 0.5 * params.sigma**2 - params.jump_intensity * params.jump_compensator) * dt
    increments = rng.standard_normal((n_paths, n_steps))
    increments *= params.sigma * math.sqrt(dt)
    increments += drift
    cells = n_paths * n_steps
    total_jumps = int(rng.poisson(params.jump_intensity * dt * cells))
    if total_jumps:
        where = rng.integers(0, cells, size=total_jumps)
        sizes = rng.normal(params.jump_mean, params.jump_std, size=total_jumps)
        np.add.at(increments.reshape(-1), where, sizes)
    return _prices_from_log_increments(increments, s0)


def _prices_from_log_increments(increments: np.ndarray, s0: float) -> np.ndarray:
    n_paths, n_steps = increments.shape
    prices = np.empty((n_paths, n_steps + 1))
    prices[:, 0] = 0.0
    np.cumsum(increments, axis=1, out=prices[:, 1:])
    np.exp(prices, out=prices)
    prices *= s0
    return prices


def _check_sizes(s0: float, n_paths: int, n_steps: int, dt: float) -> None:
    if not (math.isfinite(s0) and s0 > 0):
        raise ValueError(f"s0 must be a positive finite price, got {s0!r}")
    if n_paths < 1 or n_steps < 1:
        raise ValueError(f"need at least one path and one step, got n_paths={n_paths}, n_steps={n_steps}")
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive finite step length, got {dt!r}")
