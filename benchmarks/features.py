"""Feature frame for many symbols at once (polars) against a per-symbol pandas build.

The frame: 150 symbols x 6,000 1h candles (900,000 candles, ~8 months each; the seeded random
walks of :func:`benchmarks.indicators.candles`, the first symbol renamed BTC/USDT so the
cross-asset features have their reference), sorted by the key. Measured in the same run,
interleaved repeats, best and median:

* **polars**: :func:`ml.features.build.build_features` with the default
  :class:`~ml.features.config.FeatureConfig` on the long frame, all symbols in one call: 23
  feature columns (returns over 1/3/6/12/24 candles, log return, volume ratio, bar range,
  volatility over 24/72, the closed 4h and 1d candles' return and RSI, BTC's returns at the same
  candle, beta and correlation to BTC over 72 candles) and ``segment_id``;
* **pandas, per symbol**: :func:`benchmarks.features_pandas.build_features_pandas`, the same
  columns by the same definitions, a loop over the symbols (the pandas frame is built before its
  clock starts, so the reference is not charged for the conversion). The report compares the two
  outputs of the timed runs, every column, and prints the largest difference.

Peak memory: the growth of the resident set (VmHWM after resetting it) during one build in a fresh
process (input frame built, libraries imported, output kept), as in the indicators part.
Target: polars >= 10x faster than the pandas loop (best repeat against best repeat).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import polars as pl

from benchmarks.memory import peak_growth_mb, peak_mb_in_child, start_peak
from benchmarks.report import Section, Target, table

SYMBOLS, CANDLES = 150, 6_000
QUICK_SYMBOLS, QUICK_CANDLES = 20, 1_000
TARGET_RATIO = 10.0


def feature_candles(symbols: int, n: int) -> pl.DataFrame:
    """Seeded 1h candles of ``symbols`` pairs (the first one BTC/USDT), CANDLE_SCHEMA, sorted."""
    from benchmarks.indicators import candles

    frame = candles(symbols, n).with_columns(
        pl.when(pl.col("symbol") == "S0000/USDT").then(pl.lit("BTC/USDT")).otherwise(pl.col("symbol"))
        .alias("symbol"))
    return frame.sort("exchange", "symbol", "timeframe", "ts")


def _methods(frame: pl.DataFrame, pandas_frame: pd.DataFrame) -> dict[str, Callable[[], object]]:
    from benchmarks.features_pandas import build_features_pandas
    from ml.features.build import DEFAULT_FEATURES, DEFAULT_SEGMENTS, build_features

    return {
        "polars": lambda: build_features(frame),
        "pandas": lambda: build_features_pandas(pandas_frame, DEFAULT_FEATURES, DEFAULT_SEGMENTS),
    }


def largest_difference(polars_out: pl.DataFrame, pandas_out: pd.DataFrame) -> tuple[float, list[str]]:
    """(largest absolute difference of any float value, columns whose names, order, non-float
    values or missing-value masks differ)."""
    other = pl.from_pandas(pandas_out)
    if other.columns != polars_out.columns:
        return float("nan"), [f"columns {other.columns} != {polars_out.columns}"]
    worst, mismatched = 0.0, []
    for column in polars_out.columns:
        ours, theirs = polars_out.get_column(column), other.get_column(column)
        if not ours.dtype.is_float():
            if not ours.equals(theirs.cast(ours.dtype)):
                mismatched.append(column)
            continue
        missing = ours.is_null().to_numpy()
        if not np.array_equal(missing, theirs.fill_nan(None).is_null().to_numpy()):
            mismatched.append(column)
            continue
        if (~missing).any():
            worst = max(worst, float(np.max(np.abs(ours.to_numpy()[~missing] - theirs.to_numpy()[~missing]))))
    return worst, mismatched


def profile_stages(run: Callable[[], object]) -> dict[str, float]:
    """Cumulative seconds of each function of ``ml/features/build.py`` in one cProfile'd ``run``
    (found by name, so the breakdown never re-implements the build)."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.runcall(run)
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    return {name: cumulative for (filename, _, name), (_, _, _, cumulative, _) in stats.items()
            if filename.replace("\\", "/").endswith("ml/features/build.py")}


def _peak_child(method: str, symbols: int, n: int, conn: object) -> None:  # pragma: no cover
    frame = feature_candles(symbols, n)
    pandas_frame = frame.to_pandas() if method == "pandas" else pd.DataFrame()
    runs = _methods(frame, pandas_frame)
    start = start_peak()
    kept = runs[method]()
    conn.send(peak_growth_mb(start))  # type: ignore[attr-defined]
    del kept


def run(quick: bool = False) -> Section:
    """Time the polars build beside the per-symbol pandas build; return the section."""
    symbols, n = (QUICK_SYMBOLS, QUICK_CANDLES) if quick else (SYMBOLS, CANDLES)
    repeats = {"polars": 2 if quick else 3, "pandas": 1 if quick else 2}
    frame = feature_candles(symbols, n)
    pandas_frame = frame.to_pandas()
    methods = _methods(frame, pandas_frame)
    small = feature_candles(3, 500)
    _methods(small, small.to_pandas())["polars"]()  # warm-up: imports, first allocations
    _methods(small, small.to_pandas())["pandas"]()
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    outputs: dict[str, object] = {}
    for i in range(max(repeats.values())):  # interleaved, so background load hits both alike
        for name, method in methods.items():
            if i < repeats[name]:
                start = time.perf_counter()
                outputs[name] = method()
                seconds[name].append(time.perf_counter() - start)
    polars_out = outputs["polars"]
    assert isinstance(polars_out, pl.DataFrame)
    worst, mismatched = largest_difference(polars_out, outputs["pandas"])  # type: ignore[arg-type]
    best = {name: min(values) for name, values in seconds.items()}
    ratio = best["pandas"] / best["polars"]
    rows = frame.height
    section = Section(f"Features: {symbols} symbols x {n:,} 1h candles = {rows:,} candles, "
                      f"{polars_out.width - 4} columns")
    section.add(f"  best (median) of {repeats['polars']} polars and {repeats['pandas']} pandas runs, interleaved")
    peaks = {name: peak_mb_in_child(_peak_child, name, symbols, n) for name in methods}
    labels = {"polars": "build_features, long frame, all symbols at once",
              "pandas": "reference: pandas, loop over the symbols"}
    section.add(*table(
        ("", "best s", "median s", "M candles/s", "vs pandas", "peak MB"),
        [[labels[name], f"{best[name]:.3f}", f"{statistics.median(values):.3f}", f"{rows / best[name] / 1e6:.3f}",
          f"{best['pandas'] / best[name]:.2f}x", "n/a" if peaks[name] is None else f"{peaks[name]:,.0f}"]
         for name, values in seconds.items()]))
    agreement = ("outputs agree: same columns, same missing values, largest difference "
                 f"{worst:.1e}" if not mismatched else f"outputs DIFFER in {', '.join(mismatched)}")
    section.add(f"  {agreement}; input frame {frame.estimated_size('mb'):,.0f} MB, "
                f"output {polars_out.estimated_size('mb'):,.0f} MB")
    stages = profile_stages(methods["polars"])
    total = stages.get("build_features", float("nan"))
    named = {"_validate": "validation", "_candle_features": "candle features",
             "_higher_timeframes": "4h + 1d candles and as-of joins", "_cross_asset": "BTC join, beta, correlation"}
    parts = ", ".join(f"{label} {stages.get(name, 0.0):.2f} s" for name, label in named.items())
    rest = total - sum(stages.get(name, 0.0) for name in named)
    section.add(f"  where build_features spends its time (one cProfile'd call, {total:.2f} s): {parts}, "
                f"the rest (cast, sorts by the key, segment ids) {rest:.2f} s")
    section.targets.append(Target("features: polars / per-symbol pandas", ratio, TARGET_RATIO))
    return section


if __name__ == "__main__":
    print(run().render())
