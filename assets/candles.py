"""Candle assets (``candles_1h``, ``candles_1m``): partitioned by day x exchange, symbols as rows."""


from collections import defaultdict
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    BackfillPolicy,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    MultiPartitionsDefinition,
    asset,
)
from pydantic import Field

from assets.ingest import ingest_candles
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
            "and exchange. Re-materialising a partition replaces exactly its slice."
        ),
    )
    def _candles(
        context: AssetExecutionContext,
        config: CandlesConfig,
        exchanges: ExchangeResource,
        warehouse: WarehouseResource,
    ) -> MaterializeResult:
        store = warehouse.store()
        top_n = default_top_n if config.top_n is None else config.top_n
        markets, declarations = store.read_markets(), store.read_declarations()
        metadata: dict[str, Any] = {"timeframe": timeframe, "warehouse": store.description}
        total_rows, failures, fetched, symbols_total = 0, {}, 0, 0
        for exchange, days in days_by_exchange(context).items():
            symbols = tracked_symbols(markets, declarations, exchange=exchange, timeframe=timeframe,
                                      top_n=top_n, market_types=config.market_types)
            if not symbols:
                raise Failure(f"no tracked {timeframe} symbols for {exchange}: materialise `markets` first")
            client = exchanges.client(exchange)
            try:
                with exchange_slot(context.instance, exchange=exchange, run_id=context.run.run_id,
                                   step_key=context.get_step_execution_context().step.key, log=context.log):
                    report = ingest_candles(client, store, timeframe=timeframe, days=days, symbols=symbols)
            finally:
                client.close()
            context.log.info("%s: %d rows for %d/%d symbols over %d days", exchange, report.rows,
                             len(report.fetched), len(symbols), len(report.days))
            if report.all_failed:
                raise Failure(f"every {timeframe} symbol failed on {exchange}",
                              metadata={"failures": MetadataValue.json(report.failures)})
            total_rows += report.rows
            fetched += len(report.fetched)
            symbols_total += len(symbols)
            failures.update({f"{exchange} {k}": v for k, v in report.failures.items()})
            metadata[f"{exchange} range"] = f"{report.first_ts} .. {report.last_ts}"
        metadata.update(
            rows=total_rows, symbols_tracked=symbols_total, symbols_fetched=fetched,
            failed_symbols=len(failures), failures=MetadataValue.json(failures),
        )
        return MaterializeResult(metadata=metadata)

    return _candles
