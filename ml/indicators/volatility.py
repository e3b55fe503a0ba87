"""Volatility: Bollinger Bands and ATR (TA-Lib's C functions, one call per symbol segment).

* ``bb_upper``, ``bb_middle``, ``bb_lower``: TA-Lib ``BBANDS(20, 2, 2, SMA)``: the middle band is
  the SMA 20 of the close, the bands are ``middle +- 2 * sigma`` with ``sigma`` the *population*
  standard deviation (divisor 20, not 19) of the same 20 closes; from position 19.
* ``bb_width = (upper - lower) / middle`` (a fraction; 0 for flat prices).
* ``bb_position = (close - lower) / (upper - lower)``: 0 on the lower band, 1 on the upper band,
  outside [0, 1] beyond them; null where the bands coincide (flat prices).
* ``atr_n``: TA-Lib ATR: the mean of the first ``n`` true ranges (positions 1..n, the first bar has
  no previous close), then Wilder-smoothed ``ATR_t = (ATR_{t-1} * (n - 1) + TR_t) / n``; from
  position ``n``.

Bit-for-bit TA-Lib on the symbol's own candles: the values are TA-Lib's own
(:mod:`ml.indicators.talib_c`).
"""

from __future__ import annotations

import numpy as np

from ml.indicators.jit import kernel
from ml.indicators.talib_c import atr_into, bbands_into


@kernel
def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, NaN (null) where the denominator is 0 or NaN."""
    if denominator == 0.0 or denominator != denominator:
        return np.nan
    return numerator / denominator


@kernel
def volatility_kernel(bbands: int, atr: int, c: np.ndarray, h: np.ndarray, lo: np.ndarray,
                      starts: np.ndarray, stops: np.ndarray, period: int, k: float, atr_n: int,
                      out: np.ndarray) -> None:
    """Rows of ``out``: upper, middle, lower band, width, position, ATR (NaN = null).

    ``bbands`` and ``atr`` are the addresses of TA-Lib's ``TA_BBANDS`` and ``TA_ATR``.
    """
    meta = np.zeros(2, dtype=np.int32)
    upper, middle, lower, width, position = out[0], out[1], out[2], out[3], out[4]
    for seg in range(starts.shape[0]):
        a, b = starts[seg], stops[seg]
        bbands_into(bbands, c, a, b, period, k, upper, middle, lower, meta)
        atr_into(atr, h, lo, c, a, b, atr_n, out[5], meta)
        closes, uppers, middles, lowers = c[a:b], upper[a:b], middle[a:b], lower[a:b]
        widths, positions = width[a:b], position[a:b]
        for j in range(b - a):
            spread = uppers[j] - lowers[j]
            widths[j] = ratio(spread, middles[j])
            positions[j] = ratio(closes[j] - lowers[j], spread)
