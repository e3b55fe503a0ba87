"""Typed polars frames for market data and pure converters into them.

Every timestamp column is ``Datetime("ms", "UTC")`` and marks the *open* time of a candle or the
moment an observation refers to.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import polars as pl

from ml.marketdata.timeframes import timeframe_ms

logger = logging.getLogger(__name__)

TS = pl.Datetime("ms", "UTC")

OHLCV_SCHEMA: dict[str, pl.DataType] = {
    "ts": TS,
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
}

#: A candle row as stored: key (exchange, symbol, timeframe, ts).
CANDLE_SCHEMA: dict[str, pl.DataType] = {
    "exchange": pl.String(),
    "symbol": pl.String(),
    "timeframe": pl.String(),
    **OHLCV_SCHEMA,
}
CANDLE_KEY = ("exchange", "symbol", "timeframe", "ts")

MARKET_SCHEMA: dict[str, pl.DataType] = {
    "exchange": pl.String(),
    "symbol": pl.String(),
    "base": pl.String(),
    "quote": pl.String(),
    "settle": pl.String(),
    "market_type": pl.String(),  # "spot" or "swap"
    "is_spot": pl.Boolean(),
    "contract": pl.Boolean(),
    "active": pl.Boolean(),
    "quote_volume_24h": pl.Float64(),
}

DERIVATIVES_SCHEMA: dict[str, pl.DataType] = {
    "exchange": pl.String(),
    "symbol": pl.String(),
    "ts": TS,
    "funding_rate": pl.Float64(),
    "next_funding_ts": TS,
    "mark_price": pl.Float64(),
    "open_interest": pl.Float64(),  # in contracts / base units
    "open_interest_value": pl.Float64(),  # in quote currency
}
DERIVATIVES_KEY = ("exchange", "symbol", "ts")


def empty_frame(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """An empty frame with exactly ``schema``."""
    return pl.DataFrame(schema=schema)


def ohlcv_rows_to_frame(
    rows: Sequence[Sequence[float | int | str | None]],
    *,
    timeframe: str,
    now_ms: int,
    start_ms: int | None = None,
    end_ms: int | None = None,
    drop_incomplete: bool = True,
) -> pl.DataFrame:
    """Convert ccxt-style ``[ts_ms, open, high, low, close, volume]`` rows into an OHLCV frame.

    Guarantees: sorted by ``ts``, one row per ``ts`` (the last occurrence wins, as a later page
    carries the more recent state of a candle), only candles inside ``[start_ms, end_ms)``, and with
    ``drop_incomplete`` only candles that have closed at ``now_ms`` (open + timeframe <= now).
    Rows whose timestamp is not aligned to the timeframe are dropped with a warning: an exchange
    that returns them is answering for another timeframe.
    """
    step = timeframe_ms(timeframe)
    if not rows:
        return empty_frame(OHLCV_SCHEMA)
    frame = pl.DataFrame(
        [list(r[:6]) for r in rows],
        schema=["ts", "open", "high", "low", "close", "volume"],
        orient="row",
        strict=False,
    ).with_columns(
        pl.col("ts").cast(pl.Int64),
        *(pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close", "volume")),
    )
    misaligned = frame.filter(pl.col("ts") % step != 0).height
    if misaligned:
        logger.warning("dropping %d candles not aligned to %s", misaligned, timeframe)
    conditions = [pl.col("ts") % step == 0]
    if drop_incomplete:
        conditions.append(pl.col("ts") + step <= now_ms)
    if start_ms is not None:
        conditions.append(pl.col("ts") >= start_ms)
    if end_ms is not None:
        conditions.append(pl.col("ts") < end_ms)
    return (
        frame.filter(*conditions)
        .unique(subset="ts", keep="last", maintain_order=True)
        .sort("ts")
        .with_columns(pl.col("ts").cast(TS))
        .select(list(OHLCV_SCHEMA))
    )

#: One row per coin per CoinGecko snapshot, as returned by ``/coins/markets`` (USD).
COINGECKO_SCHEMA: dict[str, pl.DataType] = {
    "snapshot_ts": TS,
    "coin_id": pl.String(),
    "symbol": pl.String(),
    "name": pl.String(),
    "market_cap_rank": pl.Int64(),
    "price_usd": pl.Float64(),
    "market_cap_usd": pl.Float64(),
    "fdv_usd": pl.Float64(),
    "total_volume_usd": pl.Float64(),
    "circulating_supply": pl.Float64(),
    "total_supply": pl.Float64(),
    "max_supply": pl.Float64(),
    "price_change_pct_24h": pl.Float64(),
    "ath_usd": pl.Float64(),
    "ath_ts": TS,
    "atl_usd": pl.Float64(),
    "atl_ts": TS,
    "last_updated": TS,
}
COINGECKO_KEY = ("snapshot_ts", "coin_id")
