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

The kernel first marks the swing points of a segment (every bar compared with its ``2k``
neighbours in straight, vectorised loops), then walks the segment once, bar by bar, carrying the
state the definitions name (the reference swing, the last opposite candle, the active block), so
it is the definition itself; the tests compare it with an independent per-row loop in Python.
Coin-toss decisions on a random walk (a swing test, an up or down candle, a gap) are written as
selects rather than branches: as branches the CPU mispredicts about half of them.
"""

from __future__ import annotations

import numpy as np

from ml.indicators.jit import kernel


@kernel
def _swings(ref: np.ndarray, a: int, b: int, k: int, high: bool, out: np.ndarray) -> None:
    """``out[j] = 1`` where bar ``a + j`` is a swing high (``high``) or swing low of ``ref``:
    strictly beyond the ``k`` values before it and at least the ``k`` after it; else 0."""
    n = b - a
    out[:n] = 0
    m = n - 2 * k
    if m <= 0:
        return
    seg, flags = ref[a:b], out[k : k + m]
    centre = seg[k : k + m]
    flags[:] = 1
    for d in range(1, k + 1):
        before, after = seg[k - d : k - d + m], seg[k + d : k + d + m]
        if high:
            for j in range(m):
                flags[j] &= np.uint8(centre[j] > before[j]) & np.uint8(centre[j] >= after[j])
        else:
            for j in range(m):
                flags[j] &= np.uint8(centre[j] < before[j]) & np.uint8(centre[j] <= after[j])


@kernel
def _order_blocks(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, a: int, b: int,
                  k: int, max_age: int, bullish: bool, swings: np.ndarray, top: np.ndarray,
                  bottom: np.ndarray, touch: np.ndarray) -> None:
    """Active bullish (or bearish) order block zone and revisit flag at every bar of ``a:b``;
    ``swings`` are the segment's swing highs (lows) from :func:`_swings`."""
    ref = h if bullish else lo
    swing_at, swing_level, swing_broken = -1, 0.0, True
    opposite = -1
    born, zone_top, zone_bottom = -1, np.nan, np.nan
    for i in range(a, b):
        j = i - k
        if j - k >= a and swings[j - a]:
            swing_at, swing_level, swing_broken = i, ref[j], False
        beyond = (c[i] > swing_level) if bullish else (c[i] < swing_level)
        if (not swing_broken) & (i - swing_at <= max_age) & beyond:
            swing_broken = True
            if opposite >= 0 and i - opposite <= max_age:
                born, zone_top, zone_bottom = i, h[opposite], lo[opposite]
        against = (c[i] < o[i]) if bullish else (c[i] > o[i])
        opposite = i if against else opposite
        broken = (c[i] < zone_bottom) if bullish else (c[i] > zone_top)
        born = -1 if (born >= 0) & ((i - born > max_age) | broken) else born
        live = born >= 0
        top[i] = zone_top if live else np.nan
        bottom[i] = zone_bottom if live else np.nan
        touch[i] = live & (i > born) & (lo[i] <= zone_top) & (h[i] >= zone_bottom)


@kernel
def _fair_value_gaps(h: np.ndarray, lo: np.ndarray, a: int, b: int, bull: np.ndarray,
                     bear: np.ndarray, valid: np.ndarray, top: np.ndarray, bottom: np.ndarray,
                     size: np.ndarray) -> None:
    head = min(a + 2, b)
    top[a:head] = bottom[a:head] = size[a:head] = np.nan
    bull[a:head] = bear[a:head] = valid[a:head] = False
    m = b - head
    if m <= 0:
        return
    high_now, low_now = h[head:b], lo[head:b]
    high_then, low_then = h[a : a + m], lo[a : a + m]
    up_flags, down_flags, valid_flags = bull[head:b], bear[head:b], valid[head:b]
    tops, bottoms, sizes = top[head:b], bottom[head:b], size[head:b]
    for j in range(m):
        up = low_now[j] > high_then[j]
        down = high_now[j] < low_then[j]
        up_flags[j], down_flags[j], valid_flags[j] = up, down, True
        gap_top = low_now[j] if up else (low_then[j] if down else np.nan)
        gap_bottom = high_then[j] if up else (high_now[j] if down else np.nan)
        tops[j], bottoms[j] = gap_top, gap_bottom
        sizes[j] = (gap_top - gap_bottom) / gap_bottom * 100.0 if gap_bottom != 0.0 else np.nan


@kernel
def structure_kernel(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray,
                     starts: np.ndarray, stops: np.ndarray, k: int, max_age: int,
                     out: np.ndarray, flags: np.ndarray, fvg_valid: np.ndarray) -> None:
    """Order blocks and fair value gaps of the segments.

    Rows of ``out`` (NaN = null): ``ob_bull_top, ob_bull_bottom, ob_bear_top, ob_bear_bottom,
    fvg_top, fvg_bottom, fvg_size_pct``; rows of ``flags`` (bool): ``ob_bull_touch,
    ob_bear_touch, fvg_bull, fvg_bear``; ``fvg_valid`` is False where the gap flags are null.
    """
    longest = 0
    for seg in range(starts.shape[0]):
        longest = max(longest, stops[seg] - starts[seg])
    highs = np.empty(longest, dtype=np.uint8)
    lows = np.empty(longest, dtype=np.uint8)
    for seg in range(starts.shape[0]):
        a, b = starts[seg], stops[seg]
        _swings(h, a, b, k, True, highs)
        _swings(lo, a, b, k, False, lows)
        _order_blocks(o, h, lo, c, a, b, k, max_age, True, highs, out[0], out[1], flags[0])
        _order_blocks(o, h, lo, c, a, b, k, max_age, False, lows, out[2], out[3], flags[1])
        _fair_value_gaps(h, lo, a, b, flags[2], flags[3], fvg_valid, out[4], out[5], out[6])
