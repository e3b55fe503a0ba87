"""Candle files as freqtrade and spreadsheets write them, built from seeded candles in a tmp folder."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from ml.marketdata.timeframes import to_ms
from tests.support.builders import make_candles

START = datetime(2024, 3, 1, tzinfo=UTC)
PRICES = ["open", "high", "low", "close", "volume"]


def candle_frame(n: int = 48, timeframe: str = "1h", seed: int = 7) -> pl.DataFrame:
    """``n`` valid candles from 2024-03-01 00:00 UTC: ts and OHLCV, as a file holds them."""
    return make_candles(n, timeframe, start=START, seed=seed).select("ts", *PRICES)


def write_feather(frame: pl.DataFrame, path: Path) -> Path:
    frame.rename({"ts": "date"}).write_ipc(path)
    return path


def write_json(frame: pl.DataFrame, path: Path) -> Path:
    """freqtrade's json data format: a list of [ms, open, high, low, close, volume]."""
    rows = [[to_ms(r["ts"]), *(r[c] for c in PRICES)] for r in frame.iter_rows(named=True)]
    path.write_text(json.dumps(rows))
    return path


def write_csv(frame: pl.DataFrame, path: Path) -> Path:
    frame.select(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ").alias("date"), *PRICES).write_csv(path)
    return path


def broken_candles(kind: str) -> tuple[pl.DataFrame, str]:
    """:func:`candle_frame` with one defect of ``kind`` and the message that must name it."""
    frame = candle_frame()
    at = pl.int_range(pl.len()) == 4  # the 5th candle: row 5 (feather/json), line 6 (CSV)
    if kind == "misaligned":
        return frame.with_columns(pl.when(at).then(pl.col("ts") + timedelta(minutes=30)).otherwise("ts")), \
            "row 5: timestamp 2024-03-01T04:30:00Z is not aligned to 1h"
    if kind == "high_below_low":
        return frame.with_columns(pl.when(at).then(pl.col("low") - 1).otherwise("high").alias("high")), \
            "row 5: high < low at 2024-03-01T04:00:00Z"
    if kind == "nan":
        return frame.with_columns(pl.when(at).then(float("nan")).otherwise("close").alias("close")), \
            "row 5: close is not a finite number at 2024-03-01T04:00:00Z"
    if kind == "negative_volume":
        return frame.with_columns(pl.when(at).then(-1.0).otherwise("volume").alias("volume")), \
            "row 5: negative volume at 2024-03-01T04:00:00Z"
    assert kind == "duplicate"
    return pl.concat([frame, frame.slice(4, 1)]), "rows 5, 49: duplicate timestamp 2024-03-01T04:00:00Z"
