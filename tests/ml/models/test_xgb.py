"""Segment XGBoost: determinism, early stopping on the end of the window, nothing outside the
window, recency weights, importance and version metadata."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from ml.features.labels import LABEL_DOWN, LABEL_FLAT, LABEL_UP
from ml.features.segments import XGBoostParams
from ml.models.xgb import (
    fit_segment_model,
    histogram_bins,
    predict_proba,
    recency_weights,
    validation_mask,
)

FAST = XGBoostParams(n_estimators=25, learning_rate=0.3, max_depth=3, subsample=0.7, colsample_bytree=0.8)
N = 400


def _labels_from(signal: np.ndarray) -> np.ndarray:
    return np.where(signal > 0.5, LABEL_UP, np.where(signal < -0.5, LABEL_DOWN, LABEL_FLAT)).astype(np.int64)


def _data(n: int = N, seed: int = 3) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """Label driven by ``signal`` (plus noise); ``noise_a``/``noise_b`` are uninformative."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    x = pl.DataFrame({"signal": signal, "noise_a": rng.normal(size=n), "noise_b": rng.normal(size=n)})
    y = _labels_from(signal + rng.normal(scale=0.3, size=n))
    ts = np.datetime64("2024-01-01T00:00") + np.arange(n).astype("timedelta64[h]")
    return x, y, ts


def _trees(model) -> list[str]:  # type: ignore[no-untyped-def]
    return model.booster.get_dump(with_stats=True)


def test_probabilities_shape_and_skill() -> None:
    x, y, ts = _data()
    model = fit_segment_model(x.head(300), y[:300], ts[:300], params=FAST, seed=1)
    proba = predict_proba(model, x.tail(100))
    assert proba.shape == (100, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert (proba.argmax(axis=1) == y[300:]).mean() > 0.7  # the planted signal is learned
    assert model.feature_names == ("signal", "noise_a", "noise_b")
    assert max(model.feature_importance, key=model.feature_importance.__getitem__) == "signal"
    assert set(model.feature_importance) == set(model.feature_names)
    # Column order of the prediction frame does not matter; extra columns are ignored.
    shuffled = x.tail(100).select("noise_b", "signal", "noise_a").with_columns(extra=pl.lit(1.0))
    np.testing.assert_array_equal(predict_proba(model, shuffled), proba)


def test_same_seed_same_probabilities_other_seed_differs() -> None:
    x, y, ts = _data()
    first = fit_segment_model(x, y, ts, params=FAST, seed=7)
    again = fit_segment_model(x, y, ts, params=FAST, seed=7)
    other = fit_segment_model(x, y, ts, params=FAST, seed=8)
    np.testing.assert_array_equal(predict_proba(first, x), predict_proba(again, x))
    assert first.version == again.version
    assert first.best_iteration == again.best_iteration
    assert not np.array_equal(predict_proba(first, x), predict_proba(other, x))  # subsampling is seeded
    assert other.version != first.version


def test_validation_is_the_end_of_the_window() -> None:
    x, y, ts = _data()
    model = fit_segment_model(x, y, ts, params=FAST, seed=1, validation_fraction=0.2)
    n_validation = math.ceil(N * 0.2)
    assert model.validation_rows == n_validation
    assert model.train_rows == N - n_validation
    assert model.validation_start == ts[N - n_validation]
    # Changing the first rows' labels changes the data but not which rows are validation.
    y_changed = y.copy()
    y_changed[:50] = (y_changed[:50] + 1) % 3
    changed = fit_segment_model(x, y_changed, ts, params=FAST, seed=1, validation_fraction=0.2)
    assert changed.validation_start == model.validation_start
    assert changed.validation_rows == model.validation_rows
    assert changed.version == model.version  # version hashes the window, not the label values


def test_validation_rows_steer_only_early_stopping() -> None:
    """Trees are grown on training rows alone: scrambling the validation labels (with early
    stopping disabled in effect) leaves every tree identical; it only moves the best iteration."""
    x, y, ts = _data()
    kwargs = {"params": FAST, "seed": 2, "early_stopping_rounds": FAST.n_estimators}
    model = fit_segment_model(x, y, ts, **kwargs)
    y_scrambled = y.copy()
    y_scrambled[-80:] = np.random.default_rng(0).permutation(y_scrambled[-80:])
    y_scrambled[-80:] = (y_scrambled[-80:] + 1) % 3
    scrambled = fit_segment_model(x, y_scrambled, ts, **kwargs)
    assert _trees(model) == _trees(scrambled)
    assert scrambled.best_iteration < model.best_iteration  # nonsense validation stops early


def test_ties_in_time_never_straddle_the_split() -> None:
    ts = np.repeat(np.arange(10), 3)  # three symbols per timestamp
    mask = validation_mask(ts, 0.25)
    assert mask.sum() == 9  # ceil(30 * 0.25) = 8 rows, widened to the whole timestamp 7
    assert set(ts[mask]) == {7, 8, 9}
    assert not set(ts[~mask]) & set(ts[mask])


def test_rows_after_the_window_do_not_change_the_model() -> None:
    x, y, ts = _data()
    cut = 250
    base = fit_segment_model(x.head(cut), y[:cut], ts[:cut], params=FAST, seed=4, recency_half_life=100)
    rng = np.random.default_rng(99)
    x_future = x.with_columns(
        pl.when(pl.int_range(pl.len()) >= cut).then(pl.lit(rng.normal(size=N))).otherwise(pl.col(c)).alias(c)
        for c in x.columns
    )
    y_future = y.copy()
    y_future[cut:] = rng.integers(0, 3, size=N - cut)
    assert not x_future.tail(N - cut).equals(x.tail(N - cut))
    refit = fit_segment_model(x_future.head(cut), y_future[:cut], ts[:cut], params=FAST, seed=4,
                              recency_half_life=100)
    probe = x.head(cut)
    np.testing.assert_array_equal(predict_proba(base, probe), predict_proba(refit, probe))
    assert base.version == refit.version
    assert (base.window_start, base.window_end, base.rows) == (ts[0], ts[cut - 1], cut)


def test_version_tracks_window_and_parameters() -> None:
    x, y, ts = _data()
    model = fit_segment_model(x, y, ts, params=FAST, seed=1)
    shorter = fit_segment_model(x.head(350), y[:350], ts[:350], params=FAST, seed=1)
    deeper = fit_segment_model(x, y, ts, params=FAST.model_copy(update={"max_depth": 4}), seed=1)
    weighted = fit_segment_model(x, y, ts, params=FAST, seed=1, recency_half_life=50)
    later_end = ts.copy()
    later_end[-1] += np.timedelta64(5, "h")  # same rows and start, the window ends later
    extended = fit_segment_model(x, y, later_end, params=FAST, seed=1)
    assert len({model.version, shorter.version, deeper.version, weighted.version, extended.version}) == 5


def test_recency_weights_known_answer() -> None:
    np.testing.assert_allclose(recency_weights(3, 1.0), [0.25, 0.5, 1.0])
    np.testing.assert_allclose(recency_weights(5, 2.0)[[2, 4]], [0.5, 1.0])
    np.testing.assert_array_equal(recency_weights(4, None), np.ones(4))
    with pytest.raises(ValueError, match="positive"):
        recency_weights(3, 0.0)


def test_recency_weighting_follows_the_recent_relationship() -> None:
    """The signal's sign flips for the newest 30 % of rows: with a short half-life the model
    follows the new relationship on most rows, unweighted it mostly keeps the old one."""
    rng = np.random.default_rng(12)
    n, flip = 1000, 700
    signal = rng.normal(size=n)
    sign = np.where(np.arange(n) < flip, 1.0, -1.0)
    y = _labels_from(sign * signal)
    x = pl.DataFrame({"signal": signal})
    ts = np.arange(n)
    params = FAST.model_copy(update={"subsample": 1.0, "colsample_bytree": 1.0})
    probe = pl.DataFrame({"signal": np.linspace(-2.5, 2.5, 51)})
    new_rule = _labels_from(-probe["signal"].to_numpy())
    kwargs = {"params": params, "seed": 0, "validation_fraction": 0.1}
    recent = predict_proba(fit_segment_model(x, y, ts, recency_half_life=60, **kwargs), probe).argmax(axis=1)
    flat = predict_proba(fit_segment_model(x, y, ts, **kwargs), probe).argmax(axis=1)
    assert (recent == new_rule).mean() > 0.8
    assert (recent == new_rule).mean() > (flat == new_rule).mean() + 0.3


def test_bad_input_gets_a_clear_error() -> None:
    x, y, ts = _data(20)
    with pytest.raises(ValueError, match="non-decreasing"):
        fit_segment_model(x, y, ts[::-1], params=FAST, seed=0)
    with pytest.raises(ValueError, match="classes"):
        fit_segment_model(x, np.full(20, 3), ts, params=FAST, seed=0)
    with pytest.raises(ValueError, match="rows"):
        fit_segment_model(x, y[:10], ts, params=FAST, seed=0)
    with pytest.raises(ValueError, match="validation_fraction"):
        fit_segment_model(x, y, ts, params=FAST, seed=0, validation_fraction=1.0)
    with pytest.raises(ValueError, match="empty"):
        fit_segment_model(x, y, np.zeros(20, dtype=np.int64), params=FAST, seed=0)
    model = fit_segment_model(x, y, ts, params=FAST, seed=0)
    with pytest.raises(ValueError, match="missing"):
        predict_proba(model, x.drop("signal"))


def test_predictions_use_the_best_iteration() -> None:
    """Rounds after the best validation round are kept in the booster but not used."""
    x, y, ts = _data()
    y = y.copy()
    y[-80:] = (np.random.default_rng(0).permutation(y[-80:]) + 1) % 3  # validation punishes extra rounds
    model = fit_segment_model(x, y, ts, params=FAST, seed=2, early_stopping_rounds=FAST.n_estimators)
    assert model.best_iteration < FAST.n_estimators - 1
    import xgboost

    matrix = xgboost.DMatrix(x.to_numpy(), feature_names=list(x.columns))
    all_rounds = model.booster.predict(matrix)
    best_rounds = model.booster.predict(matrix, iteration_range=(0, model.best_iteration + 1))
    np.testing.assert_allclose(predict_proba(model, x), best_rounds, rtol=1e-6)
    assert not np.allclose(predict_proba(model, x), all_rounds)


def test_one_row_predictions_equal_the_batch_and_the_dmatrix_path() -> None:
    """The live path (a one-row frame, nulls and integer columns included) gives exactly the batch's
    probabilities, and both equal XGBoost's own DMatrix prediction of the same rows."""
    import xgboost

    x, y, ts = _data()
    model = fit_segment_model(x.head(300), y[:300], ts[:300], params=FAST, seed=4)
    rows = x.tail(60).with_columns(
        pl.when(pl.int_range(pl.len()) % 7 == 0).then(None).otherwise(pl.col("noise_a")).alias("noise_a"),
        (pl.col("noise_b") * 10).round().cast(pl.Int32).alias("noise_b"))
    batch = predict_proba(model, rows)
    one_by_one = np.vstack([predict_proba(model, rows.slice(i, 1)) for i in range(rows.height)])
    np.testing.assert_array_equal(one_by_one, batch)
    dmatrix = xgboost.DMatrix(rows.cast(pl.Float64).to_numpy(), feature_names=list(model.feature_names))
    expected = model.booster.predict(dmatrix, iteration_range=(0, model.best_iteration + 1))
    np.testing.assert_array_equal(batch, expected)
    assert np.isnan(rows.get_column("noise_a").cast(pl.Float64).to_numpy()).any()
    assert predict_proba(model, rows.head(0)).shape == (0, 3)


def test_histogram_bins_follow_the_training_rows() -> None:
    assert [histogram_bins(n) for n in (1, 100, 257, 1_600, 4_001, 10_033, 65_536, 10**7)] == [
        16, 16, 32, 64, 64, 128, 256, 256]
    x, y, ts = _data()
    model = fit_segment_model(x, y, ts, params=FAST, seed=1)
    assert model.params["max_bin"] == histogram_bins(model.train_rows) == 32
    import json

    trained_with = json.loads(model.booster.save_config())["learner"]["gradient_booster"]["tree_train_param"]
    assert int(trained_with["max_bin"]) == 32
