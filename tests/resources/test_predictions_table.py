"""The predictions table on SQLite and a real PostgreSQL: writes replace the same candles' rows
(idempotent), other symbols are untouched, instants read back in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from resources.warehouse.predictions import (
    PREDICTIONS_SCHEMA,
    latest_predicted_at,
    read_predictions,
    write_predictions,
)
from resources.warehouse.store import Warehouse

TS = datetime(2024, 3, 12, 8, tzinfo=UTC)
AT = datetime(2024, 3, 12, 9, 30, tzinfo=UTC)


def _rows(symbols: list[str], *, at: datetime, p_up: float, version: str = "v1") -> pl.DataFrame:
    return pl.DataFrame({
        "exchange": "sim", "symbol": symbols, "timeframe": "1h", "ts": [TS] * len(symbols), "segment": "alts",
        "model_name": "xgb_segment", "model_version": version, "p_down": 0.2, "p_flat": 0.8 - p_up, "p_up": p_up,
        "predicted": "up", "regime": ["Bull trend"] + [None] * (len(symbols) - 1), "regime_version": "r1",
        "size_multiplier": 1.0, "predicted_at": [at] * len(symbols),
    }).select([pl.col(c).cast(t) for c, t in PREDICTIONS_SCHEMA.items()])


def test_writes_replace_the_same_candles_only(warehouse: Warehouse) -> None:
    assert latest_predicted_at(warehouse) is None
    assert write_predictions(warehouse, _rows(["SOL/USDT", "AVAX/USDT"], at=AT, p_up=0.5)) == 2
    again = _rows(["SOL/USDT"], at=AT + timedelta(hours=1), p_up=0.6, version="v2")
    assert write_predictions(warehouse, again) == 1
    write_predictions(warehouse, again)  # idempotent
    stored = read_predictions(warehouse)
    assert stored.height == 2
    sol = stored.filter(pl.col("symbol") == "SOL/USDT").row(0, named=True)
    assert (sol["model_version"], sol["p_up"], sol["predicted_at"]) == ("v2", 0.6, AT + timedelta(hours=1))
    assert stored.filter(pl.col("symbol") == "AVAX/USDT").get_column("model_version").to_list() == ["v1"]
    assert latest_predicted_at(warehouse) == AT + timedelta(hours=1)
    assert read_predictions(warehouse, predicted_at=AT).get_column("symbol").to_list() == ["AVAX/USDT"]
