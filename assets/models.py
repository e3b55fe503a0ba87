"""Model assets: ``features`` -> ``regime_model``, ``xgb_models[segment]`` -> ``predictions``.

Thin glue: windows come from run config, data from the warehouse and the feature store, the work
from ``ml.models``. Defaults (documented in the launchpad through the Config fields):

* ``features``: the last 90 days of closed 1h candles of every configured exchange, label
  horizon 4 candles;
* ``regime_model``: the last 60 days of the dataset, one HMM per segment fitted on the segment's
  anchor series (the series with the most candles, ties to the first symbol);
* ``xgb_models``: the last 60 days of the dataset, split fit | calibration | test
  (:mod:`ml.models.training`); models expire 24 h after training.
"""


import hashlib
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
from dagster import (
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    StaticPartitionsDefinition,
    asset,
)
from pydantic import Field

from assets.metadata import plot_metadata, table_metadata
from assets.model_predictions import REGIME_MODEL, XGB_MODEL, predict_segments
from ml.features import SegmentsConfig, load_segments
from ml.features.segments import SEGMENT_IDS
from ml.marketdata.frames import DERIVATIVES_SCHEMA
from ml.marketdata.timeframes import timeframe_ms
from ml.models.dataset import build_dataset, dataset_candles, last_days, null_share, segment_rows
from ml.models.training import TrainedSegment, TrainingConfig
from resources.exchanges.resource import ExchangeResource
from resources.feature_store import FeatureStoreResource
from resources.models.store import ModelStore, artifact_key
from resources.warehouse.models import ModelRecord
from resources.warehouse.predictions import write_predictions
from resources.warehouse.resource import WarehouseResource
from resources.warehouse.store import Warehouse

TIMEFRAME = "1h"
DATASET = "dataset_1h"
#: The project's segments file, whatever the working directory (not a path relative to the cwd).
DEFAULT_SEGMENTS_PATH = str(Path(__file__).resolve().parents[1] / "config" / "segments.yaml")


class FeaturesConfig(Config):
    window_days: int = Field(default=90, gt=0, le=3650, description="days of closed 1h candles read")
    horizon: int = Field(default=4, gt=0, le=500, description="label horizon, candles")
    segments_path: str = Field(default=DEFAULT_SEGMENTS_PATH, description="segments YAML")


class RegimeModelConfig(Config):
    window_days: int = Field(default=60, gt=0, le=3650, description="days of the dataset the HMM is fitted on")
    seed: int = 0
    n_init: int = Field(default=4, gt=0, description="EM restarts")
    expiry_hours: int = Field(default=48, gt=0, description="the regime model is not used this long after fitting")


def segments_config(path: str) -> SegmentsConfig:
    """The segments file at ``path`` (a missing file is an error, never a silent default)."""
    if not Path(path).exists():
        raise FileNotFoundError(f"segments file {path} not found")
    return load_segments(path)


def liquidity_ranks(store: Warehouse) -> dict[str, int]:
    """The best (lowest) liquidity rank of each symbol across exchanges."""
    markets = store.read_markets().drop_nulls("liquidity_rank")
    return dict(markets.group_by("symbol").agg(pl.col("liquidity_rank").min()).iter_rows())


def model_inputs(store: Warehouse, exchanges: list[str], *, start: datetime, end: datetime,
                 ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(candles, indicators, derivatives) of ``exchanges`` with candle open times in ``[start, end)``."""
    candles = pl.concat([store.read_candles(timeframe=TIMEFRAME, exchange=e, start=start, end=end) for e in exchanges])
    indicators = pl.concat([store.read_indicators(timeframe=TIMEFRAME, exchange=e, start=start, end=end)
                            for e in exchanges])
    derivatives = pl.concat([store.read_derivatives(e) for e in exchanges]).filter(
        (pl.col("ts") >= start) & (pl.col("ts") < end + timedelta(hours=1)))
    return candles, indicators, derivatives.select([pl.col(c).cast(t) for c, t in DERIVATIVES_SCHEMA.items()])


def closed_window(now: datetime, days: int) -> tuple[datetime, datetime]:
    """Open-time range ``[start, end)`` of the 1h candles closed at ``now`` within ``days``."""
    step = timedelta(milliseconds=timeframe_ms(TIMEFRAME))
    end = now - step + timedelta(milliseconds=1)
    return end - timedelta(days=days), end


@asset(
    name="features",
    deps=["candles_1h", "indicators", "derivatives"],
    group_name="models",
    kinds={"polars", "parquet"},
    description="Features and labels of every 1h candle of the configured exchanges over a bounded window "
    "(ml/models/dataset.py), written atomically to $SIGNALWORKS_HOME/features/dataset_1h.parquet.",
)
def features(context: AssetExecutionContext, config: FeaturesConfig, warehouse: WarehouseResource,
             exchanges: ExchangeResource, feature_store: FeatureStoreResource) -> MaterializeResult:
    store = warehouse.store()
    start, end = closed_window(exchanges.clock()(), config.window_days)
    candles, indicators, derivatives = model_inputs(store, list(exchanges.exchanges), start=start, end=end)
    if candles.is_empty():
        raise ValueError(f"no closed 1h candles in [{start}, {end}) on {', '.join(exchanges.exchanges)}: "
                         "materialise candles_1h first")
    dataset = build_dataset(candles, horizon=config.horizon, indicators=indicators, derivatives=derivatives,
                            segments=segments_config(config.segments_path), liquidity_ranks=liquidity_ranks(store))
    path = feature_store.write(DATASET, dataset)
    context.log.info("%d rows of %d symbols written to %s", dataset.height,
                     dataset.select("exchange", "symbol").n_unique(), path)
    by_segment = dataset.group_by("segment_id").agg(pl.col("symbol").n_unique().alias("symbols"), pl.len().alias("rows"))
    names = {v: k for k, v in SEGMENT_IDS.items()}
    return MaterializeResult(metadata={
        "rows": dataset.height, "symbols": dataset.select("exchange", "symbol").n_unique(),
        "columns": dataset.width, "window_start": start.isoformat(), "window_end": end.isoformat(),
        "first_ts": str(dataset.get_column("ts").min()), "last_ts": str(dataset.get_column("ts").max()),
        "labelled_rows": dataset.get_column("label").drop_nulls().len(),
        "null_share": round(null_share(dataset), 4), "horizon_candles": config.horizon,
        "path": MetadataValue.path(str(path)),
        "segments": table_metadata(by_segment.with_columns(
            pl.col("segment_id").replace_strict(names, return_dtype=pl.String).alias("segment")
        ).select("segment", "symbols", "rows").sort("segment")),
    })


def fit_segment_regimes(dataset: pl.DataFrame, segment: str, config: RegimeModelConfig):  # type: ignore[no-untyped-def]
    """(model, anchor, timeline) of one segment over the dataset's rows, or None without rows."""
    from ml.models.regime_features import RegimeConfig
    from ml.models.regimes import fit_regime_model, infer_regimes
    from ml.models.segment_regimes import regime_anchor

    candles = dataset_candles(segment_rows(dataset, segment))
    if candles.is_empty():
        return None
    anchor = regime_anchor(candles, candles.get_column("ts").max() + timedelta(hours=1))
    series = candles.filter((pl.col("exchange") == anchor[0]) & (pl.col("symbol") == anchor[1])).sort("ts")
    model = fit_regime_model(series, RegimeConfig(n_init=config.n_init), seed=config.seed)
    timeline = infer_regimes(model, series).with_columns(series.get_column("close"))
    return model, anchor, timeline


def regime_metadata(segment: str, model, anchor: tuple[str, str], timeline: pl.DataFrame) -> dict[str, object]:  # type: ignore[no-untyped-def]
    from ml.reporting.plots import regime_timeline_png

    shown = timeline.drop_nulls("regime")
    plot = regime_timeline_png(shown.get_column("ts"), shown.get_column("close"), shown.get_column("regime"),
                               title=f"{segment}: {anchor[1]} on {anchor[0]}, forward-filtered regime")
    return {
        f"{segment}_anchor": f"{anchor[0]}:{anchor[1]}",
        f"{segment}_transition_matrix": table_metadata(model.transition_frame()),
        f"{segment}_regimes": table_metadata(model.state_summary()),
        f"{segment}_timeline": plot_metadata(plot, f"{segment} regime timeline"),
        f"{segment}_log_likelihood": float(model.log_likelihood),
    }


SEGMENT_PARTITIONS = StaticPartitionsDefinition(list(SEGMENT_IDS))


@asset(
    name="regime_model",
    deps=["features"],
    group_name="models",
    kinds={"hmmlearn"},
    description="4-state Gaussian HMM per segment (Bull trend, Bear trend, Sideways, High volatility), fitted on "
    "the segment's anchor series over the window; stored in the model store and registered active (the "
    "labelling rule is deterministic; no check stands between it and its use as a size multiplier).",
)
def regime_model(context: AssetExecutionContext, config: RegimeModelConfig, feature_store: FeatureStoreResource,
                 model_store: ModelStore, warehouse: WarehouseResource, exchanges: ExchangeResource,
                 ) -> MaterializeResult:
    from ml.models.artifacts import dump_regime_model

    now = exchanges.clock()()
    dataset = last_days(feature_store.read(DATASET), config.window_days)
    registry = warehouse.store().model_registry()
    metadata: dict[str, object] = {"window_days": config.window_days}
    for segment in SEGMENT_IDS:
        fitted = fit_segment_regimes(dataset, segment, config)
        if fitted is None:
            context.log.warning("segment %s has no symbols in the dataset: no regime model", segment)
            continue
        model, anchor, timeline = fitted
        payload = dump_regime_model(model)
        window = timeline.get_column("ts")
        version = hashlib.sha256(payload + f"{window.min()}|{window.max()}".encode()).hexdigest()[:16]
        uri = model_store.put(artifact_key(REGIME_MODEL, segment, version), payload)
        registry.register_model(ModelRecord(
            name=REGIME_MODEL, segment=segment, version=version, window_start=window.min(), window_end=window.max(),
            trained_at=now, expires_at=now + timedelta(hours=config.expiry_hours), artifact_uri=uri,
            metrics={"log_likelihood": model.log_likelihood, "anchor": f"{anchor[0]}:{anchor[1]}",
                     "rows": model.n_train_rows}, status="candidate"))
        registry.set_model_status(REGIME_MODEL, segment, version, "active", "fitted", at=now)
        metadata |= regime_metadata(segment, model, anchor, timeline) | {f"{segment}_version": version}
    return MaterializeResult(metadata=metadata)


class XgbModelsConfig(Config):
    window_days: int = Field(default=60, gt=0, le=3650, description="days of the dataset one training reads")
    seed: int = 0
    n_estimators: int | None = Field(default=None, gt=0, description="None: the segment's (seed: 200 trees)")
    expiry_hours: int = Field(default=24, gt=0, description="a model is not used this long after training")
    outlier_z: float | None = Field(default=10.0, gt=0, description="robust z-score dropping fit rows; None: off")
    recency_half_life_days: float | None = Field(default=30.0, gt=0, description="None: equal weights")
    regime_n_init: int = Field(default=4, gt=0, description="EM restarts of the regime-feature HMM")
    segments_path: str = Field(default=DEFAULT_SEGMENTS_PATH, description="segments YAML")


def training_config(config: XgbModelsConfig) -> TrainingConfig:
    from ml.models.regime_features import RegimeConfig

    return TrainingConfig(n_estimators=config.n_estimators, outlier_z=config.outlier_z,
                          recency_half_life_days=config.recency_half_life_days,
                          regime=RegimeConfig(n_init=config.regime_n_init))


@asset(
    name="xgb_models",
    partitions_def=SEGMENT_PARTITIONS,
    deps=["features"],
    group_name="models",
    kinds={"xgboost"},
    description="One XGBoost classifier (down / flat / up) per segment with HMM regime features and Platt "
    "calibration, trained on a bounded window and scored on its untouched test slice (ml/models/training.py). "
    "Registered as candidate; the blocking checks make it active or rejected.",
)
def xgb_models(context: AssetExecutionContext, config: XgbModelsConfig, feature_store: FeatureStoreResource,
               model_store: ModelStore, warehouse: WarehouseResource, exchanges: ExchangeResource,
               ) -> MaterializeResult:
    from ml.models.bundle import dump_trained_segment
    from ml.models.training import train_segment

    segment = context.partition_key
    rows = segment_rows(last_days(feature_store.read(DATASET), config.window_days), segment)
    if rows.is_empty():
        raise ValueError(f"segment {segment} has no symbols in the dataset: nothing to train")
    params = segments_config(config.segments_path).segments[segment].xgboost  # type: ignore[index]
    trained = train_segment(rows, dataset_candles(rows), segment=segment, params=params,
                            config=training_config(config), seed=config.seed)
    uri = model_store.put(artifact_key(XGB_MODEL, segment, trained.version), dump_trained_segment(trained))
    now = exchanges.clock()()
    new = warehouse.store().model_registry().register_model(ModelRecord(
        name=XGB_MODEL, segment=segment, version=trained.version, window_start=trained.window_start,
        window_end=trained.window_end, trained_at=now, expires_at=now + timedelta(hours=config.expiry_hours),
        artifact_uri=uri, metrics={**trained.metrics.as_dict(), **trained.rows}, status="candidate"))
    context.log.info("%s: model %s (%s) test Brier %.4f vs climatology %.4f", segment, trained.version,
                     "new" if new else "already registered", trained.metrics.brier_calibrated,
                     trained.metrics.brier_climatology)
    return MaterializeResult(metadata=trained_metadata(trained, uri))


def trained_metadata(trained: TrainedSegment, uri: str) -> dict[str, object]:
    from ml.reporting.plots import reliability_png

    plot = reliability_png({"before calibration": trained.reliability_raw,
                            "after Platt calibration": trained.reliability_calibrated},
                           title=f"{trained.segment}: reliability on the test slice")
    # Figures first: the UI lists metadata in this order, and a long symbol list would push them down.
    return {
        "brier_calibrated": trained.metrics.brier_calibrated, "brier_climatology": trained.metrics.brier_climatology,
        "test_metrics": table_metadata(trained.metrics.as_frame(), digits=5),
        "reliability": plot_metadata(plot, f"{trained.segment} reliability before and after calibration"),
        "feature_importance": table_metadata(trained.feature_importance.head(30)),
        "model_version": trained.version, "artifact_uri": uri,
        "window_start": trained.window_start.isoformat(), "window_end": trained.window_end.isoformat(),
        "test_start": trained.split.test_start.isoformat(), "rows": MetadataValue.json(trained.rows),
        "best_iteration": trained.model.best_iteration,
        "symbols": MetadataValue.text(f"{len(trained.symbols)}: {', '.join(trained.symbols)}"),
    }


@asset(
    name="predictions",
    deps=["xgb_models", "regime_model", "features"],
    group_name="models",
    kinds={"xgboost", "sql"},
    description="Latest calibrated down / flat / up probabilities per symbol from each segment's usable model "
    "(active and not expired at run time), with the model versions and the segment's current regime; "
    "stored in the warehouse `predictions` table. A segment without a usable model is skipped, and says why.",
)
def predictions(context: AssetExecutionContext, feature_store: FeatureStoreResource, model_store: ModelStore,
                warehouse: WarehouseResource, exchanges: ExchangeResource) -> MaterializeResult:
    store = warehouse.store()
    now = exchanges.clock()()
    frame, skipped = predict_segments(feature_store.read(DATASET), store.model_registry(), model_store, now)
    written = write_predictions(store, frame) if frame.height else 0
    for segment, reason in skipped.items():
        context.log.warning("no predictions for %s: %s", segment, reason)
    return MaterializeResult(metadata={
        "rows": written, "predicted_at": now.isoformat(), "skipped": MetadataValue.json(skipped),
        "predictions": table_metadata(frame.select("exchange", "symbol", "ts", "segment", "p_down", "p_flat", "p_up",
                                                   "predicted", "regime", "model_version")
                                      if frame.height else frame),
    })
