"""new_candles_sensor on real SQLite and PostgreSQL warehouses: one run per set of new 1m candles,
per-market watermarks (a market whose candle commits after another's later one is not skipped)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from dagster import SensorResult, build_sensor_context

from orchestration.jobs import market_signals_job
from resources.warehouse.resource import WarehouseResource
from resources.warehouse.store import Warehouse
from sensors.new_candles import build_new_candles_sensor, decode_cursor
from tests.assets.test_subhour import sim_minutes

T0 = datetime(2024, 3, 10, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=10)
MINUTES = sim_minutes(("BTC/USDT", "ETH/USDT"), T0, NOW, NOW)


class Ticker:
    """Evaluates the sensor as the daemon does: each tick with the cursor the previous one left."""

    def __init__(self, url: str) -> None:
        self.sensor = build_new_candles_sensor(market_signals_job(), strategies={"bos": True, "ema_cross": False})
        self.resources = {"warehouse": WarehouseResource(url=url)}
        self.cursor: str | None = None

    def tick(self, cursor: str | None = None) -> SensorResult:
        with build_sensor_context(cursor=cursor if cursor is not None else self.cursor,
                                  resources=self.resources) as context:
            result = self.sensor(context)
        assert isinstance(result, SensorResult)
        self.cursor = result.cursor
        return result

    def markets(self) -> dict[str, str]:
        result = self.tick()
        if not result.run_requests:
            return {}
        (request,) = result.run_requests
        config = request.run_config["ops"]["market_signals_op"]["config"]
        assert config["bos"] == {"enabled": True} and config["ema_cross"] == {"enabled": False}
        return config["markets"]


def store(warehouse: Warehouse, symbol: str, last_open: datetime) -> None:
    """Store ``symbol``'s candles up to ``last_open`` (a writer appending the closed minutes)."""
    rows = MINUTES.filter((pl.col("symbol") == symbol) & (pl.col("ts") <= last_open))
    warehouse.replace_candles(rows, exchange="sim", timeframe="1m", start=T0, end=last_open + timedelta(minutes=1),
                              symbols=[symbol])


def minute(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


def test_each_market_is_handed_over_once_per_new_candle(warehouse_url: str) -> None:
    warehouse = Warehouse.from_url(warehouse_url)
    ticker = Ticker(warehouse_url)
    assert not ticker.tick().run_requests  # nothing stored yet
    assert ticker.cursor == "{}"
    store(warehouse, "BTC/USDT", minute(4))
    store(warehouse, "ETH/USDT", minute(4))
    assert ticker.markets() == {"sim|BTC/USDT": "", "sim|ETH/USDT": ""}  # never handled: the run's window
    assert ticker.markets() == {}  # nothing new

    # BTC's 10:05 and 10:06 commit before ETH's 10:05: a single "latest candle" watermark would now
    # stand at 10:06 and never hand ETH's 10:05 over; the per-market one does
    store(warehouse, "BTC/USDT", minute(6))
    assert ticker.markets() == {"sim|BTC/USDT": minute(5).isoformat()}  # close of the last handled candle
    store(warehouse, "ETH/USDT", minute(5))
    assert ticker.markets() == {"sim|ETH/USDT": minute(5).isoformat()}
    assert decode_cursor(ticker.cursor) == {"sim|BTC/USDT": int(minute(6).timestamp() * 1000),
                                            "sim|ETH/USDT": int(minute(5).timestamp() * 1000)}

    # re-evaluating a tick (same cursor, same candles) requests the same run key: launched once
    store(warehouse, "ETH/USDT", minute(7))
    before = ticker.cursor
    first, second = ticker.tick(before), ticker.tick(before)
    assert [r.run_key for r in first.run_requests] == [r.run_key for r in second.run_requests]
    store(warehouse, "BTC/USDT", minute(7))
    third = ticker.tick()
    assert third.run_requests[0].run_key != first.run_requests[0].run_key


def test_an_invalid_cursor_says_what_a_valid_one_is(sqlite_url: str) -> None:
    ticker = Ticker(sqlite_url)
    with pytest.raises(ValueError, match="JSON object"):
        ticker.tick("not a cursor")
    assert decode_cursor(json.dumps({"sim|BTC/USDT": 1})) == {"sim|BTC/USDT": 1}
