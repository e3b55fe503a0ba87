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

from ml.indicators.blocks import Block
from ml.indicators.params import IndicatorParams


def run_lengths(condition: np.ndarray, cap: int) -> np.ndarray:
    """Length of the run of True ending at each row (0 on False), capped at ``cap`` (float64).

    A run never crosses a False row, so callers make each segment's first rows False.
    """
    idx = np.arange(condition.shape[0], dtype=np.int32)
    last_false = np.where(condition, np.int32(-1), idx)
    np.maximum.accumulate(last_false, out=last_false)
    np.subtract(idx, last_false, out=idx)
    np.minimum(idx, cap, out=idx)
    return idx.astype(np.float64)


def exhaustion_columns(block: Block, params: IndicatorParams) -> dict[str, np.ndarray]:
    """``td_up`` and ``td_down`` (float64 holding integers, NaN = null)."""
    k = params.td_lookback
    c = block.close
    size = block.size
    up = np.zeros(size, dtype=bool)
    down = np.zeros(size, dtype=bool)
    if size > k:
        np.greater(c[k:], c[:-k], out=up[k:])
        np.less(c[k:], c[:-k], out=down[k:])
    out = {}
    for name, condition in (("td_up", up), ("td_down", down)):
        block.null_heads(condition, k, value=False)
        out[name] = block.null_heads(run_lengths(condition, params.td_max_count), k)
    return out
