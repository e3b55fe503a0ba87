"""Trend indicators: EMA, SMA, EHMA, MACD and ADX (TA-Lib, one call per symbol segment).

Conventions (all TA-Lib's, ``TA_COMPATIBILITY_DEFAULT``, unstable period 0); positions count bars
from a symbol's first candle in the frame, and earlier rows are null:

* ``ema_n``: ``EMA_t = EMA_{t-1} + (x_t - EMA_{t-1}) * 2 / (n + 1)`` seeded at position ``n - 1``
  with the simple mean of the first ``n`` closes.
* ``sma_n``: mean of the last ``n`` closes, from position ``n - 1``.
* ``ehma_n`` (exponential Hull): ``EMA(2 * EMA(close, n // 2) - EMA(close, n), round(sqrt(n)))``.
  The inner difference exists from ``n - 1``; the outer EMA is seeded with the mean of its first
  ``round(sqrt(n))`` values, so EHMA 180 starts at ``179 + 12 = 191``.
* ``macd``, ``macd_signal``, ``macd_hist``: TA-Lib ``MACD(12, 26, 9)``: both EMAs start at
  position ``slow - 1`` (the fast one is seeded with the mean of the 12 closes ending there, not
  of the first 12), the signal is the EMA 9 of the line seeded with the mean of its first 9
  values; all three are output from ``slow + signal - 2 = 33``.
* ``adx_n``: Wilder's ADX: +DM, -DM and true range summed over the first ``n - 1`` changes then
  Wilder-smoothed (``S_t = S_{t-1} - S_{t-1} / n + x_t``); DX averaged over its first ``n``
  values then Wilder-smoothed; output from ``2n - 1 = 27``. Null until a symbol's true range is
  first positive (0/0; TA-Lib would report 0 there).

Every column is TA-Lib run on that symbol alone (one call per symbol segment, on views of the
long arrays), so it equals TA-Lib on the symbol's own candles bit for bit.
"""

from __future__ import annotations

import numpy as np

from ml.indicators.blocks import Block
from ml.indicators.params import IndicatorParams
from ml.indicators.ta import ta


def trend_columns(block: Block, params: IndicatorParams) -> dict[str, np.ndarray]:
    """EMA, SMA, EHMA, MACD and ADX columns of ``block`` (float64, NaN where null)."""
    c, h, lo = block.close, block.high, block.low
    size = block.size
    emas = {p: np.empty(size) for p in params.ema_periods}
    smas = {p: np.empty(size) for p in params.sma_periods}
    ehma, macd, signal, hist, adx = (np.empty(size) for _ in range(5))
    half, full, root = params.ehma_half, params.ehma_period, params.ehma_root
    fast, slow, sig = params.macd_fast, params.macd_slow, params.macd_signal
    adx_n = params.adx_period
    for a, b in block.bounds:
        cs = c[a:b]
        for p, out in emas.items():
            out[a:b] = ta.EMA(cs, p)
        for p, out in smas.items():
            out[a:b] = ta.SMA(cs, p)
        inner = ta.EMA(cs, half)
        inner *= 2.0
        inner -= ta.EMA(cs, full)
        ehma[a:b] = ta.EMA(inner, root)  # TA-Lib skips the leading NaN of ``inner``
        macd[a:b], signal[a:b], hist[a:b] = ta.MACD(cs, fast, slow, sig)
        adx[a:b] = ta.ADX(h[a:b], lo[a:b], cs, adx_n)
    out: dict[str, np.ndarray] = {f"ema_{p}": v for p, v in emas.items()}
    out |= {f"sma_{p}": v for p, v in smas.items()}
    out[f"ehma_{full}"] = ehma
    out["macd"], out["macd_signal"], out["macd_hist"] = macd, signal, hist
    adx[~block.since_first(true_range_positive(block))] = np.nan
    out[f"adx_{adx_n}"] = adx
    return out


def true_range_positive(block: Block) -> np.ndarray:
    """Rows (from a segment's second) whose true range is positive: the bar moved."""
    h, lo, c = block.high, block.low, block.close
    out = h != lo
    out[1:] |= (h[1:] != c[:-1]) | (lo[1:] != c[:-1])
    return block.null_heads(out, 1, value=False)
