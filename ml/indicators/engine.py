"""The indicator engine: every indicator of :mod:`ml.indicators` over a long candle frame at once.

``compute_indicators`` takes candles of one timeframe for any number of exchanges and symbols and
returns one row per candle with the columns of :data:`INDICATOR_COLUMNS`. It never builds a frame
per symbol: the long frame is sorted by ``(exchange, symbol, ts)`` once and its numpy columns are
cut into blocks of whole symbol segments (:mod:`ml.indicators.blocks`). In a block, TA-Lib runs
once per segment on views of the long arrays (its recursive filters must restart at every
symbol, and a call on a view costs microseconds), everything TA-Lib lacks is vectorised over all
the block's rows at once, and the block is converted to a polars frame; blocks run on a thread
pool (TA-Lib and numpy release the GIL). The Supertrend recursion runs beside them, vectorised
over lanes of all symbols (:mod:`ml.indicators.supertrend`).

Every value of a symbol depends on that symbol's candles only (never on the other symbols in the
frame), so a symbol computed alone or among thousands gives the same bits.

No look-ahead: every column at a candle is a function of that symbol's candles up to and including
it (and, for ``rsi_divergence_htf``, of higher-timeframe candles closed by its close); the tests
prove it by changing and by dropping candles after random cut points.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import numpy as np
import polars as pl

from ml.indicators.blocks import make_block, split_blocks
from ml.indicators.derived import derived_columns
from ml.indicators.exhaustion import exhaustion_columns
from ml.indicators.momentum import momentum_columns
from ml.indicators.params import IndicatorParams
from ml.indicators.schema import KEY_COLUMNS, indicator_columns, lookback_bars, warmup_bars
from ml.indicators.structure import structure_columns
from ml.indicators.supertrend import supertrend_columns
from ml.indicators.trend import trend_columns
from ml.indicators.volatility import volatility_columns
from ml.indicators.volume import RAW_VOLUME_QUOTE, volume_columns
from ml.marketdata.frames import TS
from ml.marketdata.timeframes import DAY_MS, timeframe_ms


def nominal_ms(timeframe: str) -> int:
    """Length of a candle of ``timeframe``; a calendar month counts as 31 days.

    Used for the VWAP anchor (a month candle is its own anchor period) and for the close time of
    higher-timeframe rows in as-of joins, where 31 days makes a month's RSI usable only once the
    month has surely closed: possibly a little late, never early.
    """
    return 31 * DAY_MS if timeframe == "1M" else timeframe_ms(timeframe)

logger = logging.getLogger(__name__)

__all__ = [
    "INDICATOR_COLUMNS",
    "compute_indicators",
    "indicator_columns",
    "lookback_bars",
    "warmup_bars",
]

#: Exact output schema of :func:`compute_indicators` with default parameters (key columns first).
INDICATOR_COLUMNS: dict[str, pl.DataType] = indicator_columns(IndicatorParams())

#: Quote currency whose prices are USDT already.
USDT = "USDT"

_PRICES = ("open", "high", "low", "close", "volume")


def compute_indicators(
    candles: pl.DataFrame,
    *,
    params: IndicatorParams = IndicatorParams(),  # noqa: B008 - frozen, immutable default
    quote_to_usdt: Mapping[str, pl.DataFrame] | None = None,
    higher_timeframe_rsi: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Every indicator column for every candle of a long candle frame.

    Parameters
    ----------
    candles : polars.DataFrame
        :data:`~ml.marketdata.frames.CANDLE_SCHEMA` rows of one timeframe, any exchanges and
        symbols, in any order; ``ts`` is the candle's open time (UTC). Prices in quote currency,
        volume in base units; no nulls or non-finite values; one row per key.
    params : IndicatorParams
        Periods and options (defaults: the seed suites).
    quote_to_usdt : mapping of str to polars.DataFrame, optional
        For pairs not quoted in USDT: the quote currency's USDT price, keyed by the quote
        (``"BTC"`` for ``ETH/BTC``; the quote is what follows ``/`` in the symbol, up to ``:``).
        Each frame has ``ts`` (open time, UTC), ``close`` and optionally ``timeframe`` (default:
        the candles' timeframe), e.g. BTC/USDT candles. A candle uses the close of the latest
        quote candle closed at or before its own close. Without a frame ``volume_usd`` is null.
    higher_timeframe_rsi : polars.DataFrame, optional
        ``exchange, symbol, timeframe, ts`` and ``rsi_{params.divergence_rsi}`` of a higher
        timeframe (e.g. this function's output for 4h candles). Without it
        ``rsi_divergence_htf`` is null.

    Returns
    -------
    polars.DataFrame
        Schema :func:`~ml.indicators.schema.indicator_columns` (``INDICATOR_COLUMNS`` for default
        parameters), sorted by ``(exchange, symbol, ts)``, one row per candle. A value is null
        during its warm-up (:func:`~ml.indicators.schema.warmup_bars`, counted from each
        symbol's first candle in ``candles``) and wherever it is undefined; never NaN or inf.
        Values inside a partition equal a full-history computation to 1e-9 relative when the
        partition is given :func:`~ml.indicators.schema.lookback_bars` candles of look-back,
        except ``obv``: a running total from the first candle given (as TA-Lib's), of which
        only the changes carry over.

    Raises
    ------
    ValueError
        On missing columns, several timeframes, null or non-finite prices or volumes, or
        duplicate ``(exchange, symbol, ts)`` keys.
    """
    schema = indicator_columns(params)
    frame, arrays, seg_starts = _prepare(candles)
    if frame.height == 0:
        return pl.DataFrame(schema=schema)
    timeframe = str(frame.get_column("timeframe")[0])
    step = nominal_ms(timeframe)
    seg_stops = np.append(seg_starts[1:], frame.height).astype(np.int64)
    keys = frame.select(list(KEY_COLUMNS))
    rates = _quote_rates(keys, arrays["ts"], seg_starts, seg_stops, step, quote_to_usdt)
    higher = _higher_rsi(keys, arrays["ts"], seg_starts, seg_stops, step, params, higher_timeframe_rsi)
    block_dtypes = {
        name: dtype
        for name, dtype in schema.items()
        if name not in KEY_COLUMNS and name not in ("supertrend", "supertrend_direction")
    }

    def work(rows: slice) -> pl.DataFrame:
        block = make_block(rows, seg_starts, seg_stops, arrays)
        computed = trend_columns(block, params)
        computed |= momentum_columns(block, params)
        computed |= volatility_columns(block, params)
        computed |= volume_columns(block, params, step_ms=step)
        computed |= exhaustion_columns(block, params)
        computed |= structure_columns(block, params)
        computed |= derived_columns(
            block, params, computed, None if higher is None else higher[rows]
        )
        usd = computed.pop(RAW_VOLUME_QUOTE)
        computed["volume_usd"] = usd if rates is None else usd * rates[rows]
        return _to_polars(computed, block_dtypes)

    def supertrend_frame() -> pl.DataFrame:
        line, direction = supertrend_columns(arrays, seg_starts, seg_stops, params)
        return _to_polars(
            {"supertrend": line, "supertrend_direction": direction},
            {"supertrend": pl.Float64(), "supertrend_direction": pl.Int64()},
        )

    blocks = split_blocks(seg_starts, seg_stops)
    workers = min(len(blocks) + 1, _threads())
    logger.debug(
        "indicators: %d candles, %d symbols, %s, %d blocks on %d threads",
        frame.height, seg_starts.shape[0], timeframe, len(blocks), workers,
    )
    if workers > 1:
        with ThreadPoolExecutor(workers, thread_name_prefix="indicators") as pool:
            trend_future = pool.submit(supertrend_frame)  # runs beside the blocks
            parts = list(pool.map(work, blocks))
            trend_frame = trend_future.result()
    else:
        trend_frame = supertrend_frame()
        parts = [work(rows) for rows in blocks]
    values = pl.concat(parts, how="vertical", rechunk=False)
    return pl.concat([keys, values, trend_frame], how="horizontal").select(list(schema))


def _threads() -> int:
    return max(1, min(os.cpu_count() or 1, pl.thread_pool_size()))


def _to_polars(columns: dict[str, np.ndarray], dtypes: dict[str, pl.DataType]) -> pl.DataFrame:
    """Numpy columns as a frame of ``dtypes``: float64 (NaN = null, cast to the dtype) or bool
    (no nulls). Conversions run in Rust."""
    series = []
    for name, dtype in dtypes.items():
        values = columns[name]
        if values.dtype == np.bool_:
            series.append(pl.Series(name, values))
            continue
        s = pl.Series(name, values, nan_to_null=True)
        series.append(s if dtype == pl.Float64 else s.cast(dtype))
    return pl.DataFrame(series)


def _prepare(candles: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, np.ndarray], np.ndarray]:
    """Validated candles sorted by the key, their numpy columns and segment start rows."""
    missing = [c for c in ("exchange", "symbol", "timeframe", "ts", *_PRICES) if c not in candles.columns]
    if missing:
        raise ValueError(f"candles lack columns {missing}; expected CANDLE_SCHEMA")
    wanted = {"exchange": pl.String(), "symbol": pl.String(), "timeframe": pl.String(), "ts": TS}
    wanted |= {c: pl.Float64() for c in _PRICES}
    frame = candles.select(
        pl.col(c) if candles.schema[c] == dtype else pl.col(c).cast(dtype)
        for c, dtype in wanted.items()
    )
    if frame.height == 0:
        return frame, {}, np.zeros(0, dtype=np.int64)
    if sum(frame.null_count().row(0)):
        raise ValueError("candles hold nulls; every key, price and volume must be set")
    timeframe = frame.get_column("timeframe")
    if (timeframe != timeframe[0]).any():
        raise ValueError(f"candles hold several timeframes {sorted(timeframe.unique().to_list())}")
    frame = frame.rechunk()
    starts = _boundaries(frame)
    if not _is_sorted(frame, starts):
        frame = _sort(frame).rechunk()
        starts = _boundaries(frame)
    arrays = {c: frame.get_column(c).to_numpy() for c in _PRICES}
    for name, values in arrays.items():
        if not np.isfinite(values.sum()):
            raise ValueError(f"candles hold non-finite {name} values; clean them first")
    arrays["ts"] = frame.get_column("ts").to_physical().to_numpy()
    repeated = np.diff(arrays["ts"]) == 0
    repeated[starts[1:] - 1] = False
    if repeated.any():
        key = frame.row(int(np.flatnonzero(repeated)[0]), named=True)
        raise ValueError(
            f"duplicate candle key ({key['exchange']}, {key['symbol']}, {key['ts']}): "
            "one row per (exchange, symbol, ts)"
        )
    return frame, arrays, starts


def _boundaries(frame: pl.DataFrame) -> np.ndarray:
    """Row index where each (exchange, symbol) run starts."""
    new = pl.col("symbol") != pl.col("symbol").shift(1)
    exchange = frame.get_column("exchange")
    if (exchange != exchange[0]).any():
        new = new | (pl.col("exchange") != pl.col("exchange").shift(1))
    starts = frame.select(new.fill_null(True).arg_true()).to_series().to_numpy()
    return starts.astype(np.int64)


def _is_sorted(frame: pl.DataFrame, starts: np.ndarray) -> bool:
    keys = list(
        zip(frame.get_column("exchange").gather(starts).to_list(),
            frame.get_column("symbol").gather(starts).to_list(), strict=True)
    )
    if any(a >= b for a, b in pairwise(keys)):
        return False
    ts = frame.get_column("ts").to_physical().to_numpy()
    rising = np.diff(ts) >= 0
    rising[starts[1:] - 1] = True
    return bool(rising.all())


def _sort(frame: pl.DataFrame) -> pl.DataFrame:
    keys = (
        frame.select("exchange", "symbol").unique().sort("exchange", "symbol")
        .with_row_index("_segment")
    )
    ordered = frame.join(keys, on=["exchange", "symbol"], how="left").sort("_segment", "ts")
    return ordered.drop("_segment")


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


def _quote_rates(
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


def _higher_rsi(
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
    groups = higher.partition_by("exchange", "symbol", as_dict=True)
    exchanges = keys.get_column("exchange").gather(starts).to_list()
    symbols = keys.get_column("symbol").gather(starts).to_list()
    for a, b, exchange, symbol in zip(starts.tolist(), stops.tolist(), exchanges, symbols, strict=True):
        group = groups.get((exchange, symbol))
        if group is not None:
            out[a:b] = _asof(ts[a:b] + step, _asof_close(group, rsi_name, step))
    return out
