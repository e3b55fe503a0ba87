"""``indicators``: the full indicator suite for every stored timeframe, per day x exchange.

A partition (UTC day D) holds the indicators of every candle that *closes* during D: the 1m, 5m,
15m and 1h candles opening on D, the 1d candle of D, the 1w candle of the week ending on D (a Sunday),
the 1M candle of the month ending on D. It reads ``lookback_bars`` candles before them, so its
values equal those of one computation over the whole history (to 1e-9 relative; OBV, a running
total, matches in its changes only).
"""

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

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
from ml.indicators.params import IndicatorParams
from ml.indicators.schema import lookback_bars
from ml.marketdata.resample import bucket_bounds
from ml.marketdata.timeframes import day_bounds, timeframe_ms
from resources.warehouse.resource import WarehouseResource
from resources.warehouse.store import Warehouse

#: Highest first: each timeframe's RSI feeds the divergence of the one below it.
TIMEFRAMES: tuple[str, ...] = ("1M", "1w", "3d", "1d", "12h", "4h", "2h", "1h", "15m", "5m", "1m")
HIGHER: dict[str, str] = {"1m": "1h", "5m": "15m", "15m": "1h", "1h": "4h", "2h": "12h", "4h": "1d", "12h": "1d", "1d": "1w",
                          "3d": "1w", "1w": "1M"}
MONTH = timedelta(days=31)
#: Symbols whose indicators are computed together: 100 symbols' 2963-bar 1h look-back is ~300k
#: candles and ~100 MB of indicator columns; 400 at once held 1.7 GB.
SYMBOLS_PER_BATCH = 100


def closing_slice(day: str, timeframe: str) -> tuple[datetime, datetime]:
    """Open-time range ``[start, end)`` of the ``timeframe`` candles that close during ``day``."""
    day_start, day_end = day_bounds(day)
    if timeframe == "1M":
        month_start, month_end = bucket_bounds(day_end - timedelta(milliseconds=1), "1M")
        return (month_start, month_start + timedelta(milliseconds=1)) if month_end == day_end else (day_end, day_end)
    length = timedelta(milliseconds=timeframe_ms(timeframe))
    return day_start - length + timedelta(milliseconds=1), day_end - length + timedelta(milliseconds=1)


def build_indicators(warehouse: Warehouse, *, exchange: str, days: Iterable[str],
                     params: IndicatorParams | None = None) -> dict[str, int]:
    """Compute and store the indicators of ``exchange`` for each day; returns rows per timeframe."""
    rows: dict[str, int] = defaultdict(int)
    for by_timeframe in build_indicators_by_day(warehouse, exchange=exchange, days=days, params=params).values():
        for timeframe, count in by_timeframe.items():
            rows[timeframe] += count
    return dict(rows)


def build_indicators_by_day(warehouse: Warehouse, *, exchange: str, days: Iterable[str],
                            params: IndicatorParams | None = None,
                            batch_symbols: int = SYMBOLS_PER_BATCH) -> dict[str, dict[str, int]]:
    """Compute and store the indicators of ``exchange`` for each day; returns day -> rows per timeframe.

    Symbols are computed ``batch_symbols`` at a time (every timeframe of a batch, then the next
    batch): each symbol's indicators depend on its own candles only, so the values are the same,
    and the step's memory is bounded by a batch's look-back instead of growing with the universe.
    Each batch's rows of a timeframe are replaced in one transaction.
    """
    from ml.indicators.engine import compute_indicators

    params = params or IndicatorParams()
    rsi = f"rsi_{params.divergence_rsi}"
    symbols = warehouse.candle_symbols(exchange=exchange, timeframes=TIMEFRAMES)
    by_day: dict[str, dict[str, int]] = {}
    for day in sorted(days):
        rows = by_day.setdefault(day, {})
        for batch in (symbols[i:i + batch_symbols] for i in range(0, len(symbols), batch_symbols)):
            higher_rsi: dict[str, pl.DataFrame] = {}  # only the RSI the timeframe below reads
            for timeframe in TIMEFRAMES:
                start, end = closing_slice(day, timeframe)
                length = MONTH if timeframe == "1M" else timedelta(milliseconds=timeframe_ms(timeframe))
                candles = warehouse.read_candles(timeframe=timeframe, exchange=exchange, symbols=batch,
                                                 start=start - length * lookback_bars(params), end=max(end, start))
                if candles.is_empty():
                    continue
                frame = compute_indicators(candles, params=params,
                                           higher_timeframe_rsi=higher_rsi.get(HIGHER.get(timeframe, "")))
                higher_rsi[timeframe] = frame.select("exchange", "symbol", "timeframe", "ts", rsi)
                if end > start:
                    inside = frame.filter((pl.col("ts") >= start) & (pl.col("ts") < end))
                    stored = warehouse.replace_indicators(inside, exchange=exchange, timeframe=timeframe, start=start,
                                                          end=end, symbols=candles.get_column("symbol").unique().to_list())
                    rows[timeframe] = rows.get(timeframe, 0) + stored
    return by_day


def build_indicators_asset(partitions_def: MultiPartitionsDefinition) -> AssetsDefinition:
    @asset(
        name="indicators",
        partitions_def=partitions_def,
        backfill_policy=BackfillPolicy.single_run(),
        deps=["candles_1h", "candles_1m", "candles_mtf", "candles_subhour"],
        group_name="indicators",
        kinds={"polars", "sql"},
        description="EMA/SMA/EHMA, MACD, ADX, Supertrend, RSI, Bollinger, ATR, OBV, VWAP, volume ratios, TD "
        "Sequential, order blocks, fair value gaps and derived metrics for every stored timeframe "
        "(definitions: ml/indicators). A day's partition holds the candles that close that day.",
    )
    def indicators(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
        store = warehouse.store()
        params = IndicatorParams()
        for exchange, days in days_by_exchange(context).items():
            by_day = build_indicators_by_day(store, exchange=exchange, days=days, params=params)
            for day, rows in sorted(by_day.items()):
                context.add_asset_metadata(partition_key=MultiPartitionKey({"date": day, "exchange": exchange}),
                                           metadata={"rows": sum(rows.values()),
                                                     "rows_by_timeframe": MetadataValue.json(rows)})
            context.log.info("%s: %d indicator rows over %d days", exchange,
                             sum(sum(rows.values()) for rows in by_day.values()), len(days))
        return MaterializeResult(metadata={"params_version": params.version, "lookback_bars": lookback_bars(params)})

    return indicators
