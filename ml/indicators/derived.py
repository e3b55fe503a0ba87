"""Derived columns: distances in percent, EMA crossovers, RSI divergence (one and two timeframes).

* ``diff_ema200_pct = (close - ema_200) / ema_200 * 100`` (null while the EMA is).
* ``range_pct = (close - open) / open * 100``; ``high_low_range_pct = (high - low) / low * 100``
  (null where the divisor is 0).
* ``ema_{f}_{s}_cross_up``: EMA ``f`` is above EMA ``s`` at this candle and was at or below it at
  the previous one; ``..._cross_down`` the mirror. Null until both EMAs exist at the previous
  candle (position ``s``).
* ``rsi_divergence`` over ``N = divergence_bars`` (14) candles with ``RSI = rsi_{divergence_rsi}``:
  +1 (bullish) when ``close[t] < close[t-N]`` while ``RSI[t] > RSI[t-N]``; -1 (bearish) when
  ``close[t] > close[t-N]`` while ``RSI[t] < RSI[t-N]``; 0 otherwise; null while ``RSI[t-N]`` is.
* ``rsi_divergence_htf``: the same comparison with the *higher timeframe's* RSI in place of this
  timeframe's: ``RSI_htf[t]`` is the RSI of the latest higher-timeframe candle that has *closed*
  at or before this candle's close (``htf_open + htf_length <= open + length``), so a candle never
  sees a higher-timeframe candle still forming. Null where either value is missing.
"""

from __future__ import annotations

import numpy as np

from ml.indicators.blocks import Block, ratio
from ml.indicators.params import IndicatorParams


def divergence(block: Block, close: np.ndarray, momentum: np.ndarray, bars: int) -> np.ndarray:
    """+1 / -1 / 0 divergence of ``close`` and ``momentum`` over ``bars`` rows (NaN = null)."""
    n = close.shape[0]
    out = np.full(n, np.nan)
    if n <= bars:
        return out
    c1, c0 = close[bars:], close[:-bars]
    m1, m0 = momentum[bars:], momentum[:-bars]
    bullish = (c1 < c0) & (m1 > m0)
    bearish = (c1 > c0) & (m1 < m0)
    np.subtract(bullish, bearish, out=out[bars:], dtype=np.float64)
    out[bars:][np.isnan(m1) | np.isnan(m0)] = np.nan
    return block.null_heads(out, bars)


def derived_columns(
    block: Block,
    params: IndicatorParams,
    computed: dict[str, np.ndarray],
    higher_rsi: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Derived columns of ``block`` from its candles and the ``computed`` trend/momentum columns.

    ``higher_rsi`` is the as-of higher-timeframe RSI of every row (NaN where none), or None.
    """
    o, h, lo, c = block.open, block.high, block.low, block.close
    trend = computed[f"ema_{params.trend_ema}"]
    out: dict[str, np.ndarray] = {}
    out[f"diff_ema{params.trend_ema}_pct"] = ratio(c - trend, trend, 100.0)
    out["range_pct"] = ratio(c - o, o, 100.0)
    out["high_low_range_pct"] = ratio(h - lo, lo, 100.0)
    for fast, slow in params.ema_crosses:
        f, s = computed[f"ema_{fast}"], computed[f"ema_{slow}"]
        above, below = f > s, f < s
        up = np.zeros(block.size)
        down = np.zeros(block.size)
        if block.size > 1:
            up[1:] = above[1:] > above[:-1]
            down[1:] = below[1:] > below[:-1]
        out[f"ema_{fast}_{slow}_cross_up"] = block.null_heads(up, slow)
        out[f"ema_{fast}_{slow}_cross_down"] = block.null_heads(down, slow)
    rsi = computed[f"rsi_{params.divergence_rsi}"]
    n = params.divergence_bars
    out["rsi_divergence"] = divergence(block, c, rsi, n)
    if higher_rsi is None:
        out["rsi_divergence_htf"] = np.full(block.size, np.nan)
    else:
        out["rsi_divergence_htf"] = divergence(block, c, higher_rsi, n)
    return out
