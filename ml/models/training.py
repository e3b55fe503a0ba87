"""Training one segment's classifier on a bounded window, honestly, and predicting with it.

The window (all rows of the segment's symbols, one timeframe, oldest first) is cut by time into
three slices, each later one separated from the one before by a purge and an embargo:

``fit | embargo | calibration | embargo | test``

* **fit** (``ts < calibration_start``): trains the regime model, the outlier filter and XGBoost
  (whose early stopping uses the last ``validation_fraction`` of these rows by time). Rows whose
  label becomes known after ``calibration_start`` are purged (:func:`ml.features.splits.training_mask`).
* **calibration** (``calibration_start + embargo <= ts < test_start``, labels known by
  ``test_start``): fits the Platt (and, for comparison, temperature) calibrator only.
* **test** (``ts >= test_start + embargo``): touched by nothing above; every reported metric is
  computed here. Changing any candle of the test slice changes neither the model nor the
  calibrator (``tests/ml/models/test_training.py`` proves it).

The embargo defaults to the label horizon (read from the rows: ``label_end_ts - ts`` is
``(horizon + 1)`` candles), so serially correlated rows right after a slice boundary are skipped.

**Outliers** (FreqAI's spirit, simpler): a robust z-score per feature, ``(x - median) / scale``
with ``scale = max(1.4826 MAD, 1.2533 mean |x - median|)`` (both estimate the standard deviation
of a normal sample; the second keeps the scale honest when more than half the rows share one
value, as BTC's beta to itself does in a segment with BTC), median and scale fitted on the fit
rows only; a fit row with any ``|z|`` above
``outlier_z`` is dropped from training. Calibration and test rows are never dropped (a live model
must predict them too). Features with MAD 0 and missing values are ignored by the rule, and so
are the regime features (bounded probabilities and a class id, mostly near 0 or 1: their MAD is
tiny and any regime change would look extreme).

**Regimes as features**: the segment's HMM (:mod:`ml.models.regimes`) is fitted on the *anchor*
series' fit-slice candles only: the (exchange, symbol) with the most fit-slice candles, ties to
the first in sort order. Every series then gets its own forward-filtered probabilities ``p_*``
and ``regime_id`` (index in :data:`~ml.models.regime_features.REGIMES`) from its own candles up
to each row, so they are causal features like the rest.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from ml.features.labels import LABEL_NAMES
from ml.features.segments import XGBoostParams
from ml.features.splits import Interval, training_mask
from ml.marketdata.timeframes import timeframe_ms
from ml.models.calibration import (
    PlattScaler,
    TemperatureScaler,
    brier_score,
    expected_calibration_error,
    fit_platt,
    fit_temperature,
    log_loss,
    reliability_table,
)
from ml.models.regime_features import RegimeConfig
from ml.models.regimes import RegimeModel, fit_regime_model
from ml.models.segment_regimes import REGIME_FEATURES, regime_anchor, with_regime_features
from ml.models.xgb import SegmentModel, feature_matrix, fit_segment_model, predict_proba

KEY = ["exchange", "symbol", "timeframe", "ts"]
SERIES = ["exchange", "symbol"]
#: Columns of a training frame that are not features (the key, labels, raw candle values).
NON_FEATURES = frozenset({*KEY, "segment_id", "forward_return", "threshold", "label", "label_end_ts",
                          "open", "high", "low", "close", "volume"})
PROBABILITY_OUTPUT = ("p_down", "p_flat", "p_up")
#: 1.4826 MAD and 1.2533 mean absolute deviation estimate the standard deviation of a normal sample.
MAD_TO_SIGMA = 1.4826
MEAN_AD_TO_SIGMA = 1.2533


class TrainingConfig(BaseModel):
    """How :func:`train_segment` splits, filters and fits (frozen; its hash enters the version)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    calibration_fraction: float = Field(0.15, gt=0.0, lt=0.5, description="share of the window's times")
    test_fraction: float = Field(0.15, gt=0.0, lt=0.5, description="share of the window's times, at its end")
    embargo_candles: int | None = Field(None, ge=0, description="None: the label horizon")
    validation_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="end of the fit rows for early stopping")
    early_stopping_rounds: PositiveInt = 20
    recency_half_life_days: float | None = Field(30.0, gt=0.0, description="None: equal weights")
    outlier_z: float | None = Field(10.0, gt=0.0, description="robust z-score beyond which a fit row is dropped")
    regime: RegimeConfig | None = RegimeConfig()
    n_estimators: PositiveInt | None = Field(None, description="overrides the segment's tree count")
    min_fit_rows: PositiveInt = 100

    @property
    def version(self) -> str:
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


DEFAULT_TRAINING = TrainingConfig()


@dataclass(frozen=True)
class TimeSplit:
    """Slice bounds (UTC candle open times); see the module docstring."""

    start: datetime
    calibration_start: datetime
    test_start: datetime
    end: datetime  # last ts of the window (inclusive)
    embargo: timedelta

    def masks(self, frame: pl.DataFrame) -> tuple[pl.Series, pl.Series, pl.Series]:
        """(fit, calibration, test) boolean masks over ``frame`` (``ts``, ``label``, ``label_end_ts``)."""
        labelled = frame.get_column("label").is_not_null()
        beyond = Interval(start=self.calibration_start, end=max(self.end, self.test_start) + timedelta(days=1))
        fit = training_mask(frame, Interval(start=self.start, end=self.calibration_start),
                            purge_against=[beyond]) & labelled
        ts, label_end = pl.col("ts"), pl.col("label_end_ts")
        calibration = frame.select(
            (ts >= self.calibration_start + self.embargo) & (ts < self.test_start) & (label_end <= self.test_start)
        ).to_series() & labelled
        test = frame.select(ts >= self.test_start + self.embargo).to_series() & labelled
        return fit, calibration, test


def time_split(ts: pl.Series, config: TrainingConfig, embargo: timedelta) -> TimeSplit:
    """Bounds at the ``1 - test - calibration`` and ``1 - test`` quantiles of the distinct times."""
    times = ts.unique().sort()
    n = times.len()
    if n < 10:
        raise ValueError(f"a window of {n} distinct times is too short to split into fit, calibration and test")
    calibration_at = math.floor(n * (1.0 - config.test_fraction - config.calibration_fraction))
    test_at = math.floor(n * (1.0 - config.test_fraction))
    return TimeSplit(start=times[0], calibration_start=times[calibration_at], test_start=times[test_at],
                     end=times[-1], embargo=embargo)


@dataclass(frozen=True)
class OutlierFilter:
    """Robust z-score rule fitted on the fit rows (module docstring)."""

    median: np.ndarray
    scale: np.ndarray
    threshold: float

    def extreme(self, matrix: np.ndarray) -> np.ndarray:
        """True for rows with any feature's ``|z|`` above the threshold (NaN and MAD-0 features ignored)."""
        usable = self.scale > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            z = np.abs(matrix[:, usable] - self.median[usable]) / self.scale[usable]
        return np.nan_to_num(z, nan=0.0).max(axis=1, initial=0.0) > self.threshold


def fit_outlier_filter(matrix: np.ndarray, threshold: float) -> OutlierFilter:
    """Per-feature median and robust scale of ``matrix`` (module docstring; NaN ignored, all-NaN
    columns get scale 0)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        median = np.nanmedian(matrix, axis=0)
        deviation = np.abs(matrix - median)
        scale = np.maximum(MAD_TO_SIGMA * np.nanmedian(deviation, axis=0),
                           MEAN_AD_TO_SIGMA * np.nanmean(deviation, axis=0))
    return OutlierFilter(median=np.nan_to_num(median), scale=np.nan_to_num(scale), threshold=threshold)


@dataclass(frozen=True)
class TestMetrics:
    """Figures on the untouched test slice (Brier in [0, 2], ECE in [0, 1], log loss in nats)."""

    rows: int
    brier_raw: float
    brier_calibrated: float
    brier_temperature: float
    brier_climatology: float
    ece_raw: float
    ece_calibrated: float
    log_loss_raw: float
    log_loss_calibrated: float
    accuracy_raw: float
    accuracy_calibrated: float

    def as_dict(self) -> dict[str, float | int]:
        return {name: int(self.rows) if name == "rows" else float(getattr(self, name))
                for name in self.__dataclass_fields__}

    def as_frame(self) -> pl.DataFrame:
        return pl.DataFrame({"metric": list(self.__dataclass_fields__),
                             "value": [float(v) for v in self.as_dict().values()]})


@dataclass(frozen=True)
class TrainedSegment:
    """One segment's trained model, its calibrator and its honest test figures.

    ``version`` hashes the XGBoost model's version (its parameters, features and fit window), the
    training config and the whole data window, so a new window is a new version.
    """

    segment: str
    timeframe: str
    model: SegmentModel
    calibrator: PlattScaler
    temperature: TemperatureScaler
    regime_model: RegimeModel | None
    regime_anchor: tuple[str, str] | None
    feature_names: tuple[str, ...]
    split: TimeSplit
    config: TrainingConfig
    metrics: TestMetrics
    reliability_raw: pl.DataFrame
    reliability_calibrated: pl.DataFrame
    feature_importance: pl.DataFrame
    class_frequencies: tuple[float, ...]
    rows: dict[str, int]
    symbols: tuple[str, ...]
    version: str

    @property
    def window_start(self) -> datetime:
        return self.split.start

    @property
    def window_end(self) -> datetime:
        return self.split.end


def climatology_brier(train_labels: np.ndarray, test_labels: np.ndarray, n_classes: int = 3) -> float:
    """Brier score on ``test_labels`` of always forecasting the training class frequencies."""
    frequencies = np.bincount(np.asarray(train_labels), minlength=n_classes) / len(train_labels)
    return brier_score(np.tile(frequencies, (len(test_labels), 1)), np.asarray(test_labels))


def feature_columns(frame: pl.DataFrame) -> list[str]:
    """The model inputs of a training or prediction frame: every column but the key and labels."""
    return [c for c in frame.columns if c not in NON_FEATURES and c not in REGIME_FEATURES]


def _matrix(frame: pl.DataFrame, names: tuple[str, ...]) -> np.ndarray:
    return feature_matrix(frame, names)


def _label_horizon(frame: pl.DataFrame, step: timedelta) -> int:
    span = frame.select((pl.col("label_end_ts") - pl.col("ts")).max()).item()
    return max(int(span / step) - 1, 0) if span is not None else 0


def _validated(frame: pl.DataFrame, candles: pl.DataFrame) -> tuple[pl.DataFrame, str]:
    missing = [c for c in (*KEY, "label", "label_end_ts") if c not in frame.columns]
    if missing:
        raise ValueError(f"training frame lacks columns {missing}")
    missing = [c for c in (*KEY, "close", "volume") if c not in candles.columns]
    if missing:
        raise ValueError(f"candles lack columns {missing}")
    timeframes = frame.get_column("timeframe").unique().to_list()
    if len(timeframes) != 1:
        raise ValueError(f"train on one timeframe at a time, got {sorted(timeframes)}")
    if frame.select(KEY).is_duplicated().any():
        raise ValueError("training frame holds duplicate keys")
    return frame.sort(["ts", "exchange", "symbol"]), str(timeframes[0])


def train_segment(
    frame: pl.DataFrame,
    candles: pl.DataFrame,
    *,
    segment: str,
    params: XGBoostParams,
    config: TrainingConfig = DEFAULT_TRAINING,
    seed: int,
) -> TrainedSegment:
    """Train, calibrate and test one segment's model on one window.

    Parameters
    ----------
    frame
        Features (:func:`ml.features.build_features`) joined on the key with labels
        (:func:`ml.features.make_labels`: ``label``, ``label_end_ts``) of the segment's symbols over
        the window, one timeframe. Unlabelled rows are kept out of every slice.
    candles
        The same series' candles (``close``, ``volume``) over the window, for the regime features.
    params
        The segment's XGBoost hyperparameters (``config.n_estimators`` may override the tree count).
    seed
        Seeds XGBoost's subsampling and the HMM's initialisation; same inputs, same model.

    Raises
    ------
    ValueError
        Missing columns, several timeframes, duplicate keys, or too few rows in a slice.
    """
    frame, timeframe = _validated(frame, candles)
    step = timedelta(milliseconds=timeframe_ms(timeframe))
    embargo_candles = config.embargo_candles if config.embargo_candles is not None else _label_horizon(frame, step)
    split = time_split(frame.get_column("ts"), config, embargo_candles * step)
    fit_mask, calibration_mask, test_mask = split.masks(frame)

    regime_model, anchor = None, None
    if config.regime is not None:
        anchor = regime_anchor(candles, split.calibration_start)
        anchor_candles = candles.filter((pl.col("exchange") == anchor[0]) & (pl.col("symbol") == anchor[1])
                                        & (pl.col("ts") < split.calibration_start)).sort("ts")
        regime_model = fit_regime_model(anchor_candles, config.regime, seed=seed)
        frame = with_regime_features(frame, candles, regime_model)
    names = tuple(feature_columns(frame) + ([*REGIME_FEATURES] if regime_model is not None else []))

    fit_rows = frame.filter(fit_mask)
    fit_matrix = _matrix(fit_rows, names)
    outliers = np.zeros(fit_rows.height, dtype=bool)
    if config.outlier_z is not None and fit_rows.height:
        screened = np.array([name not in REGIME_FEATURES for name in names])
        outliers = fit_outlier_filter(fit_matrix[:, screened], config.outlier_z).extreme(fit_matrix[:, screened])
    kept = fit_rows.filter(pl.Series(~outliers))
    calibration_rows, test_rows = frame.filter(calibration_mask), frame.filter(test_mask)
    for name, rows, least in (("fit", kept, config.min_fit_rows), ("calibration", calibration_rows, 1),
                              ("test", test_rows, 1)):
        if rows.height < least:
            raise ValueError(f"segment {segment}: {rows.height} {name} rows (need at least {least}); "
                             "widen the window or shorten the horizon")

    y_fit = kept.get_column("label").cast(pl.Int64).to_numpy()
    series = max(kept.select(SERIES).n_unique(), 1)
    half_life = (config.recency_half_life_days * timedelta(days=1) / step * series
                 if config.recency_half_life_days is not None else None)
    xgb_params = params if config.n_estimators is None else params.model_copy(update={"n_estimators": config.n_estimators})
    model = fit_segment_model(
        _matrix(kept, names), y_fit, kept.get_column("ts").to_numpy(), params=xgb_params, seed=seed,
        recency_half_life=half_life, validation_fraction=config.validation_fraction,
        early_stopping_rounds=config.early_stopping_rounds, feature_names=names)

    y_calibration = calibration_rows.get_column("label").cast(pl.Int64).to_numpy()
    raw_calibration = predict_proba(model, _matrix(calibration_rows, names))
    platt, temperature = fit_platt(raw_calibration, y_calibration), fit_temperature(raw_calibration, y_calibration)

    y_test = test_rows.get_column("label").cast(pl.Int64).to_numpy()
    raw = predict_proba(model, _matrix(test_rows, names))
    calibrated = platt.apply(raw)
    metrics = TestMetrics(
        rows=len(y_test), brier_raw=brier_score(raw, y_test), brier_calibrated=brier_score(calibrated, y_test),
        brier_temperature=brier_score(temperature.apply(raw), y_test),
        brier_climatology=climatology_brier(y_fit, y_test),
        ece_raw=expected_calibration_error(raw, y_test), ece_calibrated=expected_calibration_error(calibrated, y_test),
        log_loss_raw=log_loss(raw, y_test), log_loss_calibrated=log_loss(calibrated, y_test),
        accuracy_raw=float((raw.argmax(axis=1) == y_test).mean()),
        accuracy_calibrated=float((calibrated.argmax(axis=1) == y_test).mean()),
    )
    importance = pl.DataFrame({"feature": list(model.feature_importance),
                               "gain": list(model.feature_importance.values())}).sort(["gain", "feature"],
                                                                                       descending=[True, False])
    frequencies = np.bincount(y_fit, minlength=len(LABEL_NAMES)) / len(y_fit)
    identity = {"model": model.version, "config": config.version, "segment": segment, "timeframe": timeframe,
                "window": [str(split.start), str(split.end)], "symbols": sorted(frame.get_column("symbol").unique())}
    return TrainedSegment(
        segment=segment, timeframe=timeframe, model=model, calibrator=platt, temperature=temperature,
        regime_model=regime_model, regime_anchor=anchor, feature_names=names, split=split, config=config,
        metrics=metrics, reliability_raw=reliability_table(raw, y_test),
        reliability_calibrated=reliability_table(calibrated, y_test), feature_importance=importance,
        class_frequencies=tuple(float(f) for f in frequencies),
        rows={"window": frame.height, "fit": kept.height, "outliers_dropped": int(outliers.sum()),
              "calibration": calibration_rows.height, "test": test_rows.height},
        symbols=tuple(sorted(frame.get_column("symbol").unique().to_list())),
        version=hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16],
    )


def predict_rows(trained: TrainedSegment, frame: pl.DataFrame, candles: pl.DataFrame) -> pl.DataFrame:
    """Calibrated probabilities of every row of ``frame`` (features of the model's symbols).

    Returns the key, ``p_down``, ``p_flat``, ``p_up`` (rows sum to 1) and ``model_version``, sorted
    by the key. ``candles`` must cover the rows' series from the window's start (regime features).
    """
    frame = with_regime_features(frame, candles, trained.regime_model).sort(KEY)
    present = set(frame.columns)
    missing = [c for c in trained.feature_names if c not in present]
    if missing:
        raise ValueError(f"features missing for prediction: {missing}")
    proba = trained.calibrator.apply(predict_proba(trained.model, _matrix(frame, trained.feature_names)))
    return frame.select(KEY).with_columns(
        *[pl.Series(name, proba[:, i]) for i, name in enumerate(PROBABILITY_OUTPUT)],
        pl.lit(trained.version).alias("model_version"))


def predict_latest(trained: TrainedSegment, frame: pl.DataFrame, candles: pl.DataFrame) -> pl.DataFrame:
    """The latest row of each (exchange, symbol) of ``frame``: :func:`predict_rows` plus
    ``predicted`` (the most probable class name) and ``segment``."""
    latest = frame.sort(KEY).group_by(SERIES, maintain_order=True).tail(1)
    rows = predict_rows(trained, latest, candles)
    names = pl.concat_list(PROBABILITY_OUTPUT).list.arg_max().replace_strict(
        {i: LABEL_NAMES[i] for i in range(len(LABEL_NAMES))}, return_dtype=pl.String)
    return rows.with_columns(names.alias("predicted"), pl.lit(trained.segment).alias("segment")).sort(SERIES)
