"""As-of lookups for the engine: quote-currency rates and the higher timeframe's RSI.

A candle may only use a rate or a higher-timeframe RSI whose candle has *closed* at or before its
own close (``open + length``), so no value depends on a candle still forming.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

from ml.indicators.jit import kernel
from ml.indicators.params import IndicatorParams
from ml.marketdata.frames import TS
from ml.marketdata.timeframes import DAY_MS, timeframe_ms

#: Quote currency whose prices are USDT already.
USDT = "USDT"


def nominal_ms(timeframe: str) -> int:
    """Length of a candle of ``timeframe``; a calendar month counts as 31 days.

    Used for the VWAP anchor (a month candle is its own anchor period) and for the close time of
    higher-timeframe rows in as-of joins, where 31 days makes a month's RSI usable only once the
    month has surely closed: possibly a little late, never early.
    """
    return 31 * DAY_MS if timeframe == "1M" else timeframe_ms(timeframe)


def _quote(symbol: str) -> str | None:
    if "/" not in symbol:
        return None
    return symbol.split("/", 1)[1].split(":", 1)[0]


def _close_times(frame: pl.DataFrame, default_step: int) -> pl.Expr:
    """Close time (epoch ms) of each row of a rate / higher-timeframe frame."""
    open_ms = pl.col("ts").cast(TS).dt.epoch("ms")
    if "timeframe" not in frame.columns or frame.height == 0:
        return open_ms + default_step
    timeframes = frame.get_column("timeframe")
    if not frame.select((pl.col("timeframe") != pl.col("timeframe").first()).any()).item():
        return open_ms + nominal_ms(str(timeframes[0]))  # one timeframe (the usual case)
    steps = {tf: nominal_ms(tf) for tf in timeframes.unique().to_list()}
    return open_ms + pl.col("timeframe").replace_strict(steps, return_dtype=pl.Int64)


def _asof_close(frame: pl.DataFrame, value: str, default_step: int) -> tuple[np.ndarray, np.ndarray]:
    """Close times (epoch ms) sorted ascending and the matching ``value`` of a rate frame."""
    table = frame.select(
        _close_times(frame, default_step).alias("close_ms"), pl.col(value).cast(pl.Float64)
    ).sort("close_ms")
    return table.get_column("close_ms").to_numpy(), table.get_column(value).to_numpy()


def _asof(close_ms: np.ndarray, lookup: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Value of the latest lookup row closed at or before each ``close_ms`` (NaN if none)."""
    keys, vals = lookup
    at = np.searchsorted(keys, close_ms, side="right") - 1
    out = np.where(at >= 0, vals[np.maximum(at, 0)], np.nan)
    return out.astype(np.float64)


def quote_rates(
    keys: pl.DataFrame,
    ts: np.ndarray,
    starts: np.ndarray,
    stops: np.ndarray,
    step: int,
    quote_to_usdt: Mapping[str, pl.DataFrame] | None,
) -> np.ndarray | None:
    """USDT price of each row's quote currency (1 for USDT, NaN if unknown); None if all USDT."""
    symbols = keys.get_column("symbol").gather(starts).to_list()
    quotes = [_quote(s) for s in symbols]
    if all(q == USDT for q in quotes):
        return None
    rates = np.ones(ts.shape[0])
    lookups: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for a, b, quote in zip(starts.tolist(), stops.tolist(), quotes, strict=True):
        if quote == USDT:
            continue
        table = (quote_to_usdt or {}).get(quote) if quote else None
        if table is None:
            rates[a:b] = np.nan
            continue
        if quote not in lookups:
            lookups[quote] = _asof_close(table, "close", step)
        rates[a:b] = _asof(ts[a:b] + step, lookups[quote])
    return rates


def higher_rsi(
    keys: pl.DataFrame,
    ts: np.ndarray,
    starts: np.ndarray,
    stops: np.ndarray,
    step: int,
    params: IndicatorParams,
    higher: pl.DataFrame | None,
) -> np.ndarray | None:
    """The higher timeframe's RSI as of each candle's close (NaN where none); None without data.

    The higher rows are matched to the candles' ``(exchange, symbol)`` segments by one join
    against the segment keys, sorted by (segment, close time) on integers, and looked up by a
    compiled merge walk per segment (candle open times rise within a segment).
    """
    if higher is None:
        return None
    rsi_name = f"rsi_{params.divergence_rsi}"
    missing = [c for c in ("exchange", "symbol", "timeframe", "ts", rsi_name) if c not in higher.columns]
    if missing:
        raise ValueError(f"higher_timeframe_rsi lacks columns {missing}")
    out = np.full(ts.shape[0], np.nan)
    if higher.height == 0:
        return out
    segments = (
        keys.select("exchange", "symbol").gather(starts)
        .with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("_segment"))
    )
    table = (
        higher.select(
            pl.col("exchange").cast(pl.String),
            pl.col("symbol").cast(pl.String),
            _close_times(higher, step).alias("close_ms"),
            pl.col(rsi_name).cast(pl.Float64),
        )
        .join(segments, on=["exchange", "symbol"], how="inner")
        .select("_segment", "close_ms", rsi_name)
        .sort("_segment", "close_ms", maintain_order=True)
    )
    segment = table.get_column("_segment").to_numpy()
    bounds = np.searchsorted(segment, np.arange(starts.shape[0] + 1)).astype(np.int64)
    close_ms = table.get_column("close_ms").to_numpy().astype(np.int64, copy=False)
    rsi = table.get_column(rsi_name).to_numpy().astype(np.float64, copy=False)
    _asof_segments(ts, starts, stops, step, bounds, close_ms, rsi, out)
    return out


@kernel
def _asof_segments(ts: np.ndarray, starts: np.ndarray, stops: np.ndarray, step: int,
                   bounds: np.ndarray, close_ms: np.ndarray, values: np.ndarray,
                   out: np.ndarray) -> None:
    """``out[i]``: the value of the latest row of segment ``s`` (rows ``bounds[s]:bounds[s+1]``,
    ``close_ms`` ascending) closed at or before ``ts[i] + step``; left as is where none."""
    for s in range(starts.shape[0]):
        first, last = bounds[s], bounds[s + 1]
        p = first
        for i in range(starts[s], stops[s]):
            close = ts[i] + step
            while p < last and close_ms[p] <= close:
                p += 1
            if p > first:
                out[i] = values[p - 1]
