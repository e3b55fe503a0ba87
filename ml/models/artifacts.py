"""Fitted models to bytes and back, without pickle: what the model store keeps.

An artifact is a zip archive holding ``manifest.json`` (format name and version, the kind of
model, and every field of the model as JSON) and, for an XGBoost model, ``booster.ubj`` (the
booster as XGBoost's own Universal Binary JSON, ``Booster.save_raw("ubj")``). Nothing is ever
unpickled, so loading an artifact cannot run code.

Guarantees
----------
* **Lossless**: a loaded model predicts exactly what the saved one did (floats are stored as
  Python's shortest round-trip repr, the booster in XGBoost's native format).
* **Deterministic**: the same model gives the same bytes (fixed member order, timestamps and
  compression), so re-storing an unchanged model in the immutable store is a no-op.
* **Checked**: a payload that is not an artifact, is damaged (zip CRC), holds another kind of
  model, or has a format version this code does not read raises :class:`ArtifactFormatError`.

Kinds: ``xgb_segment_model`` (:class:`~ml.models.xgb.SegmentModel`, optionally with the
:class:`~ml.models.calibration.TemperatureScaler` fitted for it), ``regime_model``
(:class:`~ml.models.regimes.RegimeModel`) and ``temperature_scaler``.
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from datetime import date, datetime
from types import MappingProxyType
from typing import Any

import numpy as np

from ml.models.calibration import TemperatureScaler
from ml.models.regime_features import REGIMES, RegimeConfig
from ml.models.regimes import RegimeModel
from ml.models.xgb import SegmentModel

#: Name written into every manifest.
FORMAT = "signalworks-model-artifact"
#: Version of the layout below; bump it (and keep reading the old one) when the layout changes.
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})

KIND_SEGMENT = "xgb_segment_model"
KIND_REGIME = "regime_model"
KIND_SCALER = "temperature_scaler"

_MANIFEST = "manifest.json"
_BOOSTER = "booster.ubj"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # zip's earliest timestamp: members carry no wall-clock time


class ArtifactFormatError(ValueError):
    """The payload is not a readable model artifact of the expected kind and version."""


# -- container -------------------------------------------------------------------------------------


def _pack(manifest: dict[str, Any], members: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        entries = {_MANIFEST: json.dumps(manifest, sort_keys=True, indent=1).encode(), **(members or {})}
        for name, data in entries.items():
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data, compresslevel=6)
    return buffer.getvalue()


#: What zipfile raises on a damaged or truncated archive or member.
_DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, KeyError, ValueError)


def _read_member(archive: zipfile.ZipFile, name: str) -> bytes:
    try:
        return archive.read(name)
    except _DAMAGED as e:
        raise ArtifactFormatError(f"damaged model artifact: member {name} unreadable ({type(e).__name__}: {e})") from e


def _unpack(payload: bytes, kind: str) -> tuple[dict[str, Any], zipfile.ZipFile]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
    except _DAMAGED as e:
        raise ArtifactFormatError(f"not a readable model artifact ({type(e).__name__}: {e})") from e
    try:
        manifest = json.loads(_read_member(archive, _MANIFEST))
    except ValueError as e:
        if isinstance(e, ArtifactFormatError):
            raise
        raise ArtifactFormatError(f"model artifact manifest is not JSON ({e})") from e
    if not isinstance(manifest, dict):
        raise ArtifactFormatError("not a model artifact: its manifest is not a JSON object")
    if manifest.get("format") != FORMAT:
        raise ArtifactFormatError(f"not a model artifact: manifest format is {manifest.get('format')!r} "
                                  f"(expected {FORMAT!r})")
    version = manifest.get("format_version")
    if version not in SUPPORTED_VERSIONS:
        raise ArtifactFormatError(f"artifact format version {version!r} is not supported (this code reads "
                                  f"{sorted(SUPPORTED_VERSIONS)}): upgrade Signalworks or retrain the model")
    if manifest.get("kind") != kind:
        raise ArtifactFormatError(f"artifact holds a {manifest.get('kind')!r}, not a {kind!r}")
    return manifest, archive


def _manifest(kind: str, model: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind, "model": model, **extra}


def _field(mapping: dict[str, Any], name: str, kind: str) -> Any:
    try:
        return mapping[name]
    except KeyError as e:
        raise ArtifactFormatError(f"{kind} artifact lacks the field {name!r}") from e


def artifact_kind(payload: bytes) -> str:
    """The kind written in an artifact's manifest (``xgb_segment_model``, ``regime_model``, ...)."""
    try:
        manifest = json.loads(zipfile.ZipFile(io.BytesIO(payload)).read(_MANIFEST))
        return str(manifest["kind"])
    except (*_DAMAGED, TypeError) as e:
        raise ArtifactFormatError(f"not a readable model artifact ({type(e).__name__}: {e})") from e


# -- instants and arrays ---------------------------------------------------------------------------


def _encode_instant(value: Any) -> dict[str, Any]:
    """A window bound (numpy datetime64, datetime, date, int, float or str) as tagged JSON."""
    if isinstance(value, np.datetime64):
        unit, count = np.datetime_data(value.dtype)
        return {"type": "datetime64", "value": str(value), "unit": f"{count}{unit}" if count != 1 else unit}
    if isinstance(value, datetime):
        return {"type": "datetime", "value": value.isoformat()}
    if isinstance(value, date):
        return {"type": "date", "value": value.isoformat()}
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"cannot store a window bound of type {type(value).__name__}")
    if isinstance(value, (int, np.integer)):
        return {"type": "int", "value": int(value)}
    if isinstance(value, (float, np.floating)):
        return {"type": "float", "value": float(value)}
    if isinstance(value, str):
        return {"type": "str", "value": value}
    raise TypeError(f"cannot store a window bound of type {type(value).__name__}: use datetime64, datetime, "
                    "int, float or str timestamps")


def _decode_instant(encoded: Any) -> Any:
    try:
        kind, value = encoded["type"], encoded["value"]
        if kind == "datetime64":
            return np.datetime64(value, encoded["unit"])
        decoders = {"datetime": datetime.fromisoformat, "date": date.fromisoformat, "int": int, "float": float,
                    "str": str}
        return decoders[kind](value)
    except (KeyError, TypeError, ValueError) as e:
        raise ArtifactFormatError(f"unreadable window bound {encoded!r}") from e


def _array(encoded: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    try:
        array = np.asarray(encoded, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ArtifactFormatError(f"regime_model field {name!r} is not numeric") from e
    if array.shape != shape:
        raise ArtifactFormatError(f"regime_model field {name!r} has shape {array.shape}, expected {shape}")
    return array


# -- XGBoost segment models ------------------------------------------------------------------------


def dump_segment_model(model: SegmentModel, *, calibration: TemperatureScaler | None = None) -> bytes:
    """Serialise a segment model (and the temperature fitted for it, if any) to artifact bytes.

    Parameters
    ----------
    model
        A fitted :class:`~ml.models.xgb.SegmentModel`. Its window bounds may be numpy
        ``datetime64``, ``datetime``, ``int``, ``float`` or ``str``; its ``params`` must be JSON.
    calibration
        Optional temperature scaler fitted on held-out predictions of this model.

    Returns
    -------
    bytes
        A deterministic zip artifact (same model and calibration, same bytes).
    """
    import xgboost

    fields = {
        "feature_names": list(model.feature_names),
        "best_iteration": model.best_iteration,
        "feature_importance": dict(model.feature_importance),
        "version": model.version,
        "window_start": _encode_instant(model.window_start),
        "window_end": _encode_instant(model.window_end),
        "validation_start": _encode_instant(model.validation_start),
        "rows": model.rows, "train_rows": model.train_rows, "validation_rows": model.validation_rows,
        "params": model.params,
    }
    scaler = None if calibration is None else _scaler_fields(calibration)
    manifest = _manifest(KIND_SEGMENT, fields, calibration=scaler, xgboost_version=xgboost.__version__)
    return _pack(manifest, {_BOOSTER: bytes(model.booster.save_raw("ubj"))})


def load_segment_model(payload: bytes) -> SegmentModel:
    """The :class:`~ml.models.xgb.SegmentModel` in an artifact of :func:`dump_segment_model`.

    Raises
    ------
    ArtifactFormatError
        Not a segment-model artifact, damaged, of an unsupported format version, or a booster
        XGBoost cannot read.
    """
    import xgboost

    manifest, archive = _unpack(payload, KIND_SEGMENT)
    fields = _field(manifest, "model", KIND_SEGMENT)
    raw = _read_member(archive, _BOOSTER)
    try:
        booster = xgboost.Booster()
        booster.load_model(bytearray(raw))
    except xgboost.core.XGBoostError as e:
        raise ArtifactFormatError(f"unreadable booster in the segment-model artifact ({type(e).__name__}: {e})") from e
    try:
        return SegmentModel(
            booster=booster,
            feature_names=tuple(str(n) for n in _field(fields, "feature_names", KIND_SEGMENT)),
            best_iteration=int(_field(fields, "best_iteration", KIND_SEGMENT)),
            feature_importance=MappingProxyType(
                {str(k): float(v) for k, v in _field(fields, "feature_importance", KIND_SEGMENT).items()}),
            version=str(_field(fields, "version", KIND_SEGMENT)),
            window_start=_decode_instant(_field(fields, "window_start", KIND_SEGMENT)),
            window_end=_decode_instant(_field(fields, "window_end", KIND_SEGMENT)),
            rows=int(_field(fields, "rows", KIND_SEGMENT)),
            train_rows=int(_field(fields, "train_rows", KIND_SEGMENT)),
            validation_rows=int(_field(fields, "validation_rows", KIND_SEGMENT)),
            validation_start=_decode_instant(_field(fields, "validation_start", KIND_SEGMENT)),
            params=dict(_field(fields, "params", KIND_SEGMENT)),
        )
    except (TypeError, ValueError, AttributeError) as e:
        if isinstance(e, ArtifactFormatError):
            raise
        raise ArtifactFormatError(f"malformed segment-model fields ({type(e).__name__}: {e})") from e


def load_segment_calibration(payload: bytes) -> TemperatureScaler | None:
    """The temperature scaler stored with a segment model, or None when it was saved without one."""
    manifest, _ = _unpack(payload, KIND_SEGMENT)
    stored = manifest.get("calibration")
    return None if stored is None else _scaler_from(stored)


# -- temperature scalers ---------------------------------------------------------------------------


def _scaler_fields(scaler: TemperatureScaler) -> dict[str, Any]:
    return {"temperature": float(scaler.temperature), "held_out_rows": int(scaler.held_out_rows)}


def _scaler_from(fields: Any) -> TemperatureScaler:
    try:
        temperature = float(fields["temperature"])
        rows = int(fields["held_out_rows"])
    except (KeyError, TypeError, ValueError) as e:
        raise ArtifactFormatError(f"malformed temperature scaler {fields!r}") from e
    if not temperature > 0:
        raise ArtifactFormatError(f"stored temperature {temperature} is not positive")
    return TemperatureScaler(temperature=temperature, held_out_rows=rows)


def dump_temperature_scaler(scaler: TemperatureScaler) -> bytes:
    """Serialise a fitted :class:`~ml.models.calibration.TemperatureScaler` on its own."""
    return _pack(_manifest(KIND_SCALER, _scaler_fields(scaler)))


def load_temperature_scaler(payload: bytes) -> TemperatureScaler:
    """The scaler in an artifact of :func:`dump_temperature_scaler`."""
    manifest, _ = _unpack(payload, KIND_SCALER)
    return _scaler_from(_field(manifest, "model", KIND_SCALER))


# -- HMM regime models -----------------------------------------------------------------------------


def dump_regime_model(model: RegimeModel) -> bytes:
    """Serialise a fitted :class:`~ml.models.regimes.RegimeModel` (arrays as JSON lists, config as JSON).

    Returns
    -------
    bytes
        A deterministic zip artifact; loading it needs numpy only (no hmmlearn).
    """
    fields = {
        "config": model.config.model_dump(mode="json"),
        **{name: np.asarray(getattr(model, name), dtype=np.float64).tolist()
           for name in ("feature_mean", "feature_std", "startprob", "transmat", "means", "covars")},
        "fitted_order": list(model.fitted_order),
        "log_likelihood": float(model.log_likelihood),
        "n_train_rows": int(model.n_train_rows),
    }
    return _pack(_manifest(KIND_REGIME, fields))


def load_regime_model(payload: bytes) -> RegimeModel:
    """The :class:`~ml.models.regimes.RegimeModel` in an artifact of :func:`dump_regime_model`."""
    from pydantic import ValidationError

    manifest, _ = _unpack(payload, KIND_REGIME)
    fields = _field(manifest, "model", KIND_REGIME)
    try:
        config = RegimeConfig.model_validate(_field(fields, "config", KIND_REGIME))
    except ValidationError as e:
        raise ArtifactFormatError(f"regime_model config is invalid: {e}") from e
    k = len(REGIMES)
    d = len(_field(fields, "feature_mean", KIND_REGIME))
    shapes = {"feature_mean": (d,), "feature_std": (d,), "startprob": (k,), "transmat": (k, k),
              "means": (k, d), "covars": (k, d, d)}
    arrays = {name: _array(_field(fields, name, KIND_REGIME), shape, name) for name, shape in shapes.items()}
    order = tuple(int(i) for i in _field(fields, "fitted_order", KIND_REGIME))
    if sorted(order) != list(range(k)):
        raise ArtifactFormatError(f"regime_model fitted_order {order} is not a permutation of 0..{k - 1}")
    return RegimeModel(config=config, **arrays, fitted_order=order,
                       log_likelihood=float(_field(fields, "log_likelihood", KIND_REGIME)),
                       n_train_rows=int(_field(fields, "n_train_rows", KIND_REGIME)))
