"""As-of lookups for the engine: quote-currency rates and the higher timeframe's RSI.

A candle may only use a rate or a higher-timeframe RSI whose candle has *closed* at or before its
own close (``open + length``), so no value depends on a candle still forming.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

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
    if "timeframe" not in frame.columns:
        return open_ms + default_step
    steps = {tf: nominal_ms(tf) for tf in frame.get_column("timeframe").unique().to_list()}
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
    """The higher timeframe's RSI as of each candle's close (NaN where none); None without data."""
    if higher is None:
        return None
    rsi_name = f"rsi_{params.divergence_rsi}"
    missing = [c for c in ("exchange", "symbol", "timeframe", "ts", rsi_name) if c not in higher.columns]
    if missing:
        raise ValueError(f"higher_timeframe_rsi lacks columns {missing}")
    out = np.full(ts.shape[0], np.nan)
    if higher.height == 0:
        return out
    table = higher.select(
        "exchange",
        "symbol",
        _close_times(higher, step).alias("close_ms"),
        pl.col(rsi_name).cast(pl.Float64),
    ).sort("exchange", "symbol", "close_ms")
    firsts = table.select(
        ((pl.col("symbol") != pl.col("symbol").shift(1)) | (pl.col("exchange") != pl.col("exchange").shift(1)))
        .fill_null(True)
        .arg_true()
    ).to_series().to_list()
    ranges = {
        (exchange, symbol): (a, b)
        for exchange, symbol, a, b in zip(
            table.get_column("exchange").gather(firsts).to_list(),
            table.get_column("symbol").gather(firsts).to_list(),
            firsts,
            [*firsts[1:], table.height],
            strict=True,
        )
    }
    close_ms = table.get_column("close_ms").to_numpy()
    rsi = table.get_column(rsi_name).to_numpy()
    exchanges = keys.get_column("exchange").gather(starts).to_list()
    symbols = keys.get_column("symbol").gather(starts).to_list()
    for a, b, exchange, symbol in zip(starts.tolist(), stops.tolist(), exchanges, symbols, strict=True):
        span = ranges.get((exchange, symbol))
        if span is not None:
            lo, hi = span
            out[a:b] = _asof(ts[a:b] + step, (close_ms[lo:hi], rsi[lo:hi]))
    return out
