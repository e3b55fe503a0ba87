"""Blocking checks between a model and anything that uses it.

On ``xgb_models``, per segment partition, judging the model version its latest materialisation
registered:

* ``beats_climatology``: the calibrated test-slice Brier score is not worse than the Brier score
  of forecasting the training class frequencies (a model that cannot beat that has no skill);
* ``no_look_ahead``: the canary (:mod:`ml.models.canary`): rebuilding features from candles
  altered after the test slice's start changes no prediction at or before it;
* ``not_expired``: the registry's ``expires_at`` is after the check's clock.

When all three ran and passed, the version becomes ``active`` (retiring the previous one); when
any failed, ``rejected``, so ``predictions`` will not use it, whatever run it happens in. Being
blocking, a failure also stops the rest of the run (``predictions`` in the training job).

On ``predictions``: ``models_usable``, every model version behind the newest stored predictions
is still active and unexpired at the check's clock; the segments without a usable model are
listed with the reason (never trained, rejected, expired).
"""


from collections.abc import Iterator
from datetime import datetime, timedelta

import polars as pl
from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSpec,
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    MetadataValue,
    Output,
    asset_check,
    multi_asset_check,
)

from assets.checks import Verdict, per_partition
from assets.metadata import table_metadata
from assets.model_predictions import XGB_MODEL, why_unusable
from assets.models import (
    DATASET,
    DEFAULT_SEGMENTS_PATH,
    SEGMENT_PARTITIONS,
    liquidity_ranks,
    model_inputs,
    segments_config,
)
from ml.features.segments import SEGMENT_IDS
from ml.models.dataset import dataset_candles, feature_builder
from resources.exchanges.resource import ExchangeResource
from resources.feature_store import FeatureStoreResource
from resources.models.store import ModelStore
from resources.warehouse.models import ModelRecord, ModelRegistry
from resources.warehouse.predictions import latest_predicted_at, read_predictions
from resources.warehouse.resource import WarehouseResource
from resources.warehouse.store import Warehouse

XGB_MODELS = AssetKey("xgb_models")
CHECKS = ("beats_climatology", "no_look_ahead", "not_expired")
CANARY_SEED = 20240101


def latest_model_version(instance: DagsterInstance, segment: str) -> str | None:
    """``model_version`` of the latest ``xgb_models`` materialisation of ``segment``."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=XGB_MODELS, asset_partitions=[segment]), limit=1).records
    if not records or records[0].asset_materialization is None:
        return None
    value = records[0].asset_materialization.metadata.get("model_version")
    return None if value is None else str(value.value)


def canary_verdict(trained, store: Warehouse, dataset: pl.DataFrame, exchanges: list[str]) -> Verdict:  # type: ignore[no-untyped-def]
    from ml.models.canary import no_look_ahead_canary

    candles = dataset_candles(dataset)
    start = candles.get_column("ts").min()
    _, indicators, derivatives = model_inputs(store, exchanges, start=start,
                                              end=candles.get_column("ts").max() + timedelta(hours=1))
    build = feature_builder(indicators=indicators, derivatives=derivatives,
                            segments=segments_config(DEFAULT_SEGMENTS_PATH), liquidity_ranks=liquidity_ranks(store))
    result = no_look_ahead_canary(trained, candles, cut=trained.split.test_start, build=build, seed=CANARY_SEED)
    return Verdict(result.passed, {
        "cut": result.cut.isoformat(), "rows_compared": result.rows_compared,
        "rows_differing": result.rows_differing, "max_abs_difference": result.max_abs_difference,
        "candles_altered": result.candles_altered, "rows_after_cut_changed": result.rows_after_cut_changed})


def judge(trained, record: ModelRecord, wanted: set[str], now: datetime, store: Warehouse,  # type: ignore[no-untyped-def]
          dataset: pl.DataFrame, exchanges: list[str]) -> dict[str, Verdict]:
    verdicts: dict[str, Verdict] = {}
    metrics = trained.metrics
    if "beats_climatology" in wanted:
        verdicts["beats_climatology"] = Verdict(metrics.brier_calibrated <= metrics.brier_climatology, {
            "brier_calibrated": metrics.brier_calibrated, "brier_climatology": metrics.brier_climatology,
            "brier_raw": metrics.brier_raw, "test_rows": metrics.rows, "model_version": record.version})
    if "no_look_ahead" in wanted:
        verdicts["no_look_ahead"] = canary_verdict(trained, store, dataset, exchanges)
    if "not_expired" in wanted:
        verdicts["not_expired"] = Verdict(record.expires_at > now, {
            "expires_at": record.expires_at.isoformat(), "checked_at": now.isoformat(),
            "model_version": record.version})
    return verdicts


def promote(registry: ModelRegistry, record: ModelRecord, verdicts: dict[str, Verdict], now: datetime) -> str:
    """Active when every check ran and passed, rejected when any failed; returns the status set
    (or kept, when only some checks ran and none failed)."""
    failed = sorted(name for name, verdict in verdicts.items() if not verdict.passed)
    if failed:
        registry.set_model_status(XGB_MODEL, record.segment, record.version, "rejected",
                                  f"failed {', '.join(failed)}", at=now)
        return "rejected"
    if set(verdicts) == set(CHECKS):
        registry.set_model_status(XGB_MODEL, record.segment, record.version, "active",
                                  f"passed {', '.join(CHECKS)}", at=now)
        return "active"
    return record.status


def build_xgb_model_checks() -> AssetChecksDefinition:
    """The three blocking checks of ``xgb_models`` in one step (built on demand: partitioned check
    specs are a Dagster preview feature, whose notice ``build_definitions`` silences)."""
    return multi_asset_check(
        name="xgb_model_checks",
        specs=[
            AssetCheckSpec("beats_climatology", asset=XGB_MODELS, partitions_def=SEGMENT_PARTITIONS, blocking=True,
                           description="Calibrated test-slice Brier score <= the climatological Brier score "
                           "(always forecasting the training class frequencies)."),
            AssetCheckSpec("no_look_ahead", asset=XGB_MODELS, partitions_def=SEGMENT_PARTITIONS, blocking=True,
                           description="Predictions at or before the test slice's start are identical when "
                           "every candle after it is altered and the features rebuilt."),
            AssetCheckSpec("not_expired", asset=XGB_MODELS, partitions_def=SEGMENT_PARTITIONS, blocking=True,
                           description="The model's registry expiry is after now."),
        ],
        can_subset=True,
        description="Judges the model version the partition's latest materialisation registered; all passed "
        "makes it active, any failure rejected.",
    )(xgb_model_checks)


def xgb_model_checks(context: AssetCheckExecutionContext, feature_store: FeatureStoreResource,
                     model_store: ModelStore, warehouse: WarehouseResource,
                     exchanges: ExchangeResource) -> Iterator[AssetCheckEvaluation | Output]:
    from ml.models.bundle import load_trained_segment

    store = warehouse.store()
    registry = store.model_registry()
    now = exchanges.clock()()
    wanted = {key.name for key in context.selected_asset_check_keys}
    verdicts: dict[str, dict[str, Verdict]] = {name: {} for name in wanted}
    dataset = feature_store.read(DATASET)
    for segment in sorted(context.partition_keys):
        version = latest_model_version(context.instance, segment)
        record = registry.model(XGB_MODEL, segment, version) if version else None
        if record is None:
            for name in wanted:
                verdicts[name][segment] = Verdict(False, {"reason": f"no registered model behind the latest "
                                                          f"materialisation (version {version})"})
            continue
        trained = load_trained_segment(model_store.get(record.artifact_uri))
        found = judge(trained, record, wanted, now, store, dataset, list(exchanges.exchanges))
        status = promote(registry, record, found, now)
        context.log.info("%s model %s: %s", segment, record.version, status)
        for name, verdict in found.items():
            verdicts[name][segment] = Verdict(verdict.passed, {**verdict.metadata, "model_status": status})
    yield from per_partition(context, verdicts)


@asset_check(asset="predictions", name="models_usable", blocking=True,
             description="Every model behind the newest stored predictions is active and not expired now; "
             "segments without a usable model are listed with the reason.")
def predictions_models_usable(warehouse: WarehouseResource, exchanges: ExchangeResource) -> AssetCheckResult:
    store = warehouse.store()
    registry = store.model_registry()
    now = exchanges.clock()()
    at = latest_predicted_at(store)
    used = (read_predictions(store, predicted_at=at).select("segment", "model_version").unique().sort("segment")
            if at is not None else pl.DataFrame(schema={"segment": pl.String, "model_version": pl.String}))
    rows = []
    for segment, version in used.iter_rows():
        record = registry.model(XGB_MODEL, segment, version)
        rows.append({"segment": segment, "model_version": version,
                     "status": record.status if record else "unregistered",
                     "expires_at": record.expires_at.isoformat() if record else None,
                     "usable": bool(record and record.usable_at(now))})
    models = pl.DataFrame(rows, schema={"segment": pl.String, "model_version": pl.String, "status": pl.String,
                                        "expires_at": pl.String, "usable": pl.Boolean})
    without = {s: why_unusable(registry, XGB_MODEL, s, now) for s in SEGMENT_IDS
               if registry.usable_model(XGB_MODEL, s, now) is None}
    return AssetCheckResult(passed=bool(models.get_column("usable").all()), metadata={
        "checked_at": now.isoformat(), "predicted_at": at.isoformat() if at else None,
        "models": table_metadata(models), "segments_without_usable_model": MetadataValue.json(without)})
