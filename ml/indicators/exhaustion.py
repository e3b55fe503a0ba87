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
        head = min(a + lookback, b)
        up[a:head] = down[a:head] = 0
        valid[a:head] = False
        m = b - head
        now, then = c[head:b], c[a : a + m]
        ups, downs, valids = up[head:b], down[head:b], valid[head:b]
        rising = falling = 0
        for j in range(m):
            # selects, not branches: on a random walk each comparison is a coin toss
            rising = min(rising + 1, cap) if now[j] > then[j] else 0
            falling = min(falling + 1, cap) if now[j] < then[j] else 0
            ups[j], downs[j] = rising, falling
            valids[j] = True
