"""Output schema, warm-up lengths and the look-back a partition must read.

Warm-up: the position (0 = a symbol's first candle in the frame) of the first value each column
can have; earlier rows are null. Look-back: how many candles before a partition's first candle
must be computed along so that every value inside the partition equals, to 1e-9 relative, the
value of one computation over the symbol's full history.
"""

from __future__ import annotations

import math

import polars as pl

from ml.indicators.params import IndicatorParams
from ml.marketdata.frames import TS

#: Key of the output (the candle key).
KEY_COLUMNS: dict[str, pl.DataType] = {
    "exchange": pl.String(),
    "symbol": pl.String(),
    "timeframe": pl.String(),
    "ts": TS,
}

#: Relative weight left to a recursive filter's seed by :func:`lookback_bars`.
LOOKBACK_TOLERANCE = 1e-12


def indicator_columns(params: IndicatorParams) -> dict[str, pl.DataType]:
    """Exact schema of :func:`ml.indicators.engine.compute_indicators` for ``params``.

    Key columns first, then one column per indicator in a fixed order: Float64 for values,
    Int64 for counts, directions and divergence signs, Boolean for flags.
    """
    f, i, b = pl.Float64(), pl.Int64(), pl.Boolean()
    cols: dict[str, pl.DataType] = dict(KEY_COLUMNS)
    cols |= {f"ema_{p}": f for p in params.ema_periods}
    cols |= {f"sma_{p}": f for p in params.sma_periods}
    cols |= {
        f"ehma_{params.ehma_period}": f,
        "macd": f,
        "macd_signal": f,
        "macd_hist": f,
        f"adx_{params.adx_period}": f,
        "supertrend": f,
        "supertrend_direction": i,
    }
    cols |= {f"rsi_{p}": f for p in params.rsi_periods}
    cols |= {
        "bb_upper": f,
        "bb_middle": f,
        "bb_lower": f,
        "bb_width": f,
        "bb_position": f,
        f"atr_{params.atr_period}": f,
        "obv": f,
        "vwap": f,
        "volume_sma_ratio": f,
        "volume_usd": f,
        "td_up": i,
        "td_down": i,
        "ob_bull_top": f,
        "ob_bull_bottom": f,
        "ob_bull_touch": b,
        "ob_bear_top": f,
        "ob_bear_bottom": f,
        "ob_bear_touch": b,
        "fvg_bull": b,
        "fvg_bear": b,
        "fvg_top": f,
        "fvg_bottom": f,
        "fvg_size_pct": f,
        f"diff_ema{params.trend_ema}_pct": f,
        "range_pct": f,
        "high_low_range_pct": f,
    }
    for fast, slow in params.ema_crosses:
        cols[f"ema_{fast}_{slow}_cross_up"] = b
        cols[f"ema_{fast}_{slow}_cross_down"] = b
    cols |= {"rsi_divergence": i, "rsi_divergence_htf": i}
    return cols


def warmup_bars(params: IndicatorParams) -> dict[str, int]:
    """First position (bars from a symbol's first candle) at which each column can be non-null.

    Columns that are null for other reasons too (flat prices, zero volume, no order block, no
    higher-timeframe data) are listed with the position from which they *can* have a value.
    """
    p = params
    out = {f"ema_{n}": n - 1 for n in p.ema_periods}
    out |= {f"sma_{n}": n - 1 for n in p.sma_periods}
    out[f"ehma_{p.ehma_period}"] = p.ehma_period - 1 + p.ehma_root - 1
    out |= dict.fromkeys(("macd", "macd_signal", "macd_hist"), p.macd_slow + p.macd_signal - 2)
    out[f"adx_{p.adx_period}"] = 2 * p.adx_period - 1
    out |= dict.fromkeys(("supertrend", "supertrend_direction"), p.supertrend_period)
    out |= {f"rsi_{n}": n for n in p.rsi_periods}
    out |= dict.fromkeys(("bb_upper", "bb_middle", "bb_lower", "bb_width", "bb_position"), p.bb_period - 1)
    out[f"atr_{p.atr_period}"] = p.atr_period
    out |= {"obv": 0, "vwap": 0, "volume_sma_ratio": p.volume_sma_period - 1, "volume_usd": 0}
    out |= {"td_up": p.td_lookback, "td_down": p.td_lookback}
    out |= dict.fromkeys(("ob_bull_touch", "ob_bear_touch"), 0)
    out |= dict.fromkeys(("ob_bull_top", "ob_bull_bottom", "ob_bear_top", "ob_bear_bottom"), 2 * p.swing_length + 1)
    out |= dict.fromkeys(("fvg_bull", "fvg_bear", "fvg_top", "fvg_bottom", "fvg_size_pct"), 2)
    out[f"diff_ema{p.trend_ema}_pct"] = p.trend_ema - 1
    out |= {"range_pct": 0, "high_low_range_pct": 0}
    for fast, slow in p.ema_crosses:
        out[f"ema_{fast}_{slow}_cross_up"] = slow
        out[f"ema_{fast}_{slow}_cross_down"] = slow
    out["rsi_divergence"] = p.divergence_rsi + p.divergence_bars
    out["rsi_divergence_htf"] = p.divergence_bars
    return out


def decay_bars(alpha: float, tolerance: float = LOOKBACK_TOLERANCE) -> int:
    """Bars after which a filter ``y_t = (1 - alpha) * y_{t-1} + alpha * x_t`` keeps less than
    ``tolerance`` of its state: ``ceil(ln(tolerance) / ln(1 - alpha))``."""
    return math.ceil(math.log(tolerance) / math.log1p(-alpha))


def lookback_bars(params: IndicatorParams) -> int:
    """Candles to read before a partition's first candle for exact values inside it.

    TA-Lib seeds its recursive filters (EMA, Wilder's RSI / ATR / ADX) with a simple mean at the
    start of *the series it is given*, so a partition computed with ``L`` candles of look-back
    starts from a different seed than the full history. The gap between the two runs is multiplied
    by ``(1 - alpha)`` at every bar: after the seed window (``n - 1`` bars) and ``k`` more bars it
    is ``(1 - alpha)**k`` of the initial gap. ``k`` is chosen so that this is at most
    ``LOOKBACK_TOLERANCE = 1e-12``: with an initial gap as large as the price itself (a 2x move
    inside the seed window) the partition is then exact to 1e-12 relative, 1000 times inside the
    1e-9 target. The slowest filter decides: EMA 200 (``alpha = 2/201``) needs
    ``199 + 2764 = 2963`` candles (123.5 days of 1h, 10.3 days of 5m, 2.1 days of 1m candles). Chained filters
    (EHMA, MACD signal, ADX) add their stages' needs.

    Non-recursive columns need their window (SMA 200: 199), TD Sequential ``4 + 13``, the
    structure columns ``2 * structure_max_age + 2 * swing_length`` (their memory is bounded by
    construction), VWAP its anchor period (the engine's partitions start on anchor boundaries).
    The one state without a bounded memory is the Supertrend's: two runs merge at the first bar
    where both flip or reset, which a Supertrend 7/3 does many times in 2963 candles; only a trend
    that never flips over the whole look-back could differ. OBV is TA-Lib's running total from
    the first candle given, so a partition's OBV differs from the full history's by a constant:
    its changes are equal, its level is not (no finite look-back fixes that).
    """
    p = params

    def ema(n: int) -> int:
        return n - 1 + decay_bars(2.0 / (n + 1))

    def wilder(n: int) -> int:
        return n + decay_bars(1.0 / n)

    needs = [ema(n) for n in p.ema_periods]
    needs += [n - 1 for n in p.sma_periods]
    needs.append(max(ema(p.ehma_half), ema(p.ehma_period)) + ema(p.ehma_root))
    needs.append(ema(p.macd_slow) + ema(p.macd_signal))
    needs.append(2 * wilder(p.adx_period))
    needs.append(wilder(p.supertrend_period))
    needs += [wilder(n) + p.divergence_bars for n in p.rsi_periods]
    needs += [p.bb_period - 1, wilder(p.atr_period), p.volume_sma_period - 1]
    needs.append(p.td_lookback + p.td_max_count)
    needs.append(2 * p.structure_max_age + 2 * p.swing_length + 1)
    return max(needs)
