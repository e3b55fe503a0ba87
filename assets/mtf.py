"""``candles_mtf``: 2h, 4h, 12h, 1d, 3d, 1w and 1M candles built from ``candles_1h``."""

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    asset,
)

from assets.candles import days_by_exchange
from ml.marketdata.resample import MTF_TIMEFRAMES, bucket_bounds, bucket_end, resample, span_for_day
from ml.marketdata.timeframes import day_bounds
from resources.exchanges.resource import ExchangeResource
from resources.warehouse.resource import WarehouseResource
from resources.warehouse.store import Warehouse


@dataclass
class MtfDay:
    """One day's own figures: its stored 1h candles and the buckets of each timeframe covering it."""

    hourly_candles: int = 0
    symbols: int = 0
    candles_by_timeframe: dict[str, int] = field(default_factory=dict)
    incomplete: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class MtfReport:
    rows: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    incomplete: list[dict[str, Any]] = field(default_factory=list)
    pending: int = 0
    days: dict[str, MtfDay] = field(default_factory=dict)


def _covering(frame: pl.DataFrame, timeframe: str, day: str) -> pl.DataFrame:
    """Rows of ``frame`` (bucket open times ``ts``) whose ``timeframe`` bucket overlaps ``day``."""
    start, end = day_bounds(day)
    return frame.filter((pl.col("ts") < end) & (bucket_end(pl.col("ts"), timeframe) > start))


def build_multi_timeframe(warehouse: Warehouse, *, exchange: str, days: Iterable[str], now: datetime,
                          timeframes: tuple[str, ...] = MTF_TIMEFRAMES) -> MtfReport:
    """Recompute every bucket of ``timeframes`` that touches one of ``days`` on ``exchange``.

    Days are processed a calendar month at a time: the 1h candles of the month (plus the weeks
    overlapping its edges) are read once, so memory is bounded by about five weeks of 1h candles.
    Only complete buckets are written; a bucket that has closed but lacks hours is reported in
    ``incomplete`` and any candle previously stored for it is removed (never built from fewer hours).
    ``days`` holds each day's own figures (its 1h candles, the candles of each timeframe covering it).
    """
    report = MtfReport()
    for _, month_days in groupby(sorted(days), key=lambda d: d[:7]):
        chunk = list(month_days)
        first_day, _ = day_bounds(chunk[0])
        last_day, _ = day_bounds(chunk[-1])
        span_start, _ = span_for_day(first_day, timeframes)
        _, span_end = span_for_day(last_day, timeframes)
        hourly = warehouse.read_candles(timeframe="1h", exchange=exchange, start=span_start, end=span_end)
        for day in chunk:
            start, end = day_bounds(day)
            own = hourly.filter((pl.col("ts") >= start) & (pl.col("ts") < end))
            report.days[day] = MtfDay(hourly_candles=own.height, symbols=own.get_column("symbol").n_unique())
        symbols = hourly.get_column("symbol").unique().sort().to_list()
        if not symbols:
            continue
        for timeframe in timeframes:
            slice_start, _ = bucket_bounds(first_day, timeframe)
            _, slice_end = bucket_bounds(last_day + timedelta(days=1) - timedelta(milliseconds=1), timeframe)
            window = hourly.filter((pl.col("ts") >= slice_start) & (pl.col("ts") < slice_end))
            complete, incomplete = resample(window, timeframe, now=now)
            report.rows[timeframe] += warehouse.replace_candles(
                complete, exchange=exchange, timeframe=timeframe, start=slice_start, end=slice_end, symbols=symbols)
            closed = incomplete.filter(
                pl.col("hours_present") < pl.col("hours_expected"))
            still_open = incomplete.height - closed.height
            report.pending += still_open
            lacking = closed.filter(_closed_before(now, timeframe))
            report.incomplete.extend(_listed(lacking))
            for day in chunk:
                report.days[day].candles_by_timeframe[timeframe] = _covering(complete, timeframe, day).height
                report.days[day].incomplete.extend(_listed(_covering(lacking, timeframe, day)))
    return report


def _listed(buckets: pl.DataFrame) -> list[dict[str, Any]]:
    return [{**row, "ts": row["ts"].isoformat()} for row in buckets.iter_rows(named=True)]


def _closed_before(now: datetime, timeframe: str) -> pl.Expr:
    return bucket_end(pl.col("ts"), timeframe) <= now


def _day_metadata(own: MtfDay) -> dict[str, Any]:
    return {
        "rows": sum(own.candles_by_timeframe.values()), "hourly_candles": own.hourly_candles, "symbols": own.symbols,
        "candles_by_timeframe": MetadataValue.json(own.candles_by_timeframe),
        "incomplete_buckets": len(own.incomplete), "incomplete": MetadataValue.json(own.incomplete[:200]),
    }


def build_mtf_asset(partitions_def: MultiPartitionsDefinition) -> AssetsDefinition:
    @asset(
        name="candles_mtf",
        partitions_def=partitions_def,
        backfill_policy=BackfillPolicy.single_run(),
        deps=["candles_1h"],
        group_name="market_data",
        kinds={"polars", "sql"},
        description="2h, 4h, 12h, 1d, 3d, 1w and 1M candles aggregated from candles_1h (stored in the "
        "candles table under their timeframe). Buckets are UTC-aligned (weeks on Monday, months on the "
        "1st, 3d on the Unix epoch); only complete buckets are stored, incomplete ones are reported.",
    )
    def candles_mtf(context: AssetExecutionContext, exchanges: ExchangeResource,
                    warehouse: WarehouseResource) -> MaterializeResult:
        store, now = warehouse.store(), exchanges.clock()()
        for exchange, days in days_by_exchange(context).items():
            report = build_multi_timeframe(store, exchange=exchange, days=days, now=now)
            for day, own in sorted(report.days.items()):
                context.add_asset_metadata(partition_key=MultiPartitionKey({"date": day, "exchange": exchange}),
                                           metadata=_day_metadata(own))
            incomplete = [{"exchange": exchange, **row} for row in report.incomplete]
            if incomplete:
                context.log.warning("%s: %d closed buckets lack 1h candles and were not built: %s", exchange,
                                    len(incomplete), json.dumps(incomplete[:20]))
            context.log.info("%s: %d candles over %d days (%s)", exchange, sum(report.rows.values()), len(days),
                             dict(report.rows))
        return MaterializeResult()

    return candles_mtf
