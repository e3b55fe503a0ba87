"""The indicator engine: every indicator of :mod:`ml.indicators` over a long candle frame at once.

``compute_indicators`` takes candles of one timeframe for any number of exchanges and symbols and
returns one row per candle with the columns of :data:`INDICATOR_COLUMNS`. It never builds a frame
per symbol: the long frame is sorted by ``(exchange, symbol, ts)`` once, its numpy columns are cut
into symbol segments, and compiled kernels (numba, ``nogil``; :mod:`ml.indicators.jit`) loop over
the segments of a block (:mod:`ml.indicators.blocks`), each writing its columns for whole segments
straight into preallocated long arrays (:mod:`ml.indicators.layout`). Blocks run on a thread pool;
each thread also packs the float columns' validity bits of its block (:mod:`ml.indicators.bitmaps`),
and the arrays become the output frame's memory in one conversion at the end. The arrays come
from Arrow's memory pool, which keeps freed pages for the next call.

Inside the kernels, loops run over zero-based views of a segment (indices the compiler can
prove in range, so straight loops vectorise), and coin-toss decisions on a random walk (up or
down candle, a swing test, a gap, OBV's sign) are selects rather than branches.

Where TA-Lib has an indicator the values are TA-Lib's, bit for bit: RSI, ATR and Bollinger Bands
are TA-Lib's own C functions called from the kernels (:mod:`ml.indicators.talib_c`); EMA, SMA,
EHMA, MACD, ADX and OBV are TA-Lib's arithmetic transcribed operation for operation and fused into
one pass per segment (:mod:`ml.indicators.trend`), which the tests check against ``talib``. The
rest (Supertrend, TD Sequential, order blocks, fair value gaps, VWAP, derived columns) is this
package's own code, one sequential pass per segment, checked against per-row loops and
pandas-ta-classic.

Every value of a symbol depends on that symbol's candles only (never on the other symbols in the
frame), so a symbol computed alone or among thousands gives the same bits.

No look-ahead: every column at a candle is a function of that symbol's candles up to and including
it (and, for ``rsi_divergence_htf``, of higher-timeframe candles closed by its close); the tests
prove it by changing and by dropping candles after random cut points.

The first call in a process loads the compiled kernels from numba's cache in ``__pycache__``
(about a second); on a machine without that cache the first call compiles them (about half a
minute) and writes the cache.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl

from ml.indicators.asof import higher_rsi, nominal_ms, quote_rates
from ml.indicators.bitmaps import pack_not_nan
from ml.indicators.blocks import split_blocks
from ml.indicators.derived import derived_kernel
from ml.indicators.exhaustion import exhaustion_kernel
from ml.indicators.layout import SCRATCH, Buffers, float_groups
from ml.indicators.momentum import momentum_kernel
from ml.indicators.params import IndicatorParams
from ml.indicators.prepare import finite_rows, prepare_candles, require_finite
from ml.indicators.schema import KEY_COLUMNS, indicator_columns, lookback_bars, warmup_bars
from ml.indicators.structure import structure_kernel
from ml.indicators.supertrend import supertrend_kernel
from ml.indicators.talib_c import addresses
from ml.indicators.trend import trend_kernel
from ml.indicators.volatility import volatility_kernel
from ml.indicators.volume import INLINE_ANCHORS, resolve_anchor, volume_kernel

logger = logging.getLogger(__name__)

__all__ = [
    "INDICATOR_COLUMNS",
    "compute_indicators",
    "indicator_columns",
    "lookback_bars",
    "nominal_ms",
    "warmup_bars",
]

#: Exact output schema of :func:`compute_indicators` with default parameters (key columns first).
INDICATOR_COLUMNS: dict[str, pl.DataType] = indicator_columns(IndicatorParams())


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
    frame, arrays, seg_starts = prepare_candles(candles, check_finite=False)
    if frame.height == 0:
        return pl.DataFrame(schema=schema)
    timeframe = str(frame.get_column("timeframe")[0])
    step = nominal_ms(timeframe)
    seg_stops = np.append(seg_starts[1:], frame.height).astype(np.int64)
    keys = frame.select(list(KEY_COLUMNS))
    rates = quote_rates(keys, arrays["ts"], seg_starts, seg_stops, step, quote_to_usdt)
    higher = higher_rsi(keys, arrays["ts"], seg_starts, seg_stops, step, params, higher_timeframe_rsi)
    out = Buffers.allocate(params, frame.height)
    bits = out.float_bitmaps()
    run = _block_runner(arrays, seg_starts, seg_stops, params, step, higher, rates, out, bits)
    blocks = split_blocks(seg_starts, seg_stops, _threads())
    workers = min(len(blocks), _threads())
    logger.debug(
        "indicators: %d candles, %d symbols, %s, %d blocks on %d threads",
        frame.height, seg_starts.shape[0], timeframe, len(blocks), workers,
    )
    if workers > 1:
        with ThreadPoolExecutor(workers, thread_name_prefix="indicators") as pool:
            finite = list(pool.map(run, blocks))
    else:
        finite = [run(block) for block in blocks]
    if not all(finite):
        require_finite(arrays)
    for block in blocks[1:]:  # the bitmap bytes that straddle two blocks
        first = int(seg_starts[block.start])
        pack_not_nan(out.floats, first // 8 * 8, min(first // 8 * 8 + 8, frame.height), bits)
    return pl.concat([keys, out.to_frame(bits)], how="horizontal").select(list(schema))


def _threads() -> int:
    return max(1, min(os.cpu_count() or 1, pl.thread_pool_size()))


def _block_runner(
    arrays: dict[str, np.ndarray],
    starts: np.ndarray,
    stops: np.ndarray,
    params: IndicatorParams,
    step: int,
    higher: np.ndarray | None,
    rates: np.ndarray | None,
    out: Buffers,
    bits: np.ndarray,
) -> Callable[[slice], bool]:
    """The work of one block of segments: every kernel over the block's rows, in dependency
    order, into the block's rows of ``out``, then the validity bits of the whole bytes of
    ``bits`` inside the block (while its rows are in cache; the caller packs the bytes that
    straddle two blocks). Returns whether the block's prices and volumes are all finite."""
    p = params
    rsi_address, atr_address, bbands_address, adx_address = addresses()
    ints = np.asarray
    rsis = ints(p.rsi_periods, np.int64)
    chains, smas, trend_rows, work_rows = _trend_layout(p)
    anchor = resolve_anchor(p.vwap_anchor, step)
    offset, width = INLINE_ANCHORS.get(anchor, (0, 1))
    months = None if anchor in INLINE_ANCHORS else _month_ids(arrays["ts"])
    position = {n: i for i, n in enumerate(p.ema_periods)}
    pairs = ints([(position[f], position[s], s) for f, s in p.ema_crosses], np.int64).reshape(-1, 3)
    divergence_row = p.rsi_periods.index(p.divergence_rsi)

    trend, momentum = out.group("trend"), out.group("momentum")
    o, h, lo, c, v, ts = (arrays[k] for k in ("open", "high", "low", "close", "volume", "ts"))
    anchor_ids = np.zeros(0, np.int64) if months is None else months
    higher_rows = np.zeros(0) if higher is None else higher
    rows = out.floats.shape[1]

    def run(block: slice) -> bool:
        s, e = starts[block], stops[block]
        trend_kernel(adx_address, c, h, lo, s, e, chains, smas, trend_rows, p.adx_period, work_rows,
                     trend)
        momentum_kernel(rsi_address, c, s, e, rsis, momentum)
        volatility_kernel(bbands_address, atr_address, c, h, lo, s, e, p.bb_period,
                          float(p.bb_stddev), p.atr_period, out.group("volatility"))
        volume_kernel(c, h, lo, v, ts, s, e, offset, width, anchor_ids, p.volume_sma_period,
                      out.group("volume"))
        exhaustion_kernel(c, s, e, p.td_lookback, p.td_max_count, out.ints[1], out.ints[2],
                          out.ints_valid[1])
        structure_kernel(o, h, lo, c, s, e, p.swing_length, p.structure_max_age,
                         out.group("structure"), out.bools[:4], out.bools_valid[0])
        supertrend_kernel(atr_address, h, lo, c, s, e, p.supertrend_period,
                          float(p.supertrend_multiplier), out.group("supertrend")[0], out.ints[0],
                          out.ints_valid[0])
        derived_kernel(o, h, lo, c, s, e, trend[position[p.trend_ema]], pairs, trend,
                       momentum[divergence_row], higher_rows, p.divergence_bars,
                       out.group("derived"), out.bools[4:], out.bools_valid[1:], out.ints[3:],
                       out.ints_valid[2:])
        first, last = int(s[0]), int(e[-1])
        if rates is not None:
            out.float_row("volume_usd")[first:last] *= rates[first:last]
        begin, end = -(-first // 8) * 8, (last if last == rows else last // 8 * 8)
        if begin < end:
            pack_not_nan(out.floats, begin, end, bits)
        return finite_rows(arrays, first, last)

    return run


def _trend_layout(p: IndicatorParams) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The EMA chains, SMA rows and other rows :func:`~ml.indicators.trend.trend_kernel` needs,
    and its number of working rows: the trend columns, then the scratch rows (inner EMAs)."""
    groups = float_groups(p)
    trend, scratch = groups["trend"], groups[SCRATCH]

    def row(name: str) -> int:
        return trend.index(name) if name in trend else len(trend) + scratch.index(name)

    half, full, slow, fast = (row(n) for n in ("_ema_half", "_ema_full", "_macd_slow", "_macd_fast"))
    chains = [(-1, row(f"ema_{n}"), 0, n) for n in p.ema_periods]
    chains += [(-1, half, 0, p.ehma_half), (-1, full, 0, p.ehma_period), (-1, slow, 0, p.macd_slow),
               (-1, fast, p.macd_slow - p.macd_fast, p.macd_fast)]
    chains += [(half, row(f"ehma_{p.ehma_period}"), p.ehma_period - 1, p.ehma_root),
               (row("macd"), row("macd_signal"), p.macd_slow - 1, p.macd_signal)]
    smas = [(row(f"sma_{n}"), n) for n in p.sma_periods]
    rows = [row(n) for n in (f"ehma_{p.ehma_period}", "macd", "macd_signal", "macd_hist",
                             f"adx_{p.adx_period}")]
    rows += [p.ehma_period - 1 + p.ehma_root - 1, p.macd_slow + p.macd_signal - 2, half, full, slow, fast]
    return (np.asarray(chains, np.int64), np.asarray(smas, np.int64).reshape(-1, 2),
            np.asarray(rows, np.int64), len(trend) + len(scratch))


def _month_ids(ts: np.ndarray) -> np.ndarray:
    """Calendar month (UTC) of each open time, as months since 1970-01."""
    return ts.astype("datetime64[ms]").astype("datetime64[M]").astype(np.int64)
