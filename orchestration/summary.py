"""A readable summary of what the warehouse holds (printed by ``signalworks demo``)."""

from __future__ import annotations

import os

import polars as pl
from dagster import DagsterInstance

from orchestration.settings import Settings
from resources.warehouse.store import Warehouse

QUERIES: dict[str, str] = {
    "candles by exchange and timeframe": (
        "SELECT exchange, timeframe, COUNT(DISTINCT symbol) AS symbols, COUNT(*) AS candles, "
        "MIN(ts) AS first_open, MAX(ts) AS last_open FROM candles GROUP BY exchange, timeframe "
        "ORDER BY exchange, timeframe"
    ),
    "indicator rows by timeframe": (
        "SELECT timeframe, COUNT(DISTINCT symbol) AS symbols, COUNT(*) AS rows FROM indicators "
        "GROUP BY timeframe ORDER BY timeframe"
    ),
    "universe by exchange": (
        "SELECT exchange, market_type, COUNT(*) AS markets, SUM(CASE WHEN active THEN 1 ELSE 0 END) "
        "AS active FROM markets GROUP BY exchange, market_type ORDER BY exchange, market_type"
    ),
}


def _table(frame: pl.DataFrame, title: str) -> None:
    print(f"{title}:")
    with pl.Config(tbl_rows=20, tbl_cols=12, tbl_hide_dataframe_shape=True, tbl_width_chars=140,
                   tbl_hide_column_data_types=True, float_precision=6):
        print(frame if frame.height else "  (empty)")
    print()


def _query(store: Warehouse, sql: str) -> pl.DataFrame:
    with store.engine.connect() as connection:
        frame = pl.read_database(sql, connection)
    for column in ("first_open", "last_open"):
        if column in frame.columns and frame.schema[column] in (pl.Int64, pl.Int32):
            frame = frame.with_columns(pl.col(column).cast(pl.Datetime("ms", "UTC")))
    return frame


def print_summary(settings: Settings, instance: DagsterInstance) -> None:
    store = Warehouse.from_url(settings.warehouse_url)
    for title, sql in QUERIES.items():
        _table(_query(store, sql), title.capitalize())
    exchange = settings.exchanges[0]
    btc = store.read_candles(timeframe="1h", exchange=exchange, symbols=["BTC/USDT"])
    _table(btc.tail(3).drop("exchange", "timeframe"), f"Latest 1h candles, BTC/USDT on {exchange}")
    four_hourly = store.read_candles(timeframe="4h", exchange=exchange, symbols=["ETH/USDT"])
    _table(four_hourly.tail(4).drop("exchange"), f"Latest complete 4h candles, ETH/USDT on {exchange} (built from 1h)")
    indicators = store.read_indicators(timeframe="4h", exchange=exchange, symbols=["BTC/USDT"])
    if indicators.height:
        _table(indicators.tail(3).select("ts", "ema_21", "ema_200", "rsi_14", "macd_hist", "adx_14", "bb_position",
                                         "supertrend_direction", "td_up", "diff_ema200_pct"),
               f"Indicators on 4h candles, BTC/USDT on {exchange}")
    derivatives = store.read_derivatives()
    if derivatives.height:
        latest = derivatives.filter(pl.col("ts") == pl.col("ts").max())
        _table(latest.sort("open_interest_value", descending=True, nulls_last=True)
               .select("exchange", "symbol", "funding_rate", "mark_price", "open_interest_value").head(5),
               "Perpetuals by open interest (latest hour)")
    coingecko = store.read_coingecko()
    if coingecko.height:
        latest = coingecko.filter(pl.col("snapshot_ts") == pl.col("snapshot_ts").max())
        _table(latest.sort("market_cap_rank").select(
            "market_cap_rank", "symbol", "price_usd", "market_cap_usd", "ath_usd", "days_since_ath",
            "within_10pct_of_ath").head(8),
            f"CoinGecko snapshot {latest.get_column('snapshot_ts')[0]} ({latest.height} coins), top 8")
        near = latest.filter(pl.col("within_5pct_of_ath")).height
        print(f"Coins within 5 % of their ATH: {near}\n")
    _print_checks(instance)
    print(f"Warehouse: {store.description}")
    print(f"Dagster instance: {os.environ.get('DAGSTER_HOME', '(ephemeral)')}  -> `make ui` opens it at http://127.0.0.1:3000")


#: The checks the summary reports, per asset (partitioned per day x exchange unless noted).
CHECKS: dict[str, tuple[str, ...]] = {
    "candles_1h": ("unique_keys", "ohlc_sanity", "no_gaps", "fresh"),
    "candles_1m": ("unique_keys", "ohlc_sanity", "no_gaps", "fresh"),
    "candles_mtf": ("unique_keys", "ohlc_sanity"),
    "indicators": ("unique_keys", "finite_values", "complete"),
}


def check_outcomes(instance: DagsterInstance) -> pl.DataFrame:
    """Per check, how many partitions its latest result passed, failed, or left unevaluated.

    "not evaluated" is a check that was planned in a run that ended before it ran (a failed or
    interrupted run: Dagster shows it as skipped); "running" one whose run is still going. The
    fresh checks are unpartitioned and count once.
    """
    from dagster import AssetCheckKey, AssetKey

    rows = []
    finished: dict[str, bool] = {}
    for asset, checks in CHECKS.items():
        for check in checks:
            key = AssetCheckKey(AssetKey(asset), check)
            counts = dict.fromkeys(("passed", "failed", "not evaluated", "running"), 0)
            for info in instance.event_log_storage.get_asset_check_partition_info([key]):
                status = info.latest_execution_status.value
                if status == "PLANNED":
                    run_id = info.latest_planned_run_id
                    if run_id not in finished:
                        run = instance.get_run_by_id(run_id)
                        finished[run_id] = run is None or run.is_finished
                    counts["not evaluated" if finished[run_id] else "running"] += 1
                else:
                    counts["passed" if status == "SUCCEEDED" else "failed"] += 1
            if any(counts.values()):
                rows.append({"asset": asset, "check": check, **counts})
    return pl.DataFrame(rows)


def _print_checks(instance: DagsterInstance) -> None:
    outcomes = check_outcomes(instance)
    if outcomes.height:
        _table(outcomes, "Latest asset checks (partitions = days x exchanges; not evaluated = planned in a run "
               "that ended first)")
