"""Model artifacts: lossless and deterministic round trips for every model kind, no pickle, and
clear errors for damaged, foreign or future-format payloads."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import pytest

from ml.features.segments import XGBoostParams
from ml.models.artifacts import (
    ArtifactFormatError,
    artifact_kind,
    dump_regime_model,
    dump_segment_model,
    dump_temperature_scaler,
    load_regime_model,
    load_segment_calibration,
    load_segment_model,
    load_temperature_scaler,
)
from ml.models.calibration import TemperatureScaler, fit_temperature
from ml.models.regime_features import RegimeConfig
from ml.models.regimes import RegimeModel, fit_regime_model, infer_regimes
from ml.models.xgb import SegmentModel, fit_segment_model, predict_proba
from tests.ml.models.planted import planted_market
from tests.support.fixtures import PROJECT_ROOT

FAST = XGBoostParams(n_estimators=30, learning_rate=0.3, max_depth=4, subsample=0.7, colsample_bytree=0.8)
N = 500
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _data(seed: int = 3) -> tuple[pl.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=N)
    x = pl.DataFrame({"signal": signal, "noise": rng.normal(size=N),
                      "gappy": np.where(rng.random(N) < 0.2, np.nan, rng.normal(size=N))})
    noisy = signal + rng.normal(scale=0.5, size=N)
    y = np.where(noisy > 0.5, 2, np.where(noisy < -0.5, 0, 1)).astype(np.int64)
    return x, y


TIMESTAMPS: dict[str, Any] = {
    "datetime64": np.datetime64("2024-01-01T00:00", "ms") + np.arange(N).astype("timedelta64[h]"),
    "aware datetime": np.array([T0 + timedelta(hours=i) for i in range(N)], dtype=object),
    "int": np.arange(N, dtype=np.int64) * 3_600_000 + 1_704_067_200_000,
}


@pytest.fixture(scope="module")
def segment_model() -> SegmentModel:
    x, y = _data()
    return fit_segment_model(x, y, TIMESTAMPS["datetime64"], params=FAST, seed=11, recency_half_life=200.0)


@pytest.fixture(scope="module")
def regime() -> tuple[pl.DataFrame, RegimeModel]:
    candles, _ = planted_market(1100, seed=7)
    return candles, fit_regime_model(candles.head(800), RegimeConfig(n_iter=20, n_init=1), seed=1)


def _assert_same_segment_model(loaded: SegmentModel, model: SegmentModel) -> None:
    for name in ("feature_names", "best_iteration", "version", "rows", "train_rows", "validation_rows", "params"):
        assert getattr(loaded, name) == getattr(model, name), name
    assert dict(loaded.feature_importance) == dict(model.feature_importance)
    for name in ("window_start", "window_end", "validation_start"):
        value, original = getattr(loaded, name), getattr(model, name)
        assert value == original, name
        if isinstance(original, (np.datetime64, datetime)):
            assert type(value) is type(original), name
        if isinstance(original, np.datetime64):
            assert value.dtype == original.dtype, name


@pytest.mark.parametrize("timestamps", list(TIMESTAMPS))
def test_a_segment_model_round_trip_predicts_identically(timestamps: str) -> None:
    x, y = _data()
    model = fit_segment_model(x, y, TIMESTAMPS[timestamps], params=FAST, seed=11)
    loaded = load_segment_model(dump_segment_model(model))
    _assert_same_segment_model(loaded, model)
    fresh, _ = _data(seed=99)  # rows neither model has seen, NaN included
    np.testing.assert_array_equal(predict_proba(loaded, fresh), predict_proba(model, fresh))
    np.testing.assert_array_equal(predict_proba(loaded, fresh.to_numpy()), predict_proba(model, fresh.to_numpy()))


def test_segment_artifacts_are_deterministic(segment_model: SegmentModel) -> None:
    payload = dump_segment_model(segment_model)
    assert dump_segment_model(segment_model) == payload
    assert dump_segment_model(load_segment_model(payload)) == payload  # a reload re-serialises identically
    x, y = _data()
    refit = fit_segment_model(x, y, TIMESTAMPS["datetime64"], params=FAST, seed=11, recency_half_life=200.0)
    assert dump_segment_model(refit) == payload  # retraining the same version stores the same bytes
    other_seed = fit_segment_model(x, y, TIMESTAMPS["datetime64"], params=FAST, seed=12, recency_half_life=200.0)
    assert dump_segment_model(other_seed) != payload


def test_a_segment_model_carries_its_calibration(segment_model: SegmentModel) -> None:
    x, y = _data(seed=5)
    scaler = fit_temperature(predict_proba(segment_model, x), y)
    payload = dump_segment_model(segment_model, calibration=scaler)
    assert load_segment_calibration(payload) == scaler
    assert load_segment_calibration(dump_segment_model(segment_model)) is None
    loaded = load_segment_model(payload)
    np.testing.assert_array_equal(scaler.apply(predict_proba(loaded, x)), scaler.apply(predict_proba(segment_model, x)))


def test_artifacts_hold_json_and_the_native_booster_only(segment_model: SegmentModel) -> None:
    archive = zipfile.ZipFile(io.BytesIO(dump_segment_model(segment_model)))
    assert archive.namelist() == ["manifest.json", "booster.ubj"]
    manifest = json.loads(archive.read("manifest.json"))
    assert (manifest["format"], manifest["format_version"], manifest["kind"]) == (
        "signalworks-model-artifact", 1, "xgb_segment_model")
    assert manifest["model"]["feature_names"] == ["signal", "noise", "gappy"]
    assert b"pickle" not in archive.read("booster.ubj") and not any(n.endswith((".pkl", ".pickle", ".joblib"))
                                                                   for n in archive.namelist())


def test_a_regime_model_round_trip_filters_identically(regime: tuple[pl.DataFrame, RegimeModel]) -> None:
    candles, model = regime
    payload = dump_regime_model(model)
    loaded = load_regime_model(payload)
    assert loaded.config == model.config
    assert (loaded.fitted_order, loaded.log_likelihood, loaded.n_train_rows) == (
        model.fitted_order, model.log_likelihood, model.n_train_rows)
    for name in ("feature_mean", "feature_std", "startprob", "transmat", "means", "covars"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name), err_msg=name)
    assert infer_regimes(loaded, candles).equals(infer_regimes(model, candles))  # past the training window too
    assert dump_regime_model(loaded) == payload
    assert artifact_kind(payload) == "regime_model"


def test_a_temperature_scaler_round_trips() -> None:
    scaler = TemperatureScaler(temperature=1.7320508075688772, held_out_rows=321)
    payload = dump_temperature_scaler(scaler)
    assert load_temperature_scaler(payload) == scaler
    assert dump_temperature_scaler(load_temperature_scaler(payload)) == payload


def _rewrite_manifest(payload: bytes, change: Any) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(payload))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            if name == "manifest.json":
                manifest = json.loads(data)
                change(manifest)
                data = json.dumps(manifest).encode()
            target.writestr(name, data)
    return buffer.getvalue()


def test_an_unknown_format_version_is_refused(segment_model: SegmentModel) -> None:
    future = _rewrite_manifest(dump_segment_model(segment_model), lambda m: m.update(format_version=2))
    with pytest.raises(ArtifactFormatError, match="format version 2 is not supported"):
        load_segment_model(future)
    unchanged = _rewrite_manifest(dump_segment_model(segment_model), lambda m: None)
    assert load_segment_model(unchanged).version == segment_model.version  # the rewrite itself is harmless


def test_damaged_payloads_are_refused_clearly(segment_model: SegmentModel) -> None:
    payload = dump_segment_model(segment_model)
    flipped = bytearray(payload)
    flipped[len(payload) // 2] ^= 0xFF  # inside the compressed booster
    cases = {"bit flip": bytes(flipped), "truncated": payload[: len(payload) // 2], "not a zip": b"{}",
             "empty": b""}
    for case, damaged in cases.items():
        with pytest.raises(ArtifactFormatError, match="artifact"):
            load_segment_model(damaged)
        assert case  # (names the case in a failure's traceback)


def test_foreign_or_incomplete_manifests_are_refused(segment_model: SegmentModel,
                                                     regime: tuple[pl.DataFrame, RegimeModel]) -> None:
    with pytest.raises(ArtifactFormatError, match="holds a 'regime_model', not a 'xgb_segment_model'"):
        load_segment_model(dump_regime_model(regime[1]))
    with pytest.raises(ArtifactFormatError, match="not a 'temperature_scaler'"):
        load_temperature_scaler(dump_segment_model(segment_model))
    foreign = _rewrite_manifest(dump_segment_model(segment_model), lambda m: m.update(format="other"))
    with pytest.raises(ArtifactFormatError, match="not a model artifact"):
        load_segment_model(foreign)
    incomplete = _rewrite_manifest(dump_segment_model(segment_model), lambda m: m["model"].pop("best_iteration"))
    with pytest.raises(ArtifactFormatError, match="lacks the field 'best_iteration'"):
        load_segment_model(incomplete)
    bad_shape = _rewrite_manifest(dump_regime_model(regime[1]), lambda m: m["model"].update(transmat=[[1.0]]))
    with pytest.raises(ArtifactFormatError, match="'transmat' has shape"):
        load_regime_model(bad_shape)


def test_window_bounds_of_unknown_types_are_refused_at_dump(segment_model: SegmentModel) -> None:
    from dataclasses import replace

    with pytest.raises(TypeError, match="window bound of type"):
        dump_segment_model(replace(segment_model, window_start=object()))


def test_importing_artifacts_imports_no_heavy_library() -> None:
    code = ("import sys, ml.models.artifacts; heavy = {'xgboost', 'hmmlearn', 'sklearn'} & set(sys.modules); "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PROJECT_ROOT)
