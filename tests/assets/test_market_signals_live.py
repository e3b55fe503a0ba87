"""The live market-signal path through Dagster: candles arrive step by step (hours, then single
minutes), new_candles_sensor hands them to market_signals_job, and the outbox it fills

* never changes a stored signal when later candles arrive (no look-ahead through the live path),
* equals one scan of the whole history by the same function (ml.strategies.scan.scan_markets),
* holds nothing twice when a run is repeated,

and a market with bad candles is reported while the others are scanned.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from dagster import DagsterInstance, SensorResult, build_sensor_context
from sqlalchemy import text

from assets.publishing import PublishersResource
from ml.marketdata.frames import CANDLE_SCHEMA
from ml.marketdata.resample import resample
from ml.strategies.bos import BosConfig
from ml.strategies.ema_cross import EmaCrossConfig
from ml.strategies.scan import closes_at, complete_hours, scan_markets
from orchestration.jobs import market_signals_job
from resources.exchanges.resource import ExchangeResource
from resources.exchanges.sim import SimExchange
from resources.warehouse.resource import WarehouseResource
from resources.warehouse.store import Warehouse
from sensors.new_candles import build_new_candles_sensor

ROOT = Path(__file__).resolve().parents[2]
SYMBOLS = ("NEAR/USDT", "AVAX/USDT", "XRP/USDT", "DOGE/USDT")
HISTORY = datetime(2024, 2, 20, tzinfo=UTC)
START = datetime(2024, 3, 10, tzinfo=UTC)
END = datetime(2024, 3, 11, 12, 5, tzinfo=UTC)
#: 06:00, then every 3 hours to 03-11 12:00, then minute by minute.
STEPS = [START + timedelta(hours=6 + 3 * k) for k in range(11)] + [
    datetime(2024, 3, 11, 12, m, tzinfo=UTC) for m in range(1, 6)]
#: The first run scans everything stored (later runs get each market's last handled close from the sensor).
FIRST_WINDOW = {"window_minutes": 3 * 1440}
#: BOS with looser thresholds, both directions and a 4-hour cooldown: many breaks, some right
#: after a run's window starts and some inside the cooldown of one an earlier run kept, so the
#: look-back buffer and the cooldown seeding across runs both matter.
LOOSE_BOS = {"bos_strength_threshold": 1.002, "min_volume_multiplier": 0.8, "require_body_ratio": 0.4,
             "event_filter_type": "BOTH", "min_event_interval_minutes": 240, "stoploss_pct": 0.02}
#: EMA crossover with the volume at its average and ADX from 15 (the seed's rules otherwise).
LOOSE_EMA = {"volume_multiplier": 1.0, "adx_min": 15.0}
OFF = {"funding": {"enabled": False}, "bos": LOOSE_BOS, "ema_cross": LOOSE_EMA}


def sim_frame(timeframe: str, start: datetime, end: datetime) -> pl.DataFrame:
    exchange = SimExchange(clock=lambda: END)
    frames = [exchange.fetch_ohlcv(symbol, timeframe, start, end).with_columns(
        pl.lit("sim").alias("exchange"), pl.lit(symbol).alias("symbol"), pl.lit(timeframe).alias("timeframe"))
        for symbol in SYMBOLS]
    return pl.concat(frames).select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()])


@pytest.fixture(scope="module")
def market() -> dict[str, pl.DataFrame]:
    return {"1m": sim_frame("1m", START, END), "1h": sim_frame("1h", HISTORY, END)}


class Live:
    """A warehouse fed as candles close, the sensor, and the job run as the daemon would run it."""

    def __init__(self, tmp_path: Path, market: dict[str, pl.DataFrame], instance: DagsterInstance) -> None:
        self.url = f"sqlite:///{tmp_path / 'warehouse.db'}"
        self.warehouse = Warehouse.from_url(self.url)
        self.market, self.instance, self.home = market, instance, tmp_path
        self.sensor = build_new_candles_sensor(market_signals_job())
        self.cursor: str | None = None
        self.stored_until = START

    def store_until(self, now: datetime) -> None:
        """Every candle closed by ``now`` (1m from START, 1h from HISTORY), nothing later."""
        for timeframe, frame in self.market.items():
            length = timedelta(minutes=1) if timeframe == "1m" else timedelta(hours=1)
            closed = frame.filter(pl.col("ts") + length <= now)
            self.warehouse.replace_candles(closed, exchange="sim", timeframe=timeframe,
                                           start=START if timeframe == "1m" else HISTORY, end=now, symbols=SYMBOLS)

    def tick(self) -> dict[str, Any] | None:
        with build_sensor_context(cursor=self.cursor, resources={"warehouse": WarehouseResource(url=self.url)}) as ctx:
            result = self.sensor(ctx)
        assert isinstance(result, SensorResult)
        self.cursor = result.cursor
        return result.run_requests[0].run_config if result.run_requests else None

    def run(self, now: datetime, run_config: dict[str, Any]) -> Any:
        resources = {
            "warehouse": WarehouseResource(url=self.url),
            "exchanges": ExchangeResource(exchanges=["sim"], frozen_clock=now.isoformat()),
            "publishers": PublishersResource(config_path=str(ROOT / "config" / "sources.yaml"), home=str(self.home),
                                             dry_run=True),
        }
        result = market_signals_job().execute_in_process(run_config=run_config, resources=resources,
                                                         instance=self.instance)
        assert result.success
        return result

    def outbox(self) -> dict[str, tuple[str, str, float]]:
        with self.warehouse.engine.connect() as connection:
            rows = connection.execute(text("SELECT origin, kind, payload, confidence FROM signals")).all()
        return {origin: (kind, payload, confidence) for origin, kind, payload, confidence in rows}


def with_config(run_config: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    config = run_config["ops"]["market_signals_op"]["config"]
    return {"ops": {"market_signals_op": {"config": {**config, **extra}}}}


def test_stored_signals_never_change_as_later_candles_arrive(tmp_path: Path, market: dict[str, pl.DataFrame],
                                                             instance: DagsterInstance) -> None:
    live = Live(tmp_path, market, instance)
    seen: dict[str, tuple[str, str, float]] = {}
    for step, now in enumerate(STEPS):
        live.store_until(now)
        run_config = live.tick()
        assert run_config is not None, f"no run requested at {now}"
        live.run(now, with_config(run_config, {**OFF, **(FIRST_WINDOW if step == 0 else {})}))
        stored = live.outbox()
        for origin, row in seen.items():
            assert stored.get(origin) == row, f"{origin} changed or vanished when the candles up to {now} arrived"
        for origin, (_, payload, _) in stored.items():
            record = json.loads(payload)
            closed = datetime.fromisoformat(record["trigger_ts"]) + timedelta(minutes=1 if record["timeframe"] == "1m"
                                                                               else 15)
            assert closed <= now, f"{origin} triggered by a candle that had not closed at {now}"
        seen = stored
    strategies = [json.loads(payload)["strategy"] for _, payload, _ in seen.values()]
    assert strategies.count("bos") >= 8 and strategies.count("ema_cross") >= 3, strategies

    # the same function over the whole history at once stores exactly the same signals
    minutes = live.warehouse.read_candles(timeframe="1m", exchange="sim")
    hours = live.warehouse.read_candles(timeframe="1h", exchange="sim")
    quarters, _ = resample(minutes, "15m", now=END, source="1m")
    whole = scan_markets(candles_1m=minutes, candles_15m=quarters, candles_1h=complete_hours(hours, minutes, now=END),
                         bos=BosConfig(**LOOSE_BOS), ema_cross=EmaCrossConfig(**LOOSE_EMA))
    assert whole.errors == {}
    expected = {"|".join((*s.key, s.trigger_ts.isoformat())): s.to_record() for s in whole.signals}
    assert {origin: json.loads(payload) for origin, (_, payload, _) in seen.items()} == json.loads(
        json.dumps(expected, default=str))
    assert all(closes_at(s) <= END for s in whole.signals)

    # a repeated run (same candles, same request) enqueues nothing
    again = live.run(END, {"ops": {"market_signals_op": {"config": {**OFF, **FIRST_WINDOW}}}})
    assert again.output_for_node("market_signals_op")["enqueued"] == 0
    assert live.outbox() == seen


def test_a_market_with_bad_candles_is_reported_and_the_others_are_scanned(
        tmp_path: Path, market: dict[str, pl.DataFrame], instance: DagsterInstance) -> None:
    live = Live(tmp_path, market, instance)
    now = datetime(2024, 3, 10, 18, tzinfo=UTC)
    live.store_until(now)
    bad_minute = datetime(2024, 3, 10, 12, tzinfo=UTC)
    broken = market["1m"].with_columns(
        pl.when((pl.col("symbol") == "XRP/USDT") & (pl.col("ts") == bad_minute)).then(-1.0).otherwise(pl.col("low"))
        .alias("low"))
    live.warehouse.replace_candles(broken.filter(pl.col("ts") < now), exchange="sim", timeframe="1m", start=START,
                                   end=now, symbols=SYMBOLS)
    result = live.run(now, {"ops": {"market_signals_op": {"config": {**OFF, **FIRST_WINDOW}}}})
    (output,) = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"
                 and e.step_key == "market_signals_op"]
    errors = output.event_specific_data.metadata["errors"].value  # type: ignore[union-attr]
    assert list(errors) == ["sim XRP/USDT"] and "prices must be positive" in errors["sim XRP/USDT"]
    logged = [(r.level, r.user_message) for r in instance.all_logs(result.run_id)]
    assert any(level >= 40 and "sim XRP/USDT: input rejected" in message for level, message in logged)
    symbols = {json.loads(payload)["symbol"] for _, payload, _ in live.outbox().values()}
    assert "XRP/USDT" not in symbols and symbols & {"NEAR/USDT", "AVAX/USDT", "DOGE/USDT"}


def test_funding_alerts_are_their_own_kind_and_enqueued_once(tmp_path: Path, market: dict[str, pl.DataFrame],
                                                             instance: DagsterInstance) -> None:
    from ml.marketdata.frames import DERIVATIVES_SCHEMA

    live = Live(tmp_path, market, instance)
    now = datetime(2024, 3, 10, 8, tzinfo=UTC)
    live.store_until(now)
    snapshots = pl.DataFrame({
        "exchange": ["sim"] * 3, "symbol": ["SOL/USDT:USDT"] * 3,
        "ts": [now - timedelta(hours=3), now - timedelta(hours=2), now - timedelta(hours=1)],
        "funding_rate": [0.0001, 0.003, 0.0032]}).with_columns(
        *(pl.lit(None).cast(t).alias(c) for c, t in DERIVATIVES_SCHEMA.items()
          if c not in ("exchange", "symbol", "ts", "funding_rate")))
    for (ts,), rows in snapshots.group_by(["ts"]):
        live.warehouse.replace_derivatives(rows, exchange="sim", ts=ts)
    config = {"ops": {"market_signals_op": {"config": {"bos": {"enabled": False}, "ema_cross": {"enabled": False}}}}}
    live.run(now, config)
    live.run(now, config)
    stored = live.outbox()
    assert list(stored) == [f"funding|sim|SOL/USDT:USDT|longs_pay|{(now - timedelta(hours=2)).isoformat()}"]
    kind, payload, confidence = next(iter(stored.values()))
    assert kind == "funding" and json.loads(payload)["funding_rate"] == 0.003 and confidence == 1.0
