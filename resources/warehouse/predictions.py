"""Reads and idempotent writes of the ``predictions`` table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from ml.marketdata.frames import TS
from resources.warehouse.store import Slice, Warehouse

PREDICTIONS_SCHEMA: dict[str, pl.DataType] = {
    "exchange": pl.String(), "symbol": pl.String(), "timeframe": pl.String(), "ts": TS,
    "segment": pl.String(), "model_name": pl.String(), "model_version": pl.String(),
    "p_down": pl.Float64(), "p_flat": pl.Float64(), "p_up": pl.Float64(), "predicted": pl.String(),
    "regime": pl.String(), "regime_version": pl.String(), "size_multiplier": pl.Float64(), "predicted_at": TS,
}


def write_predictions(store: Warehouse, frame: pl.DataFrame) -> int:
    """Replace the stored predictions of the candles in ``frame`` (one transaction per exchange and
    timeframe: those symbols' rows in ``frame``'s time range); returns rows written."""
    written = 0
    for (exchange, timeframe), group in frame.group_by(["exchange", "timeframe"], maintain_order=True):
        start, end = group.get_column("ts").min(), group.get_column("ts").max()
        where = Slice({"exchange": exchange, "timeframe": timeframe},
                      {"symbol": sorted(group.get_column("symbol").unique().to_list())},
                      "ts", start, end + timedelta(milliseconds=1))
        written += store.replace_slice("predictions", group, where, PREDICTIONS_SCHEMA)
    return written


def read_predictions(store: Warehouse, *, predicted_at: datetime | None = None) -> pl.DataFrame:
    """Stored predictions (all, or those made at ``predicted_at``), sorted by the candle key."""
    where = Slice({"predicted_at": predicted_at} if predicted_at is not None else {})
    return store.read("predictions", PREDICTIONS_SCHEMA, where, order_by=("exchange", "symbol", "timeframe", "ts"))


def latest_predicted_at(store: Warehouse) -> datetime | None:
    """When the newest stored predictions were made (None when there are none)."""
    value = store.scalar("SELECT MAX(predicted_at) FROM predictions")
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
