"""Parity: the signals a backtest produces over a range equal the signals the live path stored when the
same candles arrived day by day through Dagster.

Live: real 1m candles (freqtrade's ``UNITTEST_BTC-1m``, 2017-11-05 .. 11-14, gaps included) arrive
one day at a time, with that day's 1h candles (the 1h schedule's; built here from the same minutes,
complete hours only, as the exchange has no others for this pair). After each day
``market_signals_job`` runs in a Dagster instance with its clock frozen at the day's end and the
day's market as its ``markets`` (since = the close of the previous day's last candle), as the
sensor requests it; the op builds the 5m/15m candles, scans and enqueues. Backtest: the candles
``signalworks backtest --strategy`` reads from the same warehouse afterwards
(:func:`orchestration.strategy_backtest.read_strategy_candles`) through
:func:`ml.strategies.backtest.run_strategy`, over the whole range at once. BOS runs on both sides;
the EMA scalper with loosened thresholds so that 10 days of one market trigger it at all.

Equal means: the same signals (strategy, direction, trigger candle), the same prices, sizes,
expiries, risk levels and confidences, and the same factors, bit for bit for BOS; the EMA
scalper's indicator factors to 1e-9 relative (its rolling volume average is summed over a frame
that ends at the scan's clock live and at the range's end in the backtest, which may round the
last digit differently). Runs 10 Dagster runs, ~20-60 s on a loaded 2-core machine.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
from dagster import DagsterInstance
from sqlalchemy import select

from assets.publishing import PublishersResource
from ml.evaluation.strategy import StrategyBacktestConfig
from ml.marketdata.frames import CANDLE_SCHEMA
from ml.strategies.backtest import aggregate_candles, run_strategy, strategy_config
from orchestration.definitions import build_definitions, build_resources
from orchestration.settings import Settings
from orchestration.strategy_backtest import StrategyBacktestRequest, read_strategy_candles
from resources.exchanges.resource import ExchangeResource
from resources.warehouse.schema import signals as signals_table
from resources.warehouse.store import Warehouse
from tests.support.fixtures import shared_fixtures_dir

SYMBOL, EXCHANGE = "UNITTEST/BTC", "binance"
FIRST_DAY, DAYS = datetime(2017, 11, 5, tzinfo=UTC), 10
BOS = {"event_filter_type": "BOTH"}
LOOSE_EMA = {"rsi_long_min": 50.0, "rsi_short_max": 50.0, "adx_min": 0.0, "volume_multiplier": 0.5,
             "min_htf_confirmations": 0}


def _candles() -> pl.DataFrame:
    raw = pl.read_ipc(shared_fixtures_dir() / "freqtrade" / "UNITTEST_BTC-1m.feather")
    return raw.select(pl.lit(EXCHANGE).alias("exchange"), pl.lit(SYMBOL).alias("symbol"), pl.lit("1m").alias("timeframe"),
                      pl.col("date").alias("ts"), "open", "high", "low", "close", "volume").select(
        [pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()]).filter(
        pl.col("ts").is_between(FIRST_DAY, FIRST_DAY + timedelta(days=DAYS), closed="left"))


def _live(candles: pl.DataFrame, home: Path) -> list[dict]:
    settings = Settings(home=home, start_date=date(2017, 11, 1))
    store = Warehouse.from_url(settings.warehouse_url)
    publishers = PublishersResource(config_path=str(settings.social_config.resolve()), home=str(home), dry_run=True)
    with DagsterInstance.ephemeral() as instance:
        for day in range(DAYS):
            start, end = FIRST_DAY + timedelta(days=day), FIRST_DAY + timedelta(days=day + 1)
            day_candles = candles.filter(pl.col("ts").is_between(start, end, closed="left"))
            store.replace_candles(day_candles, exchange=EXCHANGE, timeframe="1m", start=start, end=end,
                                  symbols=[SYMBOL])
            store.replace_candles(aggregate_candles(day_candles, "1h"), exchange=EXCHANGE, timeframe="1h", start=start,
                                  end=end, symbols=[SYMBOL])
            resources = {**build_resources(settings), "publishers": publishers,
                         "exchanges": ExchangeResource(exchanges=["sim"], frozen_clock=end.isoformat())}
            job = build_definitions(settings, resources).get_job_def("market_signals_job")
            config = {"markets": {f"{EXCHANGE}|{SYMBOL}": start.isoformat()}, "bos": BOS, "ema_cross": LOOSE_EMA,
                      "funding": {"enabled": False}}
            result = job.execute_in_process(run_config={"ops": {"market_signals_op": {"config": config}}},
                                            instance=instance)
            assert result.success, f"day {start:%Y-%m-%d}: the live run failed"
    with store.engine.connect() as connection:
        rows = connection.execute(select(signals_table.c.origin, signals_table.c.payload)
                                  .where(signals_table.c.kind == "market")).all()
    return sorted((json.loads(payload) for _, payload in rows), key=lambda r: (r["trigger_ts"], r["strategy"]))


def _backtest(home: Path) -> list[dict]:
    store = Warehouse.from_url(Settings(home=home, start_date=date(2017, 11, 1)).warehouse_url)
    last = (FIRST_DAY + timedelta(days=DAYS - 1)).date()
    signals = []
    for strategy, timeframe, overrides in (("bos", "1m", BOS), ("ema_cross", "15m", LOOSE_EMA)):
        request = StrategyBacktestRequest(strategy=strategy, exchange=EXCHANGE, symbols=(SYMBOL,), timeframe=timeframe,
                                          start=FIRST_DAY.date(), end=last, output=home / "unused",
                                          config=StrategyBacktestConfig())
        candles, confirm, _ = read_strategy_candles(store, request)
        signals += run_strategy(strategy, strategy_config(strategy, overrides, timeframe=timeframe), candles, confirm)
    return sorted((json.loads(json.dumps(s.to_record())) for s in signals),
                  key=lambda r: (r["trigger_ts"], r["strategy"]))


def _rounded(record: dict) -> dict:
    """An EMA-scalper record with its float factors to 1e-9 relative (module docstring)."""
    if record["strategy"] != "ema_cross":
        return record
    factors = {k: float(f"{v:.9e}") if isinstance(v, float) else v for k, v in record["factors"].items()}
    return {**record, "factors": factors}


def test_backtest_signals_equal_the_signals_live_stored_day_by_day(tmp_path: Path) -> None:
    stored = _live(_candles(), tmp_path)
    backtest = _backtest(tmp_path)
    assert {r["strategy"] for r in backtest} == {"bos", "ema_cross"}  # both strategies are compared
    assert len(backtest) >= 20
    assert [(r["strategy"], r["direction"], r["trigger_ts"]) for r in stored] == \
        [(r["strategy"], r["direction"], r["trigger_ts"]) for r in backtest]
    assert [r for r in stored if r["strategy"] == "bos"] == [r for r in backtest if r["strategy"] == "bos"]
    assert [_rounded(r) for r in stored] == [_rounded(r) for r in backtest]
