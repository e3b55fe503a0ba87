"""Volatility: Bollinger Bands and ATR (TA-Lib, one call per symbol segment).

* ``bb_upper``, ``bb_middle``, ``bb_lower``: TA-Lib ``BBANDS(20, 2, 2, SMA)``: the middle band is
  the SMA 20 of the close, the bands are ``middle +- 2 * sigma`` with ``sigma`` the *population*
  standard deviation (divisor 20, not 19) of the same 20 closes; from position 19.
* ``bb_width = (upper - lower) / middle`` (a fraction; 0 for flat prices).
* ``bb_position = (close - lower) / (upper - lower)``: 0 on the lower band, 1 on the upper band,
  outside [0, 1] beyond them; null where the bands coincide (flat prices).
* ``atr_n``: TA-Lib ATR: the mean of the first ``n`` true ranges (positions 1..n, the first bar has
  no previous close), then Wilder-smoothed ``ATR_t = (ATR_{t-1} * (n - 1) + TR_t) / n``; from
  position ``n``.

Bit-for-bit TA-Lib on the symbol's own candles (one call per symbol segment).
"""

from __future__ import annotations

import numpy as np

from ml.indicators.blocks import Block, ratio
from ml.indicators.params import IndicatorParams
from ml.indicators.ta import ta


def volatility_columns(block: Block, params: IndicatorParams) -> dict[str, np.ndarray]:
    """Bollinger columns and ``atr_n`` (float64, NaN where null)."""
    c, h, lo = block.close, block.high, block.low
    upper, middle, lower, atr = (np.empty(block.size) for _ in range(4))
    n, k = params.bb_period, params.bb_stddev
    atr_n = params.atr_period
    for a, b in block.bounds:
        cs = c[a:b]
        upper[a:b], middle[a:b], lower[a:b] = ta.BBANDS(cs, n, k, k, 0)
        atr[a:b] = ta.ATR(h[a:b], lo[a:b], cs, atr_n)
    spread = upper - lower
    width = ratio(spread, middle)
    position = ratio(block.close - lower, spread)
    return {
        "bb_upper": upper,
        "bb_middle": middle,
        "bb_lower": lower,
        "bb_width": width,
        "bb_position": position,
        f"atr_{atr_n}": atr,
    }
