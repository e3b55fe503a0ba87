"""Segment training: the time split leaks nothing, calibration sees only its own slice, Platt
scaling helps a mis-calibrated model on later rows, climatology has a known answer, and the
no-look-ahead canary catches a leaky feature while passing the real pipeline."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from ml.features import FeatureConfig, build_features, make_labels
from ml.features.labels import LABEL_FLAT
from ml.features.segments import XGBoostParams
from ml.models.calibration import brier_score, fit_platt
from ml.models.canary import alter_after, no_look_ahead_canary
from ml.models.regime_features import RegimeConfig
from ml.models.segment_regimes import REGIME_FEATURES, with_regime_features
from ml.models.training import (
    KEY,
    TrainedSegment,
    TrainingConfig,
    climatology_brier,
    fit_outlier_filter,
    predict_latest,
    train_segment,
)
from ml.models.xgb import predict_proba
from tests.support.builders import make_candles

FEATURES = FeatureConfig(return_periods=(1, 3, 12), volatility_windows=(24,), higher_timeframes=("4h",),
                         beta_window=48)
PARAMS = XGBoostParams(n_estimators=30, learning_rate=0.1, max_depth=3)
CONFIG = TrainingConfig(regime=RegimeConfig(n_init=1, n_iter=30), early_stopping_rounds=10)
SYMBOLS = ("BTC/USDT", "ETH/USDT")
HORIZON = 4


def build(candles: pl.DataFrame) -> pl.DataFrame:
    return build_features(candles, config=FEATURES)


def training_frame(candles: pl.DataFrame, builder=build) -> pl.DataFrame:  # type: ignore[no-untyped-def]
    labels = make_labels(candles, horizon=HORIZON).select(*KEY, "label", "label_end_ts")
    return builder(candles).join(labels, on=KEY)


def train(candles: pl.DataFrame, frame: pl.DataFrame | None = None) -> TrainedSegment:
    frame = training_frame(candles) if frame is None else frame
    return train_segment(frame, candles, segment="majors", params=PARAMS, config=CONFIG, seed=5)


@pytest.fixture(scope="module")
def candles() -> pl.DataFrame:
    return make_candles(640, symbols=SYMBOLS, seed=11)


@pytest.fixture(scope="module")
def trained(candles: pl.DataFrame) -> TrainedSegment:
    return train(candles)


def test_slices_are_ordered_purged_and_embargoed(candles: pl.DataFrame, trained: TrainedSegment) -> None:
    split = trained.split
    assert split.embargo == timedelta(hours=HORIZON)  # default: the label horizon
    frame = training_frame(candles).sort(["ts", "exchange", "symbol"])
    fit, calibration, test = (frame.filter(mask) for mask in split.masks(frame))
    assert fit.get_column("label_end_ts").max() <= split.calibration_start
    assert calibration.get_column("ts").min() >= split.calibration_start + split.embargo
    assert calibration.get_column("label_end_ts").max() <= split.test_start
    assert test.get_column("ts").min() >= split.test_start + split.embargo
    assert trained.rows["test"] == test.height == trained.metrics.rows
    assert trained.rows["calibration"] == calibration.height
    assert trained.rows["fit"] + trained.rows["outliers_dropped"] == fit.height
    assert set(REGIME_FEATURES) <= set(trained.feature_names)
    assert trained.regime_anchor == ("sim", "BTC/USDT")


def test_altering_the_test_slice_changes_neither_model_nor_calibrator(candles: pl.DataFrame,
                                                                      trained: TrainedSegment) -> None:
    # Every candle from the test slice's start on is altered: features, labels and regimes there move.
    altered = alter_after(candles, trained.split.test_start - timedelta(hours=1), seed=3, scale=0.2)
    again = train(altered)
    assert again.model.booster.save_raw() == trained.model.booster.save_raw()
    assert again.calibrator == trained.calibrator
    assert again.temperature == trained.temperature
    np.testing.assert_array_equal(again.regime_model.transmat, trained.regime_model.transmat)  # type: ignore[union-attr]
    assert again.version == trained.version
    assert again.metrics != trained.metrics  # the test slice itself did change


def test_calibration_is_fitted_on_the_calibration_rows_only(candles: pl.DataFrame, trained: TrainedSegment) -> None:
    frame = training_frame(candles).sort(["ts", "exchange", "symbol"])
    _, calibration_mask, _ = trained.split.masks(frame)
    rows = with_regime_features(frame, candles, trained.regime_model).filter(calibration_mask)
    raw = predict_proba(trained.model, rows.select(trained.feature_names))
    assert fit_platt(raw, rows.get_column("label").cast(pl.Int64).to_numpy()) == trained.calibrator

    # Flipping the calibration rows' labels moves the calibrator, not the model.
    flipped = frame.with_columns(pl.when(calibration_mask).then((pl.col("label") + 1) % 3)
                                 .otherwise(pl.col("label")).cast(pl.Int8).alias("label"))
    again = train(candles, flipped)
    assert again.model.booster.save_raw() == trained.model.booster.save_raw()
    assert again.calibrator != trained.calibrator


def test_platt_improves_a_miscalibrated_model_on_later_rows() -> None:
    rng = np.random.default_rng(0)
    n = 6000
    logits = rng.normal(size=(n, 3)) * 1.2
    truth = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(3, p=p) for p in truth])
    # Overconfident and biased towards class 0: sharpened, then class 0 doubled.
    skewed = truth**3 * np.array([2.0, 1.0, 1.0])
    model = skewed / skewed.sum(axis=1, keepdims=True)
    held_out, later = slice(0, n // 2), slice(n // 2, n)
    platt = fit_platt(model[held_out], y[held_out])
    calibrated = platt.apply(model[later])
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0)
    assert brier_score(calibrated, y[later]) < brier_score(model[later], y[later]) - 0.02
    assert platt.held_out_rows == n // 2
    # A class absent from the held-out rows still gets finite parameters (Platt's target smoothing).
    absent = fit_platt(model[:200][y[:200] != 2], y[:200][y[:200] != 2])
    assert np.all(np.isfinite(absent.slopes)) and np.all(np.isfinite(absent.intercepts))


def test_climatology_known_answer(candles: pl.DataFrame, trained: TrainedSegment) -> None:
    train_labels = np.array([0, 1, 1, 2])  # frequencies 0.25, 0.5, 0.25
    assert climatology_brier(train_labels, np.array([LABEL_FLAT] * 3)) == pytest.approx(0.375)
    assert climatology_brier(train_labels, np.array([0, 2])) == pytest.approx(0.875)
    assert sum(trained.class_frequencies) == pytest.approx(1.0)
    metrics = trained.metrics
    assert 0.0 < metrics.brier_climatology < 2.0
    # Brier of a constant forecast f: sum_k f_k^2 + 1 - 2 f_y, averaged over the test labels y.
    frame = training_frame(candles).sort(["ts", "exchange", "symbol"])
    y_test = frame.filter(trained.split.masks(frame)[2]).get_column("label").to_numpy()
    f = np.array(trained.class_frequencies)
    assert metrics.brier_climatology == pytest.approx(float(np.mean(f @ f + 1.0 - 2.0 * f[y_test])))
    assert set(trained.feature_importance.get_column("feature")) == set(trained.feature_names)


def test_outliers_are_judged_by_the_fit_rows_robust_scale() -> None:
    rng = np.random.default_rng(1)
    matrix = rng.normal(size=(500, 3))
    matrix[7, 1] = 50.0  # 50 sigma
    matrix[9, 2] = np.nan  # missing values never make a row extreme
    rule = fit_outlier_filter(matrix, threshold=8.0)
    assert np.flatnonzero(rule.extreme(matrix)).tolist() == [7]
    assert rule.median == pytest.approx(np.nanmedian(matrix, axis=0))
    # A feature most rows share exactly (BTC's beta to itself beside ETH's) has MAD ~0: the mean
    # absolute deviation keeps its scale, so the other symbol's ordinary values are not extreme.
    beta = np.where(np.arange(500) % 5 < 3, 1.0 + rng.normal(0.0, 1e-9, 500), rng.normal(0.9, 0.1, 500))
    assert not fit_outlier_filter(beta[:, None], threshold=8.0).extreme(beta[:, None]).any()


def test_an_extreme_fit_row_is_dropped(candles: pl.DataFrame, trained: TrainedSegment) -> None:
    frame = training_frame(candles)
    first_fit_ts = trained.split.start + timedelta(days=5)
    spiked = frame.with_columns(pl.when((pl.col("ts") == first_fit_ts) & (pl.col("symbol") == "ETH/USDT"))
                                .then(pl.col("ret_1") * 1000).otherwise(pl.col("ret_1")).alias("ret_1"))
    again = train(candles, spiked)
    assert again.rows["outliers_dropped"] == trained.rows["outliers_dropped"] + 1


def test_predict_latest_gives_one_calibrated_row_per_symbol(candles: pl.DataFrame, trained: TrainedSegment) -> None:
    latest = predict_latest(trained, build(candles), candles)
    assert latest.get_column("symbol").to_list() == list(SYMBOLS)
    assert (latest.get_column("ts") == candles.get_column("ts").max()).all()
    np.testing.assert_allclose(latest.select("p_down", "p_flat", "p_up").to_numpy().sum(axis=1), 1.0)
    assert set(latest.get_column("model_version")) == {trained.version}
    assert set(latest.get_column("predicted")) <= {"down", "flat", "up"}


def test_canary_passes_on_the_real_pipeline(candles: pl.DataFrame, trained: TrainedSegment) -> None:
    cut = trained.split.calibration_start
    result = no_look_ahead_canary(trained, candles, cut=cut, build=build, seed=2)
    assert result.passed, result
    assert result.rows_compared > 0
    assert result.rows_after_cut_changed > 0  # the alteration reached the predictions after the cut


def test_canary_fails_on_a_leaky_feature(candles: pl.DataFrame) -> None:
    def leaky(source: pl.DataFrame) -> pl.DataFrame:
        future = (pl.col("close").shift(-HORIZON) / pl.col("close") - 1).over(["exchange", "symbol"])
        return build(source).join(source.select(*KEY, future.alias("future_return")), on=KEY)

    model = train(candles, training_frame(candles, leaky))
    assert model.feature_importance.row(0, named=True)["feature"] == "future_return"
    result = no_look_ahead_canary(model, candles, cut=model.split.calibration_start, build=leaky, seed=2)
    assert not result.passed
    assert result.rows_differing > 0
