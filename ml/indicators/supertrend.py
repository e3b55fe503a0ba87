"""Supertrend (7, 3): TA-Lib's ATR and pandas-ta-classic's state machine, one pass per symbol.

Definition (pandas-ta-classic's, pinned here). With ``hl2 = (high + low) / 2`` and
``ATR = atr(period)`` (TA-Lib's, see :mod:`ml.indicators.volatility`) the *basic bands* are
``upper = hl2 + m * ATR`` and ``lower = hl2 - m * ATR``. From the first bar with an ATR (position
``period``) the state is a direction and two final bands; at that first bar the direction is +1
and the final bands are the basic ones. At every later bar ``i``:

* if ``close[i] > final_upper[i-1]``: direction +1, final bands = basic bands ("flip up", or a
  reset when already up);
* elif ``close[i] < final_lower[i-1]``: direction -1, final bands = basic bands;
* else the direction is kept and the band on the trend's side ratchets: when +1,
  ``final_lower[i] = max(lower[i], final_lower[i-1])``; when -1,
  ``final_upper[i] = min(upper[i], final_upper[i-1])``; the other band is the basic one.

``supertrend`` is ``final_lower`` when the direction is +1 (a support below price) and
``final_upper`` when it is -1; ``supertrend_direction`` is +1 (uptrend) or -1 (downtrend). The
state machine is pandas-ta-classic's ``_supertrend_loop`` exactly (the tests feed it the same
bands); its public ``supertrend`` uses an RMA-seeded ATR (``ewm(alpha=1/n)``) where this module
uses TA-Lib's SMA-seeded one, so the two agree once the ATRs have converged (~300 bars).

The recursion is sequential within a symbol; the engine runs symbols (segments) on threads.
"""

from __future__ import annotations

import numpy as np

from ml.indicators.jit import kernel
from ml.indicators.talib_c import atr_into


@kernel
def supertrend_kernel(atr: int, h: np.ndarray, lo: np.ndarray, c: np.ndarray,
                      starts: np.ndarray, stops: np.ndarray, period: int, multiplier: float,
                      line: np.ndarray, direction: np.ndarray, valid: np.ndarray) -> None:
    """``supertrend`` into ``line`` (NaN = null) and ``supertrend_direction`` into ``direction``
    (int64 +1/-1, null where ``valid`` is False). ``atr`` is TA-Lib's ``TA_ATR`` address;
    ``line`` doubles as the ATR buffer."""
    meta = np.zeros(2, dtype=np.int32)
    for seg in range(starts.shape[0]):
        a, b = starts[seg], stops[seg]
        atr_into(atr, h, lo, c, a, b, period, line, meta)
        up = True
        final_upper = final_lower = 0.0
        for i in range(a, b):
            if i - a < period:
                direction[i] = 0
                valid[i] = False
                continue
            band = line[i] * multiplier
            hl2 = (h[i] + lo[i]) * 0.5
            upper, lower = hl2 + band, hl2 - band
            if i - a == period or c[i] > final_upper:
                up = True
            elif c[i] < final_lower:
                up = False
            elif up:
                lower = max(lower, final_lower)
            else:
                upper = min(upper, final_upper)
            final_upper, final_lower = upper, lower
            line[i] = lower if up else upper
            direction[i] = 1 if up else -1
            valid[i] = True
