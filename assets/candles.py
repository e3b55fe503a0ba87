"""Candle assets (``candles_1h``, ``candles_1m``): partitioned by day x exchange, symbols as rows."""


from collections import defaultdict
from collections.abc import Iterator

from dagster import (
    AssetExecutionContext,
    AssetMaterialization,
    AssetsDefinition,
    BackfillPolicy,
    Config,
    MaterializeResult,
    MultiPartitionsDefinition,
    asset,
)
from pydantic import Field

from assets.ingest import CandleIngestReport, ingest_candles, market_types_of
from assets.partition_report import PartitionOutcome, listed_failures, report_partitions
from assets.pools import exchange_slot
from ml.marketdata.universe import tracked_symbols
from resources.exchanges.resource import ExchangeResource
from resources.warehouse.resource import WarehouseResource


class CandlesConfig(Config):
    top_n: int | None = Field(
        default=None,
        description="track the N most liquid markets per exchange (0 = all); "
        "default from SIGNALWORKS_CANDLES_<TF>_SYMBOLS",
    )
    market_types: list[str] = Field(default_factory=lambda: ["spot"], description="spot and/or swap")


def days_by_exchange(context: AssetExecutionContext) -> dict[str, list[str]]:
    """The run's partitions (one, or a range in a single-run backfill) as exchange -> days."""
    partitions_def = context.assets_def.partitions_def
    assert isinstance(partitions_def, MultiPartitionsDefinition)
    grouped: dict[str, list[str]] = defaultdict(list)
    for key in context.partition_keys:
        dimensions = partitions_def.get_partition_key_from_str(key).keys_by_dimension
        grouped[dimensions["exchange"]].append(dimensions["date"])
    return {exchange: sorted(days) for exchange, days in grouped.items()}


def candle_outcomes(report: CandleIngestReport, **common: str) -> list[PartitionOutcome]:
    """One outcome per day of ``report``, with that day's own figures (``common`` added to each)."""
    outcomes = []
    for day in report.days:
        missing = None if day.stored else day.why_missing()
        outcomes.append(PartitionOutcome(day.day, report.exchange, missing=missing, metadata={
            **common, "rows": day.rows, "symbols_tracked": len(report.symbols),
            "symbols_fetched": len(day.fetched), "symbols_failed": len(day.failures),
            "symbols_not_attempted": len(day.not_attempted),
            "first_candle": day.first_ts.isoformat() if day.first_ts else "none",
            "last_candle": day.last_ts.isoformat() if day.last_ts else "none",
            "failures": listed_failures(day.failures),
        }))
    return outcomes


def exchange_problems(report: CandleIngestReport) -> list[str]:
    """What the step's failure message says about one exchange (nothing when it went well)."""
    problems = [str(report.unreachable)] if report.unreachable else []
    if report.all_failed:
        problems.append(f"{report.exchange}: no {report.timeframe} symbol stored on any day of the run")
    return [*problems, report.summary()] if problems else []


def build_candles_asset(
    timeframe: str, *, partitions_def: MultiPartitionsDefinition, default_top_n: int
) -> AssetsDefinition:
    """The ``candles_<timeframe>`` asset."""

    @asset(
        name=f"candles_{timeframe}",
        partitions_def=partitions_def,
        backfill_policy=BackfillPolicy.single_run(),
        deps=["markets"],
        group_name="market_data",
        kinds={"polars", "sql"},
        description=(
            f"Closed {timeframe} OHLCV candles of the tracked markets, one partition per UTC day "
            "and exchange. Re-materialising a partition replaces exactly its slice. A partition is "
            "reported materialised only when some of its data was stored; the step fails naming the others."
        ),
    )
    def _candles(
        context: AssetExecutionContext,
        config: CandlesConfig,
        exchanges: ExchangeResource,
        warehouse: WarehouseResource,
    ) -> Iterator[AssetMaterialization | MaterializeResult]:
        store = warehouse.store()
        top_n = default_top_n if config.top_n is None else config.top_n
        markets, declarations = store.read_markets(), store.read_declarations()
        outcomes: list[PartitionOutcome] = []
        problems: list[str] = []
        for exchange, days in days_by_exchange(context).items():
            symbols = tracked_symbols(markets, declarations, exchange=exchange, timeframe=timeframe,
                                      top_n=top_n, market_types=config.market_types)
            if not symbols:
                problems.append(f"no tracked {timeframe} symbols for {exchange}: materialise `markets` first")
                outcomes += [PartitionOutcome(day, exchange, missing="no tracked symbols") for day in days]
                continue
            client = exchanges.client(exchange, market_types=market_types_of(symbols), log=context.log)
            try:
                with exchange_slot(context.instance, exchange=exchange, run_id=context.run.run_id,
                                   step_key=context.get_step_execution_context().step.key, log=context.log):
                    report = ingest_candles(client, store, timeframe=timeframe, days=days, symbols=symbols,
                                            log=context.log, unreachable_after=exchanges.unreachable_after)
            finally:
                client.close()
            problems += exchange_problems(report)
            outcomes += candle_outcomes(report, timeframe=timeframe, warehouse=store.description)
        yield from report_partitions(context, outcomes, problems=problems)

    return _candles
