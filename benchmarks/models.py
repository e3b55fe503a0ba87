"""Segment XGBoost: training the three segment models, and one calibrated prediction.

The data: 2,000 time-ordered rows x 40 features (seeded; 8 informative features, the rest noise,
3 % missing values), classes down / flat / up from a noisy linear signal (about a third each).
The three models use the seed's hyperparameters as ``config/segments.yaml`` gives them (read with
:func:`ml.features.segments.load_segments`): majors 0.03 / depth 8, alts 0.05 / depth 7, memes
0.08 / depth 6 with subsample and colsample 0.5; 200 trees each.

Training, measured in the same run (the project's twice, best and median; the others once,
interleaved):

* **project**: :func:`ml.models.xgb.fit_segment_model` as the training pipeline calls it
  (``hist`` trees, one thread, last 20 % of the window held out for early stopping), with
  ``early_stopping_rounds=200`` so that all 200 rounds are trained (the report checks the booster's
  round count); once more with the project's default early stopping (20 rounds), no target;
* **reference**: the same XGBoost, same parameters, rows, weights, seed and thread count, with
  ``tree_method="exact"`` (XGBoost's original greedy split search over sorted feature values, what
  a default XGBoost used on CPU before 2.0); the only difference is the split-finding algorithm.
  The seed specification's 30-60 s on CPU is printed as its own, unmeasured figure;
* **plain hist with XGBoost's default 256 bins** (no target): the same plain call with 256
  histogram bins instead of the project's rule (:func:`ml.models.xgb.histogram_bins`, 64 bins for
  1,600 rows). With 1,600 training rows most of the 256 bins are empty, yet each node of a depth-8
  tree scans all of them for every feature and class: this row shows what the rule saves.

Prediction: one row (a one-row polars frame, as the predictions asset holds it) through
:func:`ml.models.xgb.predict_proba` and the model's :class:`ml.models.calibration.TemperatureScaler`
(fitted on 500 later, held-out rows): the calibrated probabilities. Median over 2,000 calls after
a warm-up; the model predicts with the rounds up to its best iteration, as ``predict_proba`` does.
Reference in the same run: the booster's ``inplace_predict`` on the raw numpy row (no frame, no
DMatrix, no calibration: XGBoost's own floor). Also the parts of our path, each timed alone
(frame to numpy, DMatrix, DMatrix + predict, temperature). Seed: 5 ms.

Targets: 3 models <= 5 s in total (best repeat); one prediction <= 1 ms (median).
``--quick``: 500 rows, 50 trees, 300 prediction calls, one repeat (a smoke run).
Threads: the project trains and predicts on one thread; OMP_WAIT_POLICY=PASSIVE (set by the runner).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from benchmarks.report import Section, Target, table

if TYPE_CHECKING:
    from ml.features.segments import SegmentsConfig, XGBoostParams

ROWS, FEATURES, INFORMATIVE = 2_000, 40, 8
HELD_OUT = 500
TREES = 200
QUICK_ROWS, QUICK_TREES = 500, 50
PREDICTION_CALLS, QUICK_PREDICTION_CALLS = 2_000, 300
TARGET_TRAIN_SECONDS = 5.0
TARGET_PREDICT_SECONDS = 1e-3
SEED_TRAIN = "30-60 s on CPU (seed specification, not measured here)"
SEED_PREDICT_SECONDS = 5e-3
SEGMENTS_YAML = Path(__file__).resolve().parents[1] / "config" / "segments.yaml"


def dataset(rows: int, features: int = FEATURES, seed: int = 5) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """(features frame, classes 0/1/2, hourly ``datetime64`` timestamps) of ``rows`` rows."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features))
    weights = rng.normal(size=INFORMATIVE)
    signal = x[:, :INFORMATIVE] @ weights / np.sqrt(INFORMATIVE) + rng.normal(scale=1.0, size=rows)
    low, high = np.quantile(signal, [1 / 3, 2 / 3])
    y = np.where(signal > high, 2, np.where(signal < low, 0, 1)).astype(np.int64)
    x[rng.random(x.shape) < 0.03] = np.nan
    ts = np.datetime64("2024-01-01T00:00") + np.arange(rows).astype("timedelta64[h]")
    return pl.DataFrame(x, schema=[f"f{i:02d}" for i in range(features)]), y, ts


def segments() -> SegmentsConfig:
    from ml.features.segments import load_segments

    return load_segments(SEGMENTS_YAML)


def plain_xgboost(params: XGBoostParams, x: pl.DataFrame, y: np.ndarray, ts: np.ndarray, seed: int, *,
                  tree_method: str = "exact", max_bin: int | None = None) -> Any:
    """The project's training call in plain XGBoost with another ``tree_method`` (or histogram
    ``max_bin``): same split into training and early-stopping rows, same weights (all 1),
    parameters, seed and thread count, every round (no early stop)."""
    import xgboost

    from ml.models.xgb import validation_mask

    matrix = x.to_numpy()
    valid = validation_mask(ts, 0.2)
    booster_params = {
        "objective": "multi:softprob", "num_class": 3, "eval_metric": "mlogloss",
        "tree_method": tree_method, "nthread": 1, "seed": seed,
        "learning_rate": params.learning_rate, "max_depth": params.max_depth,
        "subsample": params.subsample, "colsample_bytree": params.colsample_bytree,
        **({} if max_bin is None else {"max_bin": max_bin}),
    }
    dtrain = xgboost.DMatrix(matrix[~valid], label=y[~valid], feature_names=list(x.columns))
    dvalid = xgboost.DMatrix(matrix[valid], label=y[valid], feature_names=list(x.columns))
    return xgboost.train(booster_params, dtrain, num_boost_round=params.n_estimators,
                         evals=[(dvalid, "validation")], early_stopping_rounds=params.n_estimators,
                         verbose_eval=False)


def _seconds(run: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, result


def _per_call(run: Callable[[], object], calls: int) -> list[float]:
    for _ in range(min(50, calls)):
        run()  # warm-up: first DMatrix, caches
    seconds = []
    for _ in range(calls):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    return seconds


def run(quick: bool = False) -> Section:
    """Train the three segment models beside the exact-method reference; time one prediction."""
    import xgboost

    from ml.models.calibration import fit_temperature
    from ml.models.xgb import fit_segment_model, predict_proba

    config = segments()
    n_rows, trees = (QUICK_ROWS, QUICK_TREES) if quick else (ROWS, TREES)
    calls = QUICK_PREDICTION_CALLS if quick else PREDICTION_CALLS
    x_all, y_all, ts_all = dataset(n_rows + HELD_OUT)
    x, y, ts = x_all.head(n_rows), y_all[:n_rows], ts_all[:n_rows]
    names = list(config.segments)
    fit_segment_model(x.head(200), y[:200], ts[:200], params=config.segments["alts"].xgboost.model_copy(
        update={"n_estimators": 2}), seed=0)  # warm-up: import xgboost, first allocations

    kinds = ("project", "exact", "early stop", "default bins")
    #: the targeted row twice (best of two), its reference and the informative rows once
    repeats = {kind: 2 if kind == "project" and not quick else 1 for kind in kinds}
    seconds: dict[tuple[str, str], list[float]] = {(k, n): [] for k in kinds for n in names}
    rounds: dict[tuple[str, str], int] = {}
    models: dict[str, Any] = {}
    for repeat in range(max(repeats.values())):  # interleaved: background load hits every method alike
        for index, name in enumerate(names):
            params = config.segments[name].xgboost.model_copy(update={"n_estimators": trees})
            runs: dict[str, Callable[[], Any]] = {
                "project": lambda p=params, i=index: fit_segment_model(
                    x, y, ts, params=p, seed=i, early_stopping_rounds=trees),
                "exact": lambda p=params, i=index: plain_xgboost(p, x, y, ts, seed=i),
                "early stop": lambda p=params, i=index: fit_segment_model(x, y, ts, params=p, seed=i),
                "default bins": lambda p=params, i=index: plain_xgboost(p, x, y, ts, seed=i, tree_method="hist",
                                                                      max_bin=256),
            }
            for kind, method in runs.items():
                if repeat >= repeats[kind]:
                    continue
                elapsed, result = _seconds(method)
                seconds[kind, name].append(elapsed)
                booster = result if kind in ("exact", "default bins") else result.booster  # type: ignore[attr-defined]
                rounds[kind, name] = int(booster.num_boosted_rounds())
                if kind == "project":
                    models[name] = result

    section = Section(f"Segment XGBoost: 3 models on {n_rows:,} rows x {FEATURES} features, {trees} trees")
    section.add(f"  hyperparameters from {SEGMENTS_YAML.relative_to(SEGMENTS_YAML.parents[1])}; "
                f"1 thread; best (median) of {repeats['project']} interleaved repeat(s), "
                "the other rows once")
    totals = {kind: (sum(min(seconds[kind, n]) for n in names),
                     sum(statistics.median(seconds[kind, n]) for n in names)) for kind in kinds}
    rows: list[list[object]] = []
    for kind in kinds:
        best, median = totals[kind]
        per_model = ", ".join(f"{n} {min(seconds[kind, n]):.2f} s ({rounds[kind, n]} rounds)" for n in names)
        rows.append([_LABELS[kind], f"{best:.2f}", f"{median:.2f}", f"{totals['exact'][0] / best:.2f}x", per_model])
    section.add(*table(("training", "best s", "median s", "vs exact", "per model, best"), rows))
    section.add(f"  seed specification: {SEED_TRAIN}")

    scalers = {n: fit_temperature(predict_proba(models[n], x_all.tail(HELD_OUT)), y_all[n_rows:]) for n in names}
    model, scaler = models["majors"], scalers["majors"]
    row = x_all.tail(1)
    raw = row.to_numpy()
    iterations = (0, model.best_iteration + 1)
    names_list = list(model.feature_names)
    per_call = {
        "ours": _per_call(lambda: scaler.apply(predict_proba(model, row)), calls),
        "floor": _per_call(lambda: model.booster.inplace_predict(raw, iteration_range=iterations), calls),
        "frame": _per_call(lambda: row.select(model.feature_names).cast(pl.Float64).to_numpy(), calls),
        "dmatrix": _per_call(lambda: xgboost.DMatrix(raw, feature_names=names_list), calls),
        "predict": _per_call(lambda: model.booster.predict(xgboost.DMatrix(raw, feature_names=names_list),
                                                           iteration_range=iterations), calls),
        "temperature": _per_call(lambda: scaler.apply(np.array([[0.2, 0.3, 0.5]])), calls),
    }
    medians = {name: statistics.median(values) for name, values in per_call.items()}
    ours_median, floor_median = medians["ours"], medians["floor"]
    section.add("", f"  one prediction (majors model: {iterations[1]} of {trees} rounds up to its best iteration, "
                f"x3 classes; temperature {scaler.temperature:.2f} fitted on {HELD_OUT} held-out rows), "
                f"{calls:,} calls each:")
    labels = {
        "ours": "predict_proba(1-row frame) + temperature",
        "floor": "reference: booster.inplace_predict(numpy row)",
        "frame": "  of which: 1-row frame -> numpy",
        "dmatrix": "  of which: xgboost.DMatrix of the row",
        "predict": "  of which: DMatrix + booster.predict",
        "temperature": "  of which: temperature scaling",
    }
    section.add(*table(
        ("", "median ms", "p95 ms", "vs reference"),
        [[label, f"{medians[name] * 1e3:.3f}", f"{np.percentile(per_call[name], 95) * 1e3:.3f}",
          f"{floor_median / medians[name]:.2f}x" if name in ("ours", "floor") else ""]
         for name, label in labels.items()]))
    section.add(f"  seed specification: {SEED_PREDICT_SECONDS * 1e3:.0f} ms per prediction "
                f"(ours {SEED_PREDICT_SECONDS / ours_median:.0f}x faster)")
    section.targets += [
        Target(f"XGBoost: 3 segment models, {n_rows:,} rows, {trees} trees, best", totals["project"][0], TARGET_TRAIN_SECONDS, "s",
               at_least=False, inclusive=True),
        Target("XGBoost: one calibrated prediction, median", ours_median * 1e3, TARGET_PREDICT_SECONDS * 1e3,
               "ms", at_least=False, inclusive=True),
    ]
    return section


_LABELS = {
    "project": "fit_segment_model, hist, all rounds",
    "exact": "reference: same, tree_method=exact",
    "early stop": "fit_segment_model, default early stop (20)",
    "default bins": "plain hist, XGBoost's default 256 bins",
}


if __name__ == "__main__":
    print(run().render())
