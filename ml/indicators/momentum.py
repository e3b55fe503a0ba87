"""Momentum: Wilder's RSI (TA-Lib, one call per symbol segment).

``rsi_n``: TA-Lib's RSI. The average gain and average loss are the plain means of the first ``n``
close-to-close changes (so the first value is at position ``n``), then Wilder-smoothed:
``A_t = (A_{t-1} * (n - 1) + x_t) / n``; ``RSI = 100 * gain / (gain + loss)``. Null until a
symbol's close first changes (0/0; TA-Lib reports 0 there). Bit-for-bit TA-Lib on the symbol's
own closes otherwise.
"""

from __future__ import annotations

import numpy as np

from ml.indicators.blocks import Block
from ml.indicators.params import IndicatorParams
from ml.indicators.ta import ta


def momentum_columns(block: Block, params: IndicatorParams) -> dict[str, np.ndarray]:
    """``rsi_n`` for every ``n`` in ``params.rsi_periods`` (float64 in [0, 100], NaN = null)."""
    c = block.close
    outs = {p: np.empty(block.size) for p in params.rsi_periods}
    for a, b in block.bounds:
        cs = c[a:b]
        for p, out in outs.items():
            out[a:b] = ta.RSI(cs, p)
    change = np.empty(block.size, dtype=bool)
    np.not_equal(c[1:], c[:-1], out=change[1:])
    moved = block.since_first(block.null_heads(change, 1, value=False))
    result = {}
    for p, out in outs.items():
        out[~moved] = np.nan
        result[f"rsi_{p}"] = out
    return result
