"""Data-quality checks on the candle assets: unique keys, gaps, OHLC sanity, freshness.

Partitioned checks report one result per partition they evaluated (see :func:`per_partition`),
so a single-run backfill over 45 days shows 45 days passed or failed, each with its own figures.
"""

import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import polars as pl
from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetRecordsFilter,
    AssetsDefinition,
    DagsterInstance,
    MetadataValue,
    MultiPartitionsDefinition,
    Output,
    asset_check,
    multi_asset_check,
)

from ml.marketdata.quality import duplicate_keys, find_gaps, ohlc_violations, staleness_hours
from ml.marketdata.timeframes import day_bounds, timeframe_ms
from ml.marketdata.universe import tracked_symbols
from resources.exchanges.resource import ExchangeResource
from resources.warehouse.resource import WarehouseResource
from resources.warehouse.store import Warehouse

SAMPLE_ROWS = 20
CANDLE_KEY = ["exchange", "symbol", "timeframe", "ts"]


@dataclass(frozen=True)
class Verdict:
    """One check's result on one partition."""

    passed: bool
    metadata: dict[str, Any] = field(default_factory=dict)
    severity: AssetCheckSeverity = AssetCheckSeverity.ERROR


@dataclass(frozen=True)
class DayPartition:
    key: str
    exchange: str
    day: str


def partitions_in_time_order(context: AssetCheckExecutionContext,
                             partitions_def: MultiPartitionsDefinition) -> list[DayPartition]:
    """The step's partitions (one, or a single-run backfill's range), by day then exchange."""
    found = []
    for key in context.partition_keys:
        dims = partitions_def.get_partition_key_from_str(key).keys_by_dimension
        found.append(DayPartition(key, dims["exchange"], dims["date"]))
    return sorted(found, key=lambda p: (p.day, p.exchange))


def _target_record_type() -> type:
    """The record ``AssetCheckEvaluation.target_materialization_data`` takes. Dagster 1.13 names it
    in the evaluation's public signature without exporting it, so it is read from there."""
    hint = typing.get_type_hints(AssetCheckEvaluation)["target_materialization_data"]
    return next(t for t in typing.get_args(hint) if t is not type(None))


class _LatestMaterializations:
    """The latest materialization of each (asset, partition): the data a check evaluation judged."""

    def __init__(self, instance: DagsterInstance) -> None:
        self._instance = instance
        self._record = _target_record_type()
        self._found: dict[tuple[AssetKey, str], object] = {}

    def of(self, asset_key: AssetKey, partition: str) -> object:
        if (asset_key, partition) not in self._found:
            records = self._instance.fetch_materializations(
                AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition]), limit=1).records
            self._found[(asset_key, partition)] = self._record(
                storage_id=records[0].storage_id, run_id=records[0].event_log_entry.run_id,
                timestamp=records[0].timestamp) if records else None
        return self._found[(asset_key, partition)]


def per_partition(context: AssetCheckExecutionContext,
                  verdicts: Mapping[str, Mapping[str, Verdict]]) -> Iterator[AssetCheckEvaluation | Output]:
    """Each check's verdicts (check name -> partition key -> verdict) as one evaluation per partition,
    then the check's output.

    Dagster 1.13 gives the ``AssetCheckResult`` of a step that covers a partition range (a
    single-run backfill) no partition at all, so every partition it planned ends up "skipped" in
    the UI. An evaluation that names its partition and the materialization it judged lands on that
    partition; a failed blocking one still fails the step, as an ``AssetCheckResult`` would.
    """
    assets_def = context.op_execution_context.assets_def
    targets = _LatestMaterializations(context.instance)
    for key in sorted(context.selected_asset_check_keys, key=lambda k: k.name):
        spec = assets_def.get_spec_for_check_key(key)
        for partition, verdict in verdicts[key.name].items():
            yield AssetCheckEvaluation(
                asset_key=key.asset_key, check_name=key.name, passed=verdict.passed, metadata=verdict.metadata,
                severity=verdict.severity, blocking=spec.blocking, partition=partition,
                target_materialization_data=targets.of(key.asset_key, partition))
        yield Output(None, output_name=assets_def.get_output_name_for_asset_check_key(key))


def preview(frame: pl.DataFrame) -> MetadataValue:
    """The first rows of ``frame`` as a Markdown table for the UI."""
    head = frame.head(SAMPLE_ROWS)
    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * len(head.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in head.iter_rows()]
    return MetadataValue.md("\n".join(lines))


def offenders_verdict(bad: pl.DataFrame, *, count: str, rows: int, sample: str = "sample",
                      severity: AssetCheckSeverity = AssetCheckSeverity.ERROR) -> Verdict:
    """Passed when ``bad`` is empty; its size under ``count`` and its first rows under ``sample``."""
    metadata: dict[str, Any] = {count: bad.height, "rows_checked": rows}
    if bad.height:
        metadata[sample] = preview(bad)
    return Verdict(bad.is_empty(), metadata, severity)


def build_candle_checks(
    candles_asset: AssetsDefinition, *, timeframe: str, partitions_def: MultiPartitionsDefinition,
    default_top_n: int, freshness_hours: int,
) -> list[AssetChecksDefinition]:
    """The four checks of one candle asset: the three partitioned ones in one step that reads each
    day once (a check may still run alone: the step can be subset), and ``fresh``."""
    step = timedelta(milliseconds=timeframe_ms(timeframe))

    def gaps_rule(store: Warehouse, now: datetime) -> Callable[[pl.DataFrame, str, str], pl.DataFrame]:
        markets, declarations = store.read_markets(), store.read_declarations()
        listed: dict[str, dict[str, datetime]] = {}

        def rule(frame: pl.DataFrame, exchange: str, day: str) -> pl.DataFrame:
            start, end = day_bounds(day)
            closed_until = min(end, now - (now - start) % step) if now > start else start
            symbols = set(frame.get_column("symbol").unique().to_list()) | set(tracked_symbols(
                markets, declarations, exchange=exchange, timeframe=timeframe, top_n=default_top_n))
            gaps = find_gaps(frame, timeframe=timeframe, start=start, end=closed_until, symbols=sorted(symbols))
            first = listed.setdefault(exchange, store.first_candle_ts(exchange=exchange, timeframe=timeframe))
            listing = pl.DataFrame({"symbol": list(first), "first_ts": list(first.values())},
                                   schema={"symbol": pl.String, "first_ts": gaps.schema["gap_start"]})
            return (gaps.join(listing, on="symbol", how="left")
                    .filter(pl.col("first_ts").is_null() | (pl.col("gap_start") >= pl.col("first_ts")))
                    .drop("first_ts"))

        return rule

    def gaps_verdict(gaps: pl.DataFrame, rows: int) -> Verdict:
        verdict = offenders_verdict(gaps, count="gap_runs", rows=rows, sample="gaps", severity=AssetCheckSeverity.WARN)
        missing = int(gaps.get_column("missing").sum()) if gaps.height else 0
        return Verdict(verdict.passed, {**verdict.metadata, "missing_candles": missing}, verdict.severity)

    specs = [
        AssetCheckSpec("unique_keys", asset=candles_asset, partitions_def=partitions_def, blocking=True,
                       description="No two rows share (exchange, symbol, timeframe, ts)."),
        AssetCheckSpec("ohlc_sanity", asset=candles_asset, partitions_def=partitions_def, blocking=True,
                       description="low <= open, close <= high; volume >= 0; every value finite."),
        AssetCheckSpec("no_gaps", asset=candles_asset, partitions_def=partitions_def,
                       description="Every tracked symbol has every closed candle of the partition's day from "
                       "its first stored candle on (earlier means not listed yet). A gap the exchange really "
                       "has is reported here, never filled in."),
    ]

    @multi_asset_check(name=f"{candles_asset.key.to_user_string()}_partition_checks", specs=specs,
                       can_subset=True, description="Reads each day of the partition once for every check.")
    def partition_checks(context: AssetCheckExecutionContext, warehouse: WarehouseResource,
                         exchanges: ExchangeResource) -> Iterator[AssetCheckEvaluation | Output]:
        store = warehouse.store()
        wanted = {key.name for key in context.selected_asset_check_keys}
        gaps = gaps_rule(store, exchanges.clock()()) if "no_gaps" in wanted else None
        verdicts: dict[str, dict[str, Verdict]] = {name: {} for name in wanted}
        for partition in partitions_in_time_order(context, partitions_def):
            start, end = day_bounds(partition.day)
            frame = store.read_candles(timeframe=timeframe, exchange=partition.exchange, start=start, end=end)
            if "unique_keys" in wanted:
                verdicts["unique_keys"][partition.key] = offenders_verdict(
                    duplicate_keys(frame, CANDLE_KEY), count="duplicates", rows=frame.height)
            if "ohlc_sanity" in wanted:
                verdicts["ohlc_sanity"][partition.key] = offenders_verdict(
                    ohlc_violations(frame), count="violations", rows=frame.height)
            if gaps is not None:
                verdicts["no_gaps"][partition.key] = gaps_verdict(gaps(frame, partition.exchange, partition.day),
                                                                  frame.height)
        yield from per_partition(context, verdicts)

    @asset_check(asset=candles_asset, name="fresh",
                 description=f"The newest {timeframe} candle of every exchange closed less than "
                 f"{freshness_hours} h ago.")
    def fresh(warehouse: WarehouseResource, exchanges: ExchangeResource) -> AssetCheckResult:
        store = warehouse.store()
        now: datetime = exchanges.clock()()
        ages: dict[str, float | None] = {}
        for exchange in exchanges.exchanges:
            latest = store.latest_candle_ts(exchange=exchange, timeframe=timeframe)
            age = staleness_hours(latest + step if latest else None, now)
            ages[exchange] = None if age is None else round(age, 3)
        stale = {e: a for e, a in ages.items() if a is None or a > freshness_hours}
        return AssetCheckResult(passed=not stale, metadata={"hours_since_close": MetadataValue.json(ages),
                                                           "stale": MetadataValue.json(stale)})

    return [partition_checks, fresh]


def build_mtf_checks(mtf_asset: AssetsDefinition, *,
                     partitions_def: MultiPartitionsDefinition) -> list[AssetChecksDefinition]:
    """``unique_keys`` and ``ohlc_sanity`` over every multi-timeframe candle touching the partition's day."""
    from ml.marketdata.resample import MTF_TIMEFRAMES, bucket_bounds

    def touching(store: Warehouse, exchange: str, day: str) -> pl.DataFrame:
        start, end = day_bounds(day)
        frames = []
        for timeframe in MTF_TIMEFRAMES:
            first, _ = bucket_bounds(start, timeframe)
            _, last = bucket_bounds(end - timedelta(milliseconds=1), timeframe)
            frames.append(store.read_candles(timeframe=timeframe, exchange=exchange, start=first, end=last))
        return pl.concat(frames)

    def evaluate(context: AssetCheckExecutionContext, store: Warehouse, name: str, count: str,
                 rule: Callable[[pl.DataFrame], pl.DataFrame]) -> Iterator[AssetCheckEvaluation | Output]:
        verdicts = {}
        for partition in partitions_in_time_order(context, partitions_def):
            frame = touching(store, partition.exchange, partition.day)
            verdicts[partition.key] = offenders_verdict(rule(frame), count=count, rows=frame.height)
        yield from per_partition(context, {name: verdicts})

    @asset_check(asset=mtf_asset, name="unique_keys", partitions_def=partitions_def, blocking=True,
                 description="No two multi-timeframe candles share (exchange, symbol, timeframe, ts).")
    def mtf_unique_keys(context: AssetCheckExecutionContext,
                        warehouse: WarehouseResource) -> Iterator[AssetCheckEvaluation | Output]:
        yield from evaluate(context, warehouse.store(), "unique_keys", "duplicates",
                            lambda f: duplicate_keys(f, CANDLE_KEY))

    @asset_check(asset=mtf_asset, name="ohlc_sanity", partitions_def=partitions_def, blocking=True,
                 description="low <= open, close <= high; volume >= 0; every value finite, in every timeframe.")
    def mtf_ohlc_sanity(context: AssetCheckExecutionContext,
                        warehouse: WarehouseResource) -> Iterator[AssetCheckEvaluation | Output]:
        yield from evaluate(context, warehouse.store(), "ohlc_sanity", "violations", ohlc_violations)

    return [mtf_unique_keys, mtf_ohlc_sanity]
