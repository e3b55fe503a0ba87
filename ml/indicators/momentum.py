"""Momentum: Wilder's RSI (TA-Lib's C function, one call per symbol segment).

``rsi_n``: TA-Lib's RSI. The average gain and average loss are the plain means of the first ``n``
close-to-close changes (so the first value is at position ``n``), then Wilder-smoothed:
``A_t = (A_{t-1} * (n - 1) + x_t) / n``; ``RSI = 100 * gain / (gain + loss)``. Null until a
symbol's close first changes (0/0; TA-Lib reports 0 there). Bit-for-bit TA-Lib on the symbol's
own closes otherwise: the values are TA-Lib's own (:mod:`ml.indicators.talib_c`).
"""

from __future__ import annotations

import numpy as np

from ml.indicators.jit import kernel
from ml.indicators.talib_c import rsi_into


@kernel
def momentum_kernel(address: int, c: np.ndarray, starts: np.ndarray, stops: np.ndarray,
                    periods: np.ndarray, out: np.ndarray) -> None:
    """``rsi_n`` for every ``n`` of ``periods`` into the rows of ``out`` (NaN = null).

    ``address`` is TA-Lib's ``TA_RSI`` (:func:`ml.indicators.talib_c.addresses`).
    """
    meta = np.zeros(2, dtype=np.int32)
    for seg in range(starts.shape[0]):
        a, b = starts[seg], stops[seg]
        first_move = b
        for i in range(a + 1, b):
            if c[i] != c[i - 1]:
                first_move = i
                break
        for j in range(periods.shape[0]):
            rsi_into(address, c, a, b, periods[j], out[j], meta)
            out[j, a:first_move] = np.nan
