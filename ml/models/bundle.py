"""A trained segment (:class:`~ml.models.training.TrainedSegment`) to bytes and back, without pickle.

The bundle is a zip archive (fixed member order and timestamps, so the same model gives the same
bytes and re-storing it in the immutable model store is a no-op) holding:

* ``bundle.json``: the segment, version, feature names, the Platt parameters, the time split,
  the training config, the test metrics, reliability tables, feature importance and row counts;
* ``segment_model.zip``: the XGBoost model with its temperature scaler, as
  :func:`ml.models.artifacts.dump_segment_model` writes it;
* ``regime_model.zip``: the regime model (:func:`ml.models.artifacts.dump_regime_model`), when
  the segment was trained with regime features.

A loaded bundle predicts exactly what the saved one did.
"""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from ml.models.artifacts import (
    ArtifactFormatError,
    dump_regime_model,
    dump_segment_model,
    load_regime_model,
    load_segment_calibration,
    load_segment_model,
)
from ml.models.calibration import RELIABILITY_SCHEMA, PlattScaler
from ml.models.training import TestMetrics, TimeSplit, TrainedSegment, TrainingConfig

KIND = "trained_segment"
BUNDLE_VERSION = 1
_EPOCH = (1980, 1, 1, 0, 0, 0)
_MANIFEST, _MODEL, _REGIME = "bundle.json", "segment_model.zip", "regime_model.zip"


def _rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return frame.to_dicts()


def dump_trained_segment(trained: TrainedSegment) -> bytes:
    """Deterministic bytes of ``trained`` (see the module docstring)."""
    split = trained.split
    manifest = {
        "kind": KIND, "bundle_version": BUNDLE_VERSION, "segment": trained.segment, "timeframe": trained.timeframe,
        "version": trained.version, "feature_names": list(trained.feature_names),
        "platt": {"slopes": list(trained.calibrator.slopes), "intercepts": list(trained.calibrator.intercepts),
                  "held_out_rows": trained.calibrator.held_out_rows},
        "split": {"start": split.start.isoformat(), "calibration_start": split.calibration_start.isoformat(),
                  "test_start": split.test_start.isoformat(), "end": split.end.isoformat(),
                  "embargo_seconds": split.embargo.total_seconds()},
        "config": trained.config.model_dump(mode="json"), "metrics": trained.metrics.as_dict(),
        "reliability_raw": _rows(trained.reliability_raw),
        "reliability_calibrated": _rows(trained.reliability_calibrated),
        "feature_importance": _rows(trained.feature_importance),
        "class_frequencies": list(trained.class_frequencies), "rows": dict(trained.rows),
        "symbols": list(trained.symbols),
        "regime_anchor": list(trained.regime_anchor) if trained.regime_anchor else None,
    }
    members = {_MANIFEST: json.dumps(manifest, sort_keys=True, indent=1).encode(),
               _MODEL: dump_segment_model(trained.model, calibration=trained.temperature)}
    if trained.regime_model is not None:
        members[_REGIME] = dump_regime_model(trained.regime_model)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data, compresslevel=6)
    return buffer.getvalue()


def load_trained_segment(payload: bytes) -> TrainedSegment:
    """The :class:`TrainedSegment` of :func:`dump_trained_segment`; ``ArtifactFormatError`` when
    ``payload`` is not such a bundle or is damaged."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
        manifest = json.loads(archive.read(_MANIFEST))
        model_bytes = archive.read(_MODEL)
        regime_bytes = archive.read(_REGIME) if _REGIME in archive.namelist() else None
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError) as e:
        raise ArtifactFormatError(f"not a readable trained-segment bundle ({type(e).__name__}: {e})") from e
    if manifest.get("kind") != KIND or manifest.get("bundle_version") != BUNDLE_VERSION:
        raise ArtifactFormatError(f"bundle kind {manifest.get('kind')!r} version {manifest.get('bundle_version')!r} "
                                  f"is not a {KIND} version {BUNDLE_VERSION}")
    temperature = load_segment_calibration(model_bytes)
    if temperature is None:
        raise ArtifactFormatError("trained-segment bundle lacks its temperature scaler")
    split, platt = manifest["split"], manifest["platt"]
    importance = manifest["feature_importance"]
    return TrainedSegment(
        segment=manifest["segment"], timeframe=manifest["timeframe"], model=load_segment_model(model_bytes),
        calibrator=PlattScaler(slopes=tuple(platt["slopes"]), intercepts=tuple(platt["intercepts"]),
                               held_out_rows=int(platt["held_out_rows"])),
        temperature=temperature,
        regime_model=load_regime_model(regime_bytes) if regime_bytes is not None else None,
        regime_anchor=tuple(manifest["regime_anchor"]) if manifest["regime_anchor"] else None,  # type: ignore[arg-type]
        feature_names=tuple(manifest["feature_names"]),
        split=TimeSplit(start=datetime.fromisoformat(split["start"]),
                        calibration_start=datetime.fromisoformat(split["calibration_start"]),
                        test_start=datetime.fromisoformat(split["test_start"]),
                        end=datetime.fromisoformat(split["end"]),
                        embargo=timedelta(seconds=split["embargo_seconds"])),
        config=TrainingConfig.model_validate(manifest["config"]), metrics=TestMetrics(**manifest["metrics"]),
        reliability_raw=pl.DataFrame(manifest["reliability_raw"], schema=RELIABILITY_SCHEMA),
        reliability_calibrated=pl.DataFrame(manifest["reliability_calibrated"], schema=RELIABILITY_SCHEMA),
        feature_importance=pl.DataFrame(importance, schema={"feature": pl.String, "gain": pl.Float64}),
        class_frequencies=tuple(manifest["class_frequencies"]), rows=dict(manifest["rows"]),
        symbols=tuple(manifest["symbols"]), version=manifest["version"],
    )
