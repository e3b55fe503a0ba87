"""Market structure: order blocks (from confirmed swing points) and fair value gaps.

Definitions (``k = swing_length`` = 5, ``M = structure_max_age`` = 500 bars; indices are bars of
one symbol; every quantity at bar ``t`` uses bars ``<= t`` only):

Swing points
    Bar ``j`` is a *swing high* when ``high[j]`` is strictly above the ``k`` highs before it and
    at least every one of the ``k`` highs after it; a *swing low* mirrors this with lows. A swing
    at ``j`` is only known once the ``k`` bars after it have closed: it is *confirmed at*
    ``j + k``, and nothing before ``j + k`` can use it.

Bullish order block
    At bar ``t`` the *reference high* is the most recently confirmed swing high, if it was
    confirmed at most ``M`` bars ago. A *bullish break* happens at the first bar (from its
    confirmation on) whose close is strictly above the reference high; each swing high can be
    broken once. The *order block* of a break at bar ``i`` is the last down candle
    (``close < open``) strictly before ``i``, at most ``M`` bars back; its zone is that candle's
    ``[low, high]``. The block is *active* from bar ``i`` until a close strictly below its low
    (that bar included) or until it is ``M`` bars old, and a newer bullish block replaces it.
    Columns: ``ob_bull_top``/``ob_bull_bottom`` (the active zone, null when none) and
    ``ob_bull_touch`` (the active block is revisited: a bar after ``i`` whose ``[low, high]``
    overlaps the zone).

Bearish order block
    The mirror image: the reference low is the latest confirmed swing low, a bearish break is the
    first close strictly below it, the block is the last up candle (``close > open``) before the
    break, invalidated by a close strictly above its high. Columns ``ob_bear_top``,
    ``ob_bear_bottom``, ``ob_bear_touch``.

Fair value gap (3-candle imbalance), at bar ``i >= 2`` of a symbol
    Bullish when ``low[i] > high[i-2]``: gap ``[high[i-2], low[i]]``. Bearish when
    ``high[i] < low[i-2]``: gap ``[high[i], low[i-2]]``. The two cannot happen together.
    Columns ``fvg_bull``/``fvg_bear`` (flags, null for a symbol's first two bars) and
    ``fvg_top``, ``fvg_bottom``, ``fvg_size_pct = (top - bottom) / bottom * 100`` of the gap that
    formed at this bar (null when none).

Because swings, breaks and blocks all expire after ``M`` bars, every value at bar ``t`` depends on
bars ``[t - 2M - 2k, t]`` only, which the engine's look-back covers.
"""

from __future__ import annotations

import numpy as np

from ml.indicators.blocks import Block, first_from, last_before, ratio
from ml.indicators.params import IndicatorParams

_NEVER = np.iinfo(np.int64).max


def rolling_extreme(x: np.ndarray, k: int, *, high: bool) -> np.ndarray:
    """Max (``high``) or min of ``x[i-k+1 .. i]`` at each ``i >= k - 1`` (earlier rows: partial).

    Windows may straddle segments: callers only read them where they lie inside one segment.
    """
    out = x.copy()
    op = np.maximum if high else np.minimum
    for j in range(1, min(k, x.shape[0])):
        op(out[j:], x[:-j], out=out[j:])
    return out


def swing_points(block: Block, ref: np.ndarray, k: int, *, high: bool) -> np.ndarray:
    """Block indices ``j`` of the swing highs (``high``) or lows of ``ref``, ascending.

    A swing at ``j`` needs ``k`` bars of its segment on both sides; it is confirmed at ``j + k``.
    """
    n = ref.shape[0]
    if n < 2 * k + 1:
        return np.zeros(0, dtype=np.int64)
    ext = rolling_extreme(ref, k, high=high)
    mid = ref[k : n - k]
    left, right = ext[k - 1 : n - k - 1], ext[2 * k : n]
    cand = (mid > left) & (mid >= right) if high else (mid < left) & (mid <= right)
    inside = np.zeros(n, dtype=bool)
    for a, b in block.bounds:
        inside[a + k : b - k] = True
    cand &= inside[k : n - k]
    return np.flatnonzero(cand) + k


def owners(n: int, begin: np.ndarray, end: np.ndarray) -> np.ndarray:
    """For disjoint, ascending intervals ``[begin_i, end_i)``: ``i + 1`` on their rows, else 0."""
    dtype = np.int32 if begin.shape[0] < 2**31 - 1 else np.int64
    delta = np.zeros(n + 1, dtype=dtype)
    ids = np.arange(1, begin.shape[0] + 1, dtype=dtype)
    delta[begin] += ids
    np.subtract.at(delta, end, ids)
    return np.cumsum(delta[:n], dtype=dtype)


def _order_blocks(block: Block, k: int, max_age: int, *, bullish: bool) -> dict[str, np.ndarray]:
    """Active bullish (or bearish) order block zone and revisit flag at every bar."""
    o, h, lo, c = block.open, block.high, block.low, block.close
    n = block.size
    ref = h if bullish else lo
    # swings and the window in which each is the reference level
    conf = swing_points(block, ref, k, high=bullish) + k
    level = ref[conf - k]
    window_end = np.minimum(np.append(conf[1:], _NEVER), conf + max_age + 1)
    window_end = np.minimum(window_end, block.segment_stop_of(conf))
    current = np.append(np.nan, level)[owners(n, conf, window_end)]
    beyond = np.flatnonzero(c > current if bullish else c < current)
    breaks = first_from(beyond, conf, window_end)
    breaks = breaks[breaks >= 0]
    # the block: the last opposite candle strictly before the break, same segment, <= M bars back
    opposite = np.flatnonzero(c < o if bullish else c > o)
    candle = last_before(opposite, breaks)
    keep = (candle >= block.segment_start_of(breaks)) & (breaks - candle <= max_age)
    born, candle = breaks[keep], candle[keep]
    top, bottom = h[candle], lo[candle]
    # lifetime: until replaced, M bars old, the segment ends, or a close beyond the far edge
    stop = np.minimum(np.append(born[1:], _NEVER), born + max_age + 1)
    stop = np.minimum(stop, block.segment_stop_of(born))
    edge = np.append(np.nan, bottom if bullish else top)[owners(n, born, stop)]
    broken = np.flatnonzero(c < edge if bullish else c > edge)
    kill = first_from(broken, born, stop)
    stop = np.where(kill >= 0, kill, stop)
    owner = owners(n, born, stop)
    zone_top = np.append(np.nan, top)[owner]
    zone_bottom = np.append(np.nan, bottom)[owner]
    touch = (lo <= zone_top) & (h >= zone_bottom)
    touch[born] = False  # a revisit is a later bar
    side = "bull" if bullish else "bear"
    return {
        f"ob_{side}_top": zone_top,
        f"ob_{side}_bottom": zone_bottom,
        f"ob_{side}_touch": touch,
    }


def _fair_value_gaps(block: Block) -> dict[str, np.ndarray]:
    h, lo = block.high, block.low
    n = block.size
    bull = np.zeros(n, dtype=bool)
    bear = np.zeros(n, dtype=bool)
    if n > 2:
        np.greater(lo[2:], h[:-2], out=bull[2:])
        np.less(h[2:], lo[:-2], out=bear[2:])
    block.null_heads(bull, 2, value=False)
    block.null_heads(bear, 2, value=False)
    top = np.full(n, np.nan)
    bottom = np.full(n, np.nan)
    up = np.flatnonzero(bull)
    down = np.flatnonzero(bear)
    top[up], bottom[up] = lo[up], h[up - 2]
    top[down], bottom[down] = lo[down - 2], h[down]
    size = ratio(top - bottom, bottom, 100.0)
    return {
        "fvg_bull": block.null_heads(bull.astype(np.float64), 2),
        "fvg_bear": block.null_heads(bear.astype(np.float64), 2),
        "fvg_top": top,
        "fvg_bottom": bottom,
        "fvg_size_pct": size,
    }


def structure_columns(block: Block, params: IndicatorParams) -> dict[str, np.ndarray]:
    """Order block and fair value gap columns of ``block`` (float64, NaN = null; flags without
    nulls as bool arrays, nullable flags as float64 0/1/NaN)."""
    k, age = params.swing_length, params.structure_max_age
    return {
        **_order_blocks(block, k, age, bullish=True),
        **_order_blocks(block, k, age, bullish=False),
        **_fair_value_gaps(block),
    }
