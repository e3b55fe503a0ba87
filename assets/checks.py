"""Data-quality checks on the candle assets: unique keys, gaps, OHLC sanity, freshness."""


from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import polars as pl
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetsDefinition,
    MetadataValue,
    MultiPartitionsDefinition,
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


def _partitions(context: AssetCheckExecutionContext,
                partitions_def: MultiPartitionsDefinition) -> Iterator[tuple[str, str]]:
    for key in context.partition_keys:
        dims = partitions_def.get_partition_key_from_str(key).keys_by_dimension
        yield dims["exchange"], dims["date"]


def _preview(frame: pl.DataFrame) -> MetadataValue:
    """The first rows of ``frame`` as a Markdown table for the UI."""
    head = frame.head(SAMPLE_ROWS)
    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * len(head.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in head.iter_rows()]
    return MetadataValue.md("\n".join(lines))


def build_candle_checks(
    candles_asset: AssetsDefinition, *, timeframe: str, partitions_def: MultiPartitionsDefinition,
    default_top_n: int, freshness_hours: int,
) -> list[AssetChecksDefinition]:
    """The four checks of one candle asset: the three partitioned ones in one step that reads each
    day once (a check may still run alone: the step can be subset), and ``fresh``."""
    step = timedelta(milliseconds=timeframe_ms(timeframe))

    def per_partition(
        context: AssetCheckExecutionContext, store: Warehouse,
        rules: dict[str, Callable[[pl.DataFrame, str, str], pl.DataFrame]],
    ) -> dict[str, pl.DataFrame]:
        """Each rule's offending rows over the partitions, reading every day once."""
        found: dict[str, list[pl.DataFrame]] = {name: [] for name in rules}
        for exchange, day in _partitions(context, partitions_def):
            start, end = day_bounds(day)
            frame = store.read_candles(timeframe=timeframe, exchange=exchange, start=start, end=end)
            for name, rule in rules.items():
                bad = rule(frame, exchange, day)
                if bad.height:
                    found[name].append(bad.with_columns(pl.lit(exchange).alias("exchange"), pl.lit(day).alias("day")))
        return {name: pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
                for name, frames in found.items()}

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
                         exchanges: ExchangeResource) -> Iterator[AssetCheckResult]:
        store = warehouse.store()
        wanted = {key.name for key in context.selected_asset_check_keys}
        rules: dict[str, Callable[[pl.DataFrame, str, str], pl.DataFrame]] = {
            "unique_keys": lambda f, _e, _d: duplicate_keys(f, ["exchange", "symbol", "timeframe", "ts"]),
            "ohlc_sanity": lambda f, _e, _d: ohlc_violations(f),
        }
        if "no_gaps" in wanted:
            rules["no_gaps"] = gaps_rule(store, exchanges.clock()())
        found = per_partition(context, store, {name: rule for name, rule in rules.items() if name in wanted})
        for name in sorted(wanted):
            bad = found[name]
            sample = {"sample" if name != "no_gaps" else "gaps": _preview(bad)} if bad.height else {}
            if name == "no_gaps":
                missing = int(bad.get_column("missing").sum()) if bad.height else 0
                yield AssetCheckResult(check_name=name, passed=bad.is_empty(), severity=AssetCheckSeverity.WARN,
                                       metadata={"gap_runs": bad.height, "missing_candles": missing, **sample})
            else:
                count = "duplicates" if name == "unique_keys" else "violations"
                yield AssetCheckResult(check_name=name, passed=bad.is_empty(),
                                       metadata={count: bad.height, **sample})

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

    def evaluate(context: AssetCheckExecutionContext, store: Warehouse,
                 rule: Callable[[pl.DataFrame], pl.DataFrame]) -> pl.DataFrame:
        found = [rule(touching(store, exchange, day)) for exchange, day in _partitions(context, partitions_def)]
        found = [f for f in found if f.height]
        return pl.concat(found, how="diagonal_relaxed") if found else pl.DataFrame()

    @asset_check(asset=mtf_asset, name="unique_keys", partitions_def=partitions_def, blocking=True,
                 description="No two multi-timeframe candles share (exchange, symbol, timeframe, ts).")
    def mtf_unique_keys(context: AssetCheckExecutionContext, warehouse: WarehouseResource) -> AssetCheckResult:
        bad = evaluate(context, warehouse.store(),
                       lambda f: duplicate_keys(f, ["exchange", "symbol", "timeframe", "ts"]))
        return AssetCheckResult(passed=bad.is_empty(), metadata={"duplicates": bad.height})

    @asset_check(asset=mtf_asset, name="ohlc_sanity", partitions_def=partitions_def, blocking=True,
                 description="low <= open, close <= high; volume >= 0; every value finite, in every timeframe.")
    def mtf_ohlc_sanity(context: AssetCheckExecutionContext, warehouse: WarehouseResource) -> AssetCheckResult:
        bad = evaluate(context, warehouse.store(), ohlc_violations)
        return AssetCheckResult(passed=bad.is_empty(), metadata={"violations": bad.height,
                                **({"sample": _preview(bad)} if bad.height else {})})

    return [mtf_unique_keys, mtf_ohlc_sanity]
