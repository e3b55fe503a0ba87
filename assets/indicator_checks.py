"""Checks on ``indicators``, per day x exchange partition like the asset: keys unique, values
finite where defined, a row for every candle that closes during the day."""

from collections import Counter
from collections.abc import Iterator

import polars as pl
from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetChecksDefinition,
    AssetCheckSpec,
    AssetsDefinition,
    MetadataValue,
    MultiPartitionsDefinition,
    Output,
    multi_asset_check,
)

from assets.checks import (
    CANDLE_KEY,
    Verdict,
    offenders_verdict,
    partitions_in_time_order,
    per_partition,
)
from assets.indicators import TIMEFRAMES, closing_slice
from ml.indicators.quality import missing_rows, non_finite_values
from ml.marketdata.quality import duplicate_keys
from resources.warehouse.resource import WarehouseResource
from resources.warehouse.store import Warehouse


def _day_frames(store: Warehouse, exchange: str, day: str) -> Iterator[tuple[str, pl.DataFrame, pl.DataFrame]]:
    """(timeframe, indicator rows, candles) of the candles that close during ``day``, per timeframe."""
    for timeframe in TIMEFRAMES:
        start, end = closing_slice(day, timeframe)
        if end <= start:
            continue
        indicators = store.read_indicators(timeframe=timeframe, exchange=exchange, start=start, end=end)
        candles = store.read_candles(timeframe=timeframe, exchange=exchange, start=start, end=end)
        if indicators.height or candles.height:
            yield timeframe, indicators, candles


def _complete_verdict(missing: pl.DataFrame, candles: int) -> Verdict:
    verdict = offenders_verdict(missing, count="missing_rows", rows=candles)
    by_timeframe = Counter(missing.get_column("timeframe").to_list()) if missing.height else Counter()
    return Verdict(verdict.passed, {**verdict.metadata, "missing_by_timeframe": MetadataValue.json(dict(by_timeframe))})


def _finite_verdict(bad: pl.DataFrame, rows: int) -> Verdict:
    verdict = offenders_verdict(bad, count="rows_with_non_finite_values", rows=rows)
    columns = sorted({c for found in bad.get_column("columns").to_list() for c in found.split(",")}) if bad.height else []
    return Verdict(verdict.passed, {**verdict.metadata, "columns": MetadataValue.json(columns)})


def build_indicator_checks(indicators_asset: AssetsDefinition, *,
                           partitions_def: MultiPartitionsDefinition) -> list[AssetChecksDefinition]:
    """``unique_keys``, ``finite_values`` and ``complete`` in one step that reads each day once."""
    specs = [
        AssetCheckSpec("unique_keys", asset=indicators_asset, partitions_def=partitions_def, blocking=True,
                       description="No two indicator rows share (exchange, symbol, timeframe, ts)."),
        AssetCheckSpec("finite_values", asset=indicators_asset, partitions_def=partitions_def, blocking=True,
                       description="Every indicator value is finite where it is defined (null during warm-up "
                       "is fine; NaN or ±inf is not)."),
        AssetCheckSpec("complete", asset=indicators_asset, partitions_def=partitions_def,
                       description="Every stored candle that closes during the partition's day, in every "
                       "timeframe, has its indicator row."),
    ]

    @multi_asset_check(name="indicators_partition_checks", specs=specs, can_subset=True,
                       description="Reads each day's indicator rows and candles once for every check.")
    def indicators_partition_checks(context: AssetCheckExecutionContext,
                                    warehouse: WarehouseResource) -> Iterator[AssetCheckEvaluation | Output]:
        store = warehouse.store()
        wanted = {key.name for key in context.selected_asset_check_keys}
        verdicts: dict[str, dict[str, Verdict]] = {name: {} for name in wanted}
        for partition in partitions_in_time_order(context, partitions_def):
            duplicates, non_finite, missing = [], [], []
            rows = candles = 0
            for _, indicators, day_candles in _day_frames(store, partition.exchange, partition.day):
                rows, candles = rows + indicators.height, candles + day_candles.height
                duplicates.append(duplicate_keys(indicators, CANDLE_KEY))
                non_finite.append(non_finite_values(indicators))
                missing.append(missing_rows(day_candles, indicators))
            found = {name: pl.concat(frames) if frames else pl.DataFrame()
                     for name, frames in (("unique_keys", duplicates), ("finite_values", non_finite),
                                          ("complete", missing))}
            if "unique_keys" in wanted:
                verdicts["unique_keys"][partition.key] = offenders_verdict(found["unique_keys"], count="duplicates",
                                                                           rows=rows)
            if "finite_values" in wanted:
                verdicts["finite_values"][partition.key] = _finite_verdict(found["finite_values"], rows)
            if "complete" in wanted:
                verdicts["complete"][partition.key] = _complete_verdict(found["complete"], candles)
        yield from per_partition(context, verdicts)

    return [indicators_partition_checks]
