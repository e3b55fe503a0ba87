"""``candles_mtf``: 2h, 4h, 12h, 1d, 3d, 1w and 1M candles built from ``candles_1h``."""

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
    MultiPartitionsDefinition,
    asset,
)

from assets.candles import days_by_exchange
from ml.marketdata.resample import MTF_TIMEFRAMES, bucket_bounds, resample, span_for_day
from ml.marketdata.timeframes import day_bounds
from resources.exchanges.resource import ExchangeResource
from resources.warehouse.resource import WarehouseResource
from resources.warehouse.store import Warehouse


@dataclass
class MtfReport:
    rows: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    incomplete: list[dict[str, Any]] = field(default_factory=list)
    pending: int = 0


def build_multi_timeframe(warehouse: Warehouse, *, exchange: str, days: Iterable[str], now: datetime,
                          timeframes: tuple[str, ...] = MTF_TIMEFRAMES) -> MtfReport:
    """Recompute every bucket of ``timeframes`` that touches one of ``days`` on ``exchange``.

    Days are processed a calendar month at a time: the 1h candles of the month (plus the weeks
    overlapping its edges) are read once, so memory is bounded by about five weeks of 1h candles.
    Only complete buckets are written; a bucket that has closed but lacks hours is reported in
    ``incomplete`` and any candle previously stored for it is removed (never built from fewer hours).
    """
    report = MtfReport()
    for _, month_days in groupby(sorted(days), key=lambda d: d[:7]):
        chunk = list(month_days)
        first_day, _ = day_bounds(chunk[0])
        last_day, _ = day_bounds(chunk[-1])
        span_start, _ = span_for_day(first_day, timeframes)
        _, span_end = span_for_day(last_day, timeframes)
        hourly = warehouse.read_candles(timeframe="1h", exchange=exchange, start=span_start, end=span_end)
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
            report.incomplete.extend(
                {**row, "ts": row["ts"].isoformat()} for row in closed.filter(
                    _closed_before(now, timeframe)).iter_rows(named=True))
    return report


def _closed_before(now: datetime, timeframe: str) -> pl.Expr:
    from ml.marketdata.resample import bucket_end

    return bucket_end(pl.col("ts"), timeframe) <= now


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
        rows: dict[str, int] = defaultdict(int)
        incomplete: list[dict[str, Any]] = []
        for exchange, days in days_by_exchange(context).items():
            report = build_multi_timeframe(store, exchange=exchange, days=days, now=now)
            for timeframe, count in report.rows.items():
                rows[timeframe] += count
            incomplete.extend({"exchange": exchange, **row} for row in report.incomplete)
        if incomplete:
            context.log.warning("%d closed buckets lack 1h candles and were not built", len(incomplete))
        return MaterializeResult(metadata={
            "rows": sum(rows.values()), "rows_by_timeframe": MetadataValue.json(dict(rows)),
            "incomplete_buckets": len(incomplete), "incomplete": MetadataValue.json(incomplete[:200]),
        })

    return candles_mtf
