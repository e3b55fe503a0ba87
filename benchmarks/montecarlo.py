"""Monte Carlo risk: 10,000 paths x 720 steps of GBM and of Merton jump diffusion.

Measured in the same run, best and median of the repeats (seeds differ per repeat):

* **ml.risk**: :func:`ml.risk.simulate_gbm` / :func:`ml.risk.simulate_merton`, the price matrix
  ``(10,000, 721)`` in float64 (exact log-normal steps, jumps drawn as one Poisson process over
  the matrix);
* **per-step loop**: the textbook loop over the 720 steps, vectorised over the paths (a normal
  draw per step; for Merton a Poisson count per cell and the jump sum
  ``N(n mu_J, n sigma_J^2)``), writing the same matrix;
* **pure Python**: a loop per path and per step with ``random.gauss`` (and a Knuth Poisson draw
  for Merton) on 100 paths, its time scaled x100 to 10,000 paths (rates are per cell, so it
  compares directly).

Also, no target: :func:`ml.risk.summarise_paths` of the Merton matrix (VaR/CVaR 95/99, max
drawdown of every path and its quantiles). Merton parameters are estimated from the real BTC/USDT
1h candles of ``../shared/fixtures/binance_2024`` when present, else a fixed BTC-like set.
Targets: <= 1 s each for the 10,000 x 720 GBM and Merton matrices.
"""

from __future__ import annotations

import math
import os
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from benchmarks.report import TIMING_HEADER, Section, Target, Timing, measure, table, timing_rows

if TYPE_CHECKING:
    from ml.risk import MertonParams

PATHS, STEPS = 10_000, 720
QUICK_PATHS = 1_000
PYTHON_PATHS = 100
TARGET_SECONDS = 1.0
FIXTURES = Path(os.environ.get("SIGNALWORKS_SHARED_FIXTURES",
                               Path(__file__).resolve().parents[2] / "shared" / "fixtures"))
FIXTURE = FIXTURES / "binance_2024" / "BTC_USDT-1h.feather"


def _merton_params() -> tuple[MertonParams, str]:
    from ml.risk import MertonParams, estimate_merton, log_returns_from_closes

    if FIXTURE.is_file():
        import polars as pl

        closes = pl.read_ipc(FIXTURE).sort("date").get_column("close").to_numpy().astype(float)
        return estimate_merton(log_returns_from_closes(closes)), "estimated from BTC/USDT 1h, Jan-Sep 2024"
    return (MertonParams(mu=2e-5, sigma=0.006, jump_intensity=0.01, jump_mean=-0.002, jump_std=0.025),
            "fixed BTC-like set (../shared absent)")


def gbm_step_loop(mu: float, sigma: float, n_paths: int, n_steps: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    prices = np.empty((n_paths, n_steps + 1))
    prices[:, 0] = 1.0
    drift = mu - 0.5 * sigma**2
    for t in range(n_steps):
        prices[:, t + 1] = prices[:, t] * np.exp(drift + sigma * rng.standard_normal(n_paths))
    return prices


def merton_step_loop(p: MertonParams, n_paths: int, n_steps: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    prices = np.empty((n_paths, n_steps + 1))
    prices[:, 0] = 1.0
    drift = p.mu - 0.5 * p.sigma**2 - p.jump_intensity * p.jump_compensator
    for t in range(n_steps):
        counts = rng.poisson(p.jump_intensity, n_paths)
        jumps = counts * p.jump_mean + np.sqrt(counts) * p.jump_std * rng.standard_normal(n_paths)
        step = drift + p.sigma * rng.standard_normal(n_paths) + jumps
        prices[:, t + 1] = prices[:, t] * np.exp(step)
    return prices


def gbm_python(mu: float, sigma: float, n_paths: int, n_steps: int, seed: int) -> list[list[float]]:
    rng = random.Random(seed)
    drift = mu - 0.5 * sigma**2
    paths = []
    for _ in range(n_paths):
        price, path = 1.0, [1.0]
        for _ in range(n_steps):
            price *= math.exp(drift + sigma * rng.gauss(0.0, 1.0))
            path.append(price)
        paths.append(path)
    return paths


def merton_python(p: MertonParams, n_paths: int, n_steps: int, seed: int) -> list[list[float]]:
    rng = random.Random(seed)
    drift = p.mu - 0.5 * p.sigma**2 - p.jump_intensity * p.jump_compensator
    limit = math.exp(-p.jump_intensity)
    paths = []
    for _ in range(n_paths):
        price, path = 1.0, [1.0]
        for _ in range(n_steps):
            step = drift + p.sigma * rng.gauss(0.0, 1.0)
            product = rng.random()  # Knuth: count uniforms until their product drops below e^-lambda
            while product > limit:
                step += rng.gauss(p.jump_mean, p.jump_std)
                product *= rng.random()
            price *= math.exp(step)
            path.append(price)
        paths.append(path)
    return paths


def _scaled(timing: Timing, factor: float, rows: int) -> Timing:
    return Timing(timing.label, rows, tuple(s * factor for s in timing.seconds))


def run(quick: bool = False) -> Section:
    """Time the GBM and Merton matrices beside their loops; return the section with two targets."""
    from ml.risk import GBMParams, simulate_gbm, simulate_merton, summarise_paths

    n_paths = QUICK_PATHS if quick else PATHS
    repeats = 2 if quick else 3
    cells = n_paths * STEPS
    merton, merton_source = _merton_params()
    gbm = GBMParams(mu=merton.mu, sigma=merton.sigma)
    simulate_gbm(gbm, n_paths=100, n_steps=10, seed=0)  # warm-up: imports, first allocations
    section = Section(f"Monte Carlo: {n_paths:,} paths x {STEPS} steps ({cells / 1e6:.1f} M cells)")
    section.add(f"  Merton parameters ({merton_source}), per hour: sigma {merton.sigma:.5f}, "
                f"jumps {merton.jump_intensity:.4f}/h, jump mean {merton.jump_mean:+.4f}, "
                f"jump std {merton.jump_std:.4f}; GBM with the same mu and sigma", "")
    scale = n_paths / PYTHON_PATHS
    rows: list[list[object]] = []
    bests: dict[str, float] = {}
    for name, fast, loop, python in (
        ("GBM", lambda i: simulate_gbm(gbm, n_paths=n_paths, n_steps=STEPS, seed=i),
         lambda i: gbm_step_loop(gbm.mu, gbm.sigma, n_paths, STEPS, seed=i),
         lambda i: gbm_python(gbm.mu, gbm.sigma, PYTHON_PATHS, STEPS, seed=i)),
        ("Merton", lambda i: simulate_merton(merton, n_paths=n_paths, n_steps=STEPS, seed=i),
         lambda i: merton_step_loop(merton, n_paths, STEPS, seed=i),
         lambda i: merton_python(merton, PYTHON_PATHS, STEPS, seed=i)),
    ):
        reference = measure(f"{name}: per-step loop", cells, loop, repeats)
        ours = measure(f"{name}: ml.risk", cells, fast, repeats)
        pure = _scaled(measure(f"{name}: pure Python ({PYTHON_PATHS} paths, x{scale:.0f})", cells,
                               python, 1), scale, cells)
        rows += timing_rows([ours, reference, pure], reference, "loop")
        bests[name] = ours.best
    section.add(*table(TIMING_HEADER, rows), "")
    paths = simulate_merton(merton, n_paths=n_paths, n_steps=STEPS, seed=1)
    started = time.perf_counter()
    summary = summarise_paths(paths)
    elapsed = time.perf_counter() - started
    figures = summary.as_dict()
    section.add(f"  summarise_paths of the Merton matrix: {elapsed:.3f} s; 30-day horizon: "
                f"VaR95 {figures['var_95']:.1%}, VaR99 {figures['var_99']:.1%}, "
                f"CVaR95 {figures['cvar_95']:.1%}, CVaR99 {figures['cvar_99']:.1%}, "
                f"max drawdown median {figures['max_drawdown_q50']:.1%}, "
                f"q99 {figures['max_drawdown_q99']:.1%}")
    section.targets += [Target(f"Monte Carlo GBM {n_paths:,} x {STEPS}, best", bests["GBM"],
                               TARGET_SECONDS, "s", at_least=False, inclusive=True),
                        Target(f"Monte Carlo Merton {n_paths:,} x {STEPS}, best", bests["Merton"],
                               TARGET_SECONDS, "s", at_least=False, inclusive=True)]
    return section


if __name__ == "__main__":
    print(run().render())
