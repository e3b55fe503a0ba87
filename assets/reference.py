"""Unpartitioned market-data assets: ``markets``, ``derivatives``, ``coingecko_markets``."""


from datetime import UTC, datetime

import polars as pl
from dagster import AssetExecutionContext, Failure, MaterializeResult, MetadataValue, asset

from assets.ingest import ingest_derivatives, ingest_markets
from assets.pools import exchange_slot
from ml.marketdata.ath import ath_flags
from resources.coingecko_resource import CoinGeckoResource
from resources.exchanges.errors import MarketDataError
from resources.exchanges.resource import ExchangeResource
from resources.warehouse.resource import WarehouseResource


def _per_exchange_failures(context: AssetExecutionContext, what: str, failures: dict[str, str],
                           total: int) -> None:
    for exchange, error in failures.items():
        context.log.error("%s failed on %s: %s", what, exchange, error)
    if total and len(failures) == total:
        raise Failure(f"{what} failed on every exchange", metadata={"failures": MetadataValue.json(failures)})


@asset(group_name="market_data", kinds={"sql"})
def markets(context: AssetExecutionContext, exchanges: ExchangeResource,
            warehouse: WarehouseResource) -> MaterializeResult:
    """The universe per exchange (spot and USDT perpetuals) with 24h quote volume and liquidity
    rank. One exchange failing keeps its previous universe and never stops the others."""
    store = warehouse.store()
    counts: dict[str, int] = {}
    failures: dict[str, str] = {}
    for exchange in exchanges.exchanges:
        client = exchanges.client(exchange, log=context.log)
        try:
            with exchange_slot(context.instance, exchange=exchange, run_id=context.run.run_id,
                               step_key=context.get_step_execution_context().step.key, log=context.log):
                counts[exchange] = ingest_markets(client, store).height
        except MarketDataError as error:
            failures[exchange] = str(error)
        finally:
            client.close()
    _per_exchange_failures(context, "markets", failures, len(exchanges.exchanges))
    declared = store.read_declarations().height
    return MaterializeResult(metadata={"markets": MetadataValue.json(counts), "declared": declared,
                                       "failures": MetadataValue.json(failures),
                                       "rows": sum(counts.values())})


@asset(group_name="market_data", deps=[markets], kinds={"sql"})
def derivatives(context: AssetExecutionContext, exchanges: ExchangeResource,
                warehouse: WarehouseResource) -> MaterializeResult:
    """Funding rate, next funding time, mark price and open interest of every active USDT
    perpetual, observed hourly (``ts`` = the hour of observation)."""
    store = warehouse.store()
    universe = store.read_markets()
    rows: dict[str, int] = {}
    failures: dict[str, str] = {}
    symbol_failures: dict[str, str] = {}
    for exchange in exchanges.exchanges:
        perps = universe.filter((pl.col("exchange") == exchange) & (pl.col("market_type") == "swap")
                                & pl.col("active")).get_column("symbol").to_list()
        if not perps:
            continue
        client = exchanges.client(exchange, market_types=("swap",), log=context.log)
        try:
            with exchange_slot(context.instance, exchange=exchange, run_id=context.run.run_id,
                               step_key=context.get_step_execution_context().step.key, log=context.log):
                frame, errors = ingest_derivatives(client, store, symbols=perps)
            rows[exchange] = frame.height
            symbol_failures.update({f"{exchange} {s}": e for s, e in errors.items()})
            if not frame.height:
                failures[exchange] = f"all {len(perps)} perpetuals failed"
        except MarketDataError as error:
            failures[exchange] = str(error)
        finally:
            client.close()
    _per_exchange_failures(context, "derivatives", failures, len(set(rows) | set(failures)))
    return MaterializeResult(metadata={"rows": sum(rows.values()), "per_exchange": MetadataValue.json(rows),
                                       "failed_symbols": MetadataValue.json(symbol_failures)})


def build_coingecko_asset(top_n: int):
    @asset(name="coingecko_markets", group_name="market_data", kinds={"sql"})
    def coingecko_markets(context: AssetExecutionContext, coingecko: CoinGeckoResource,
                          warehouse: WarehouseResource) -> MaterializeResult:
        """A snapshot of the top coins by market cap (price, market cap, rank, FDV, ATH, ATL) with
        ATH proximity flags. ``within_X_pct_of_ath`` is true when the drawdown from the all-time
        high, ``(ath - price) / ath * 100``, is at most X (a price above the recorded ATH counts as
        within every band); ``days_since_ath`` = (snapshot time - ATH time) in days."""
        client = coingecko.client()
        try:
            snapshot = client.top_markets(top_n)
        finally:
            client.close()
        if snapshot.is_empty():
            raise Failure("CoinGecko returned no coins")
        flagged = ath_flags(snapshot)
        snapshot_ts = flagged.get_column("snapshot_ts").max()
        rows = warehouse.store().replace_coingecko_snapshot(flagged, snapshot_ts=snapshot_ts)
        near = int(flagged.get_column("within_10pct_of_ath").sum() or 0)
        context.log.info("CoinGecko snapshot %s: %d coins, %d within 10%% of ATH", snapshot_ts, rows, near)
        return MaterializeResult(metadata={"rows": rows, "snapshot_ts": str(snapshot_ts),
                                           "within_10pct_of_ath": near,
                                           "fetched_at": datetime.now(UTC).isoformat()})

    return coingecko_markets
