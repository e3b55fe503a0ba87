"""Candle validation and ordering for the engine: one long frame sorted by (exchange, symbol, ts).

:func:`prepare_candles` checks the input contract (columns, one timeframe, no nulls, finite
prices and volumes, unique keys), sorts only when the input is not sorted already, and returns
the frame, its price columns as numpy arrays (views where polars allows) and the first row of
each ``(exchange, symbol)`` segment. The engine leaves the finite check out and makes it per
block on its threads instead (:func:`finite_rows`, then :func:`require_finite` on failure): it
reads every price once, and before the pool it would be serial.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import polars as pl

from ml.marketdata.frames import TS

PRICES = ("open", "high", "low", "close", "volume")


def prepare_candles(
    candles: pl.DataFrame, *, check_finite: bool = True
) -> tuple[pl.DataFrame, dict[str, np.ndarray], np.ndarray]:
    """Validated candles sorted by the key, their numpy columns and segment start rows
    (without ``check_finite``, prices and volumes may still be NaN or infinite)."""
    missing = [c for c in ("exchange", "symbol", "timeframe", "ts", *PRICES) if c not in candles.columns]
    if missing:
        raise ValueError(f"candles lack columns {missing}; expected CANDLE_SCHEMA")
    wanted = {"exchange": pl.String(), "symbol": pl.String(), "timeframe": pl.String(), "ts": TS}
    wanted |= {c: pl.Float64() for c in PRICES}
    frame = candles.select(
        pl.col(c) if candles.schema[c] == dtype else pl.col(c).cast(dtype)
        for c, dtype in wanted.items()
    )
    if frame.height == 0:
        return frame, {}, np.zeros(0, dtype=np.int64)
    if sum(frame.null_count().row(0)):
        raise ValueError("candles hold nulls; every key, price and volume must be set")
    # one select: polars compares the two string columns on two threads at once
    timeframes, exchanges = frame.select(
        (pl.col(c) != pl.col(c).first()).any() for c in ("timeframe", "exchange")
    ).row(0)
    if timeframes:
        names = sorted(frame.get_column("timeframe").unique().to_list())
        raise ValueError(f"candles hold several timeframes {names}")
    frame = frame.rechunk()
    starts = _boundaries(frame, exchanges)
    steps = np.diff(frame.get_column("ts").to_physical().to_numpy())
    if not _is_sorted(frame, starts, steps):
        frame = _sort(frame).rechunk()
        starts = _boundaries(frame, exchanges)
        steps = np.diff(frame.get_column("ts").to_physical().to_numpy())
    arrays = {c: frame.get_column(c).to_numpy() for c in PRICES}
    if check_finite:
        require_finite(arrays)
    arrays["ts"] = frame.get_column("ts").to_physical().to_numpy()
    repeated = steps == 0
    repeated[starts[1:] - 1] = False
    if repeated.any():
        key = frame.row(int(np.flatnonzero(repeated)[0]), named=True)
        raise ValueError(
            f"duplicate candle key ({key['exchange']}, {key['symbol']}, {key['ts']}): "
            "one row per (exchange, symbol, ts)"
        )
    return frame, arrays, starts


def finite_rows(arrays: dict[str, np.ndarray], first: int, last: int) -> bool:
    """Whether rows ``first:last`` of every price and volume column are finite."""
    return all(np.isfinite(arrays[name][first:last].sum()) for name in PRICES)


def require_finite(arrays: dict[str, np.ndarray]) -> None:
    """Raise ``ValueError`` naming the first price or volume column with a non-finite value."""
    for name in PRICES:
        if not np.isfinite(arrays[name].sum()):
            raise ValueError(f"candles hold non-finite {name} values; clean them first")


def _boundaries(frame: pl.DataFrame, exchanges: bool) -> np.ndarray:
    """Row index where each (exchange, symbol) run starts (``exchanges``: several in the frame)."""
    new = pl.col("symbol") != pl.col("symbol").shift(1)
    if exchanges:
        new = new | (pl.col("exchange") != pl.col("exchange").shift(1))
    starts = frame.select(new.fill_null(True).arg_true()).to_series().to_numpy()
    return starts.astype(np.int64)


def _is_sorted(frame: pl.DataFrame, starts: np.ndarray, steps: np.ndarray) -> bool:
    """Whether segments are in key order and ``ts`` rises inside each (``steps``: its diff)."""
    keys = list(
        zip(frame.get_column("exchange").gather(starts).to_list(),
            frame.get_column("symbol").gather(starts).to_list(), strict=True)
    )
    if any(a >= b for a, b in pairwise(keys)):
        return False
    rising = steps >= 0
    rising[starts[1:] - 1] = True
    return bool(rising.all())


def _sort(frame: pl.DataFrame) -> pl.DataFrame:
    keys = (
        frame.select("exchange", "symbol").unique().sort("exchange", "symbol")
        .with_row_index("_segment")
    )
    ordered = frame.join(keys, on=["exchange", "symbol"], how="left").sort("_segment", "ts")
    return ordered.drop("_segment")
