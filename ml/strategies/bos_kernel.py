"""The break-of-structure rules as one compiled pass over each market's candles.

Imported only inside :func:`ml.strategies.bos.detect_bos` (numba is heavy: loading the Dagster
code location never imports it). The kernel walks every market segment of a frame sorted by
(exchange, symbol, ts) once, keeping per market the latest confirmed swing high and low and
whether a close went beyond each since; it tests the volume, body, strength and history filters
only at the rare first close through a level. The rules are those of :mod:`ml.strategies.bos`
and every float is computed by the same operations in the same order as that module's docstring
and :func:`benchmarks.strategies.bos_per_row` state (the volume baseline adds the earlier volumes
newest first, then divides by their count), so the figures agree to the bit.
"""

from __future__ import annotations

import numpy as np

from ml.indicators.jit import kernel

LONG, SHORT = 0, 1


@kernel
def _swings(high: np.ndarray, low: np.ndarray, j: int, lookback: int) -> tuple[bool, bool]:
    """Whether ``high[j]`` is at least every high and ``low[j]`` at most every low of ``j - L ..
    j + L``: compared with the window's maximum (minimum), which is the same test for prices that
    are never NaN, and a branch-free one (a branch per comparison mispredicts about half the time)."""
    top, bottom = high[j - lookback], low[j - lookback]
    for q in range(j - lookback + 1, j + lookback + 1):
        top = high[q] if high[q] > top else top
        bottom = low[q] if low[q] < bottom else bottom
    return high[j] >= top, low[j] <= bottom


@kernel
def bos_events(starts: np.ndarray, open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
               volume: np.ndarray, lookback: int, volume_window: int, min_candles: int, strength_threshold: float,
               volume_multiplier: float, body_ratio_min: float, want_long: bool, want_short: bool
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Events (before the cooldown) of markets ``[starts[m], starts[m + 1])``, rows sorted by ts.

    Returns ``(row, side, swing_level, strength, volume_multiple, body_ratio)`` per event, side
    :data:`LONG` or :data:`SHORT`, in (market, row, side) order.
    """
    n = close.shape[0]
    rows = np.empty(2 * n, np.int64)
    sides = np.empty(2 * n, np.int8)
    levels = np.empty(2 * n, np.float64)
    strengths = np.empty(2 * n, np.float64)
    multiples = np.empty(2 * n, np.float64)
    bodies = np.empty(2 * n, np.float64)
    found = 0
    for m in range(starts.shape[0] - 1):
        start, end = starts[m], starts[m + 1]
        have_high = have_low = False
        level_high = level_low = 0.0
        up_used = down_used = False
        for i in range(start, end):
            j = i - lookback
            if j - start >= lookback:
                # a swing at j is confirmed at i = j + L: a new level, not yet broken
                swing_high, swing_low = _swings(high, low, j, lookback)
                if swing_high:
                    have_high, level_high, up_used = True, high[j], False
                if swing_low:
                    have_low, level_low, down_used = True, low[j], False
            up = have_high and not up_used and close[i] > level_high
            down = have_low and not down_used and close[i] < level_low
            if up:
                up_used = True
            if down:
                down_used = True
            up = up and want_long
            down = down and want_short
            if not (up or down) or i - start + 1 < min_candles:
                continue
            earlier = min(volume_window, i - start)
            if earlier == 0:
                continue
            total = 0.0
            for k in range(1, earlier + 1):
                total += volume[i - k]
            baseline = total / earlier
            if not baseline > 0:
                continue
            multiple = volume[i] / baseline
            if not multiple >= volume_multiplier or not high[i] > low[i]:
                continue
            signed_body = (close[i] - open_[i]) / (high[i] - low[i])
            for side in range(2):
                if (up if side == LONG else down):
                    level = level_high if side == LONG else level_low
                    strength = close[i] / level if side == LONG else level / close[i]
                    body = signed_body if side == LONG else -signed_body
                    if strength >= strength_threshold and body >= body_ratio_min and body > 0:
                        rows[found], sides[found], levels[found] = i, side, level
                        strengths[found], multiples[found], bodies[found] = strength, multiple, body
                        found += 1
    return (rows[:found], sides[:found], levels[:found], strengths[:found], multiples[:found], bodies[:found])


@kernel
def valid_prices(open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray
                 ) -> bool:
    """Every price positive and every volume non-negative, none NaN (a NaN fails every comparison)."""
    for i in range(close.shape[0]):
        if not (open_[i] > 0 and high[i] > 0 and low[i] > 0 and close[i] > 0 and volume[i] >= 0):
            return False
    return True


@kernel
def strictly_increasing(values: np.ndarray, starts: np.ndarray) -> bool:
    """``values`` strictly increase within each segment ``[starts[m], starts[m + 1])``."""
    for m in range(starts.shape[0] - 1):
        for i in range(starts[m] + 1, starts[m + 1]):
            if not values[i] > values[i - 1]:
                return False
    return True
