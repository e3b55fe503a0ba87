"""Candles and reference computations for the indicator tests.

References are computed the plain way: one symbol at a time, TA-Lib's public functions, pandas-ta
-classic, or per-row Python loops written from the docstring definitions.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import polars as pl
import talib

from ml.marketdata.frames import CANDLE_SCHEMA, TS
from ml.marketdata.timeframes import timeframe_ms, to_ms
from resources.exchanges.sim_market import SimMarket
from tests.support.fixtures import shared_fixtures_dir

#: Recorded freqtrade candles: file stem -> (symbol, timeframe).
FREQTRADE = {
    "UNITTEST_BTC-1m": ("UNITTEST/BTC", "1m"),
    "UNITTEST_BTC-5m": ("UNITTEST/BTC", "5m"),
    "ADA_BTC-5m": ("ADA/BTC", "5m"),
    "LTC_BTC-5m": ("LTC/BTC", "5m"),
    "XRP_ETH-5m": ("XRP/ETH", "5m"),
    "futures/XRP_USDT_USDT-5m-futures": ("XRP/USDT:USDT", "5m"),
}

START = datetime(2024, 1, 1, tzinfo=UTC)


def freqtrade_candles(stem: str) -> pl.DataFrame:
    """A recorded freqtrade feather file as CANDLE_SCHEMA rows (exchange "binance")."""
    symbol, timeframe = FREQTRADE[stem]
    raw = pl.read_ipc(shared_fixtures_dir() / "freqtrade" / f"{stem}.feather")
    return raw.select(
        pl.lit("binance").alias("exchange"),
        pl.lit(symbol).alias("symbol"),
        pl.lit(timeframe).alias("timeframe"),
        pl.col("date").cast(TS).alias("ts"),
        *(pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close", "volume")),
    ).select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()])


def sim_candles(
    bases: tuple[str, ...] = ("BTC", "ETH", "SOL"),
    timeframe: str = "1h",
    *,
    days: int = 60,
    start: datetime = START,
    seed: int = 7,
) -> pl.DataFrame:
    """Simulated ``sim`` candles of ``bases`` quoted in USDT, CANDLE_SCHEMA, sorted by key."""
    market = SimMarket(seed)
    lo = to_ms(start)
    hi = lo + days * 86_400_000
    frames = [
        market.ohlcv(base, timeframe, lo, hi).select(
            pl.lit("sim").alias("exchange"),
            pl.lit(f"{base}/USDT").alias("symbol"),
            pl.lit(timeframe).alias("timeframe"),
            pl.all(),
        )
        for base in bases
    ]
    return pl.concat(frames).select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()])


def symbols(frame: pl.DataFrame) -> Iterator[tuple[str, pl.DataFrame]]:
    """``(symbol, rows)`` of each symbol, rows sorted by ``ts``."""
    for (symbol,), rows in frame.sort("symbol", "ts").group_by("symbol", maintain_order=True):
        yield str(symbol), rows


def arrays(rows: pl.DataFrame) -> dict[str, np.ndarray]:
    return {c: rows.get_column(c).to_numpy() for c in ("open", "high", "low", "close", "volume")}


def column(frame: pl.DataFrame, name: str) -> np.ndarray:
    """A column as float64 with NaN for null."""
    return frame.get_column(name).cast(pl.Float64).to_numpy()


def talib_reference(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """TA-Lib's public functions on one symbol's candles (EHMA composed from TA-Lib EMAs)."""
    h, lo, c, v = data["high"], data["low"], data["close"], data["volume"]
    out = {f"ema_{p}": talib.EMA(c, p) for p in (9, 10, 21, 36, 200)}
    out |= {f"sma_{p}": talib.SMA(c, p) for p in (50, 200)}
    out["macd"], out["macd_signal"], out["macd_hist"] = talib.MACD(c, 12, 26, 9)
    out["adx_14"] = talib.ADX(h, lo, c, 14)
    out["rsi_14"] = talib.RSI(c, 14)
    out["rsi_7"] = talib.RSI(c, 7)
    out["bb_upper"], out["bb_middle"], out["bb_lower"] = talib.BBANDS(c, 20, 2.0, 2.0, 0)
    out["atr_14"] = talib.ATR(h, lo, c, 14)
    out["obv"] = talib.OBV(c, v)
    out["ehma_180"] = talib.EMA(2.0 * talib.EMA(c, 90) - talib.EMA(c, 180), 13)
    return out


def aggregate(candles: pl.DataFrame, timeframe: str) -> pl.DataFrame:
    """Candles resampled to a higher ``timeframe`` (epoch-aligned), only complete ones."""
    step = timeframe_ms(timeframe)
    base = timeframe_ms(str(candles.get_column("timeframe")[0]))
    bucket = (pl.col("ts").dt.epoch("ms") // step * step).cast(pl.Int64)
    return (
        candles.with_columns(bucket.alias("_bucket"))
        .group_by("exchange", "symbol", "_bucket", maintain_order=True)
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("volume").sum(),
            pl.len().alias("_n"),
        )
        .filter(pl.col("_n") == step // base)
        .select(
            "exchange",
            "symbol",
            pl.lit(timeframe).alias("timeframe"),
            pl.col("_bucket").cast(TS).alias("ts"),
            "open",
            "high",
            "low",
            "close",
            "volume",
        )
    )
