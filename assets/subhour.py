"""``candles_subhour``: 5m and 15m candles built from the stored 1m candles.

The rules are ``candles_mtf``'s (:mod:`ml.marketdata.resample`): UTC buckets aligned to the epoch,
only *complete* buckets (all 5 or 15 minutes present and the bucket closed) are candles; a closed
bucket lacking minutes is reported and any candle stored for it removed. The partitions are
``candles_1m``'s (day x exchange) and the symbols are the ones stored at 1m, so the sub-hour
timeframes exist exactly for the symbols tracked at 1m. The live path
(:mod:`assets.market_signals`) calls :func:`build_subhour_candles` for the last minutes only.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
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
from ml.marketdata.resample import SUBHOUR_TIMEFRAMES, bucket_bounds, resample
from ml.marketdata.timeframes import day_bounds
from resources.exchanges.resource import ExchangeResource
from resources.warehouse.resource import WarehouseResource
from resources.warehouse.store import Warehouse


@dataclass
class SubhourReport:
    """What one build wrote: candles per timeframe, closed buckets lacking minutes, open buckets."""

    minute_candles: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    incomplete: list[dict[str, Any]] = field(default_factory=list)
    pending: int = 0


def build_subhour_candles(warehouse: Warehouse, *, exchange: str, start: datetime, end: datetime, now: datetime,
                          symbols: Sequence[str] | None = None,
                          timeframes: tuple[str, ...] = SUBHOUR_TIMEFRAMES) -> SubhourReport:
    """Rebuild every 5m / 15m bucket of ``exchange`` overlapping ``[start, end)`` from stored 1m candles.

    ``symbols``: only these (default: every symbol with 1m candles in the range). Each bucket is
    written whole (the range is widened to bucket boundaries), so a bucket is never built from
    part of its minutes; a write that finds the same candles stored rewrites nothing.
    """
    report = SubhourReport()
    widest = max(timeframes, key=lambda tf: bucket_bounds(start, tf)[1] - bucket_bounds(start, tf)[0])
    read_start = bucket_bounds(start, widest)[0]
    read_end = bucket_bounds(end - timedelta(milliseconds=1), widest)[1]
    minutes = warehouse.read_candles(timeframe="1m", exchange=exchange, symbols=symbols, start=read_start,
                                     end=read_end)
    report.minute_candles = minutes.height
    listed = list(symbols) if symbols is not None else minutes.get_column("symbol").unique().sort().to_list()
    if not listed:
        return report
    for timeframe in timeframes:
        slice_start = bucket_bounds(start, timeframe)[0]
        slice_end = bucket_bounds(end - timedelta(milliseconds=1), timeframe)[1]
        window = minutes.filter((pl.col("ts") >= slice_start) & (pl.col("ts") < slice_end))
        complete, incomplete = resample(window, timeframe, now=now, source="1m")
        report.rows[timeframe] = warehouse.replace_candles(complete, exchange=exchange, timeframe=timeframe,
                                                           start=slice_start, end=slice_end, symbols=listed)
        lacking = incomplete.filter((pl.col("hours_present") < pl.col("hours_expected"))
                                    & (pl.col("ts") + pl.duration(minutes=_minutes(timeframe)) <= now))
        report.pending += incomplete.height - lacking.height
        report.incomplete.extend({**row, "ts": row["ts"].isoformat(), "minutes_present": row.pop("hours_present"),
                                  "minutes_expected": row.pop("hours_expected")}
                                 for row in lacking.iter_rows(named=True))
    return report


def _minutes(timeframe: str) -> int:
    return {"5m": 5, "15m": 15, "1h": 60}[timeframe]


def build_subhour_asset(partitions_def: MultiPartitionsDefinition) -> AssetsDefinition:
    @asset(
        name="candles_subhour",
        partitions_def=partitions_def,
        backfill_policy=BackfillPolicy.single_run(),
        deps=["candles_1m"],
        group_name="market_data",
        kinds={"polars", "sql"},
        description="5m and 15m candles aggregated from candles_1m for the symbols tracked at 1m (stored in the "
        "candles table under their timeframe). Epoch-aligned UTC buckets; only complete buckets are stored, "
        "closed buckets lacking minutes are reported.",
    )
    def candles_subhour(context: AssetExecutionContext, exchanges: ExchangeResource,
                        warehouse: WarehouseResource) -> MaterializeResult:
        store, now = warehouse.store(), exchanges.clock()()
        for exchange, days in days_by_exchange(context).items():
            for day in days:
                start, end = day_bounds(day)
                report = build_subhour_candles(store, exchange=exchange, start=start, end=end, now=now)
                context.add_asset_metadata(
                    partition_key=MultiPartitionKey({"date": day, "exchange": exchange}),
                    metadata={"rows": sum(report.rows.values()), "minute_candles": report.minute_candles,
                              "candles_by_timeframe": MetadataValue.json(report.rows),
                              "open_buckets": report.pending, "incomplete_buckets": len(report.incomplete),
                              "incomplete": MetadataValue.json(report.incomplete[:200])})
                if report.incomplete:
                    context.log.warning("%s %s: %d closed buckets lack 1m candles and were not built: %s",
                                        exchange, day, len(report.incomplete), json.dumps(report.incomplete[:20]))
            context.log.info("%s: sub-hour candles over %d days", exchange, len(days))
        return MaterializeResult()

    return candles_subhour
