"""What ``predictions`` does with the registry and the model store: each segment's usable model
predicts its symbols' latest candle; the segment's usable regime model adds the current regime.

A segment without a usable model (none trained, rejected by its checks, or expired) is skipped
with the reason, and never stops the other segments.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from ml.features.segments import SEGMENT_IDS
from ml.marketdata.frames import TS
from ml.models.dataset import dataset_candles, segment_rows
from resources.models.store import ModelStore
from resources.warehouse.models import ModelRecord, ModelRegistry
from resources.warehouse.predictions import PREDICTIONS_SCHEMA

XGB_MODEL = "xgb_segment"
REGIME_MODEL = "hmm_regime"


def why_unusable(registry: ModelRegistry, name: str, segment: str, at: datetime) -> str:
    """Why (name, segment) has no usable model at ``at``, from its newest registered version."""
    records = registry.models(name, segment)
    if not records:
        return "no model trained"
    active = [r for r in records if r.status == "active"]
    if active:
        return f"active version {active[0].version} expired at {active[0].expires_at.isoformat()}"
    newest = records[0]
    return f"newest version {newest.version} is {newest.status}" + (
        f" ({newest.status_reason})" if newest.status_reason else "")


def current_regimes(record: ModelRecord | None, model_store: ModelStore, candles: pl.DataFrame) -> pl.DataFrame:
    """(exchange, symbol, regime, size_multiplier, regime_version) at each series' last candle."""
    schema = {"exchange": pl.String, "symbol": pl.String, "regime": pl.String, "size_multiplier": pl.Float64,
              "regime_version": pl.String}
    if record is None:
        return pl.DataFrame(schema=schema)
    from ml.models.artifacts import load_regime_model
    from ml.models.regimes import infer_regimes

    model = load_regime_model(model_store.get(record.artifact_uri))
    rows = []
    for (exchange, symbol), series in candles.sort("ts").group_by(["exchange", "symbol"], maintain_order=True):
        last = infer_regimes(model, series.select("ts", "close", "volume")).tail(1).row(0, named=True)
        rows.append({"exchange": exchange, "symbol": symbol, "regime": last["regime"],
                     "size_multiplier": last["size_multiplier"], "regime_version": record.version})
    return pl.DataFrame(rows, schema=schema)


def predict_segments(dataset: pl.DataFrame, registry: ModelRegistry, model_store: ModelStore, now: datetime,
                     ) -> tuple[pl.DataFrame, dict[str, str]]:
    """(predictions in PREDICTIONS_SCHEMA, segment -> why it was skipped)."""
    from ml.models.bundle import load_trained_segment
    from ml.models.training import predict_latest

    frames, skipped = [], {}
    for segment in SEGMENT_IDS:
        rows = segment_rows(dataset, segment)
        if rows.is_empty():
            skipped[segment] = "no symbols of the segment in the dataset"
            continue
        record = registry.usable_model(XGB_MODEL, segment, now)
        if record is None:
            skipped[segment] = why_unusable(registry, XGB_MODEL, segment, now)
            continue
        trained = load_trained_segment(model_store.get(record.artifact_uri))
        candles = dataset_candles(rows)
        latest = predict_latest(trained, rows, candles)
        regimes = current_regimes(registry.usable_model(REGIME_MODEL, segment, now), model_store, candles)
        frames.append(latest.join(regimes, on=["exchange", "symbol"], how="left").with_columns(
            pl.lit(XGB_MODEL).alias("model_name"), pl.lit(now).cast(TS).alias("predicted_at")))
    if not frames:
        return pl.DataFrame(schema=PREDICTIONS_SCHEMA), skipped
    return pl.concat(frames, how="diagonal").select(
        [pl.col(c).cast(t) for c, t in PREDICTIONS_SCHEMA.items()]), skipped
