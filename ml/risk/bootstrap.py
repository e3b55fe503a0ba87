"""Stationary bootstrap (Politis & Romano 1994) of a strategy's realised returns.

Resampled series are concatenated blocks of the original returns, each block starting at a
uniformly random position and continuing (circularly) for a geometric number of steps with mean
``mean_block``. Blocks keep the short-range dependence (volatility clusters, autocorrelation)
that an i.i.d. resample destroys; the circular wrap makes every return equally likely at every
position, so the expected mean of a resample equals the sample mean exactly.
"""

from __future__ import annotations

import numpy as np

from ml.risk.paths import DEFAULT_PATHS

DEFAULT_MEAN_BLOCK = 24.0


def stationary_bootstrap_indices(n_obs: int, *, n_paths: int, n_steps: int,
                                 mean_block: float = DEFAULT_MEAN_BLOCK, seed: int) -> np.ndarray:
    """Indices into a series of ``n_obs`` observations, shape ``(n_paths, n_steps)``, int64.

    Each step starts a new block with probability ``1 / mean_block`` (the first always does);
    otherwise it takes the observation after the previous one, wrapping at the end.
    """
    if n_obs < 1 or n_paths < 1 or n_steps < 1:
        raise ValueError(f"need n_obs, n_paths, n_steps >= 1, got {n_obs}, {n_paths}, {n_steps}")
    if not mean_block >= 1.0:
        raise ValueError(f"mean_block must be at least 1, got {mean_block!r}")
    rng = np.random.default_rng(seed)
    new_block = rng.random((n_paths, n_steps)) < 1.0 / mean_block
    new_block[:, 0] = True
    starts = rng.integers(0, n_obs, size=(n_paths, n_steps))
    position = np.arange(n_steps)
    block_began = np.maximum.accumulate(np.where(new_block, position, 0), axis=1)
    first = np.take_along_axis(starts, block_began, axis=1)
    return (first + (position - block_began)) % n_obs


def bootstrap_value_paths(returns: np.ndarray, *, n_paths: int = DEFAULT_PATHS,
                          n_steps: int | None = None, mean_block: float = DEFAULT_MEAN_BLOCK,
                          seed: int) -> np.ndarray:
    """Value paths, shape ``(n_paths, n_steps + 1)`` starting at 1, compounding resampled returns.

    Parameters
    ----------
    returns
        The strategy's realised simple returns per period (net of fees), oldest first; each
        > -1 and finite, at least 2.
    n_steps
        Horizon in periods; the length of ``returns`` by default.
    mean_block
        Mean block length in periods.
    seed
        Same seed, same paths.
    """
    r = np.asarray(returns, dtype=float)
    if r.ndim != 1 or r.size < 2:
        raise ValueError(f"need a 1-d series of at least 2 returns, got shape {r.shape}")
    if not np.all(np.isfinite(r) & (r > -1.0)):
        bad = int(np.flatnonzero(~(np.isfinite(r) & (r > -1.0)))[0])
        raise ValueError(f"returns must be finite and > -1; row {bad} is {r[bad]!r}")
    steps = r.size if n_steps is None else n_steps
    index = stationary_bootstrap_indices(r.size, n_paths=n_paths, n_steps=steps,
                                         mean_block=mean_block, seed=seed)
    values = np.empty((n_paths, steps + 1))
    values[:, 0] = 1.0
    np.cumprod(1.0 + r[index], axis=1, out=values[:, 1:])
    return values
