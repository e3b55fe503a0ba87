"""Exhaustion: TD Sequential setup counts (Tom DeMark), as pandas-ta-classic's ``td_seq``.

``td_up`` at a candle is the number of consecutive candles, ending with this one, whose close is
*strictly above* the close ``td_lookback`` (4) candles earlier; ``td_down`` likewise strictly
below. A candle failing the comparison (including an equal close) has count 0. Counts are capped
at ``td_max_count`` (13, the setup-plus-countdown window): 9 marks a completed setup. Null for
the first 4 candles of a symbol (there is no close 4 bars earlier). The cap bounds the memory:
a count depends on the last ``td_lookback + td_max_count`` candles only.
"""

from __future__ import annotations

import numpy as np

from ml.indicators.jit import kernel


@kernel
def exhaustion_kernel(c: np.ndarray, starts: np.ndarray, stops: np.ndarray, lookback: int,
                      cap: int, up: np.ndarray, down: np.ndarray, valid: np.ndarray) -> None:
    """``td_up`` into ``up`` and ``td_down`` into ``down`` (int64); ``valid`` is False for the
    first ``lookback`` rows of each segment (null)."""
    for seg in range(starts.shape[0]):
        a, b = starts[seg], stops[seg]
        rising = falling = 0
        for i in range(a, b):
            if i - a < lookback:
                up[i] = down[i] = 0
                valid[i] = False
                continue
            rising = min(rising + 1, cap) if c[i] > c[i - lookback] else 0
            falling = min(falling + 1, cap) if c[i] < c[i - lookback] else 0
            up[i], down[i] = rising, falling
            valid[i] = True
