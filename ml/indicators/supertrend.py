"""Supertrend (7, 3), vectorised over many lanes of bars at once.

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

The recursion is sequential, so it runs on *lanes*: the long array (all symbols back to back) is
cut into lanes of ``LANE`` rows and all lanes advance one row per vectorised step. At a symbol's
first bar with bands the state is set to the initial state (+1, basic bands) whatever came
before, so lanes may cross symbol boundaries. Each lane first runs ``BURN_IN`` rows of its
predecessor from a guessed state; afterwards its state at its first row is compared with the
predecessor's final state, and lanes
whose state differs are run again from the predecessor's state, until every lane starts from its
predecessor's exact final state. The result is the sequential recursion, bit for bit; re-runs
are few because two runs of the recursion merge as soon as both flip or reset at the same bar.

Internally the state is a direction ``up`` and one signed band ``x``: ``final_lower`` when up,
``-final_upper`` when down, so that the ratchet is ``x = max(x, basic)`` in both directions.
"""

from __future__ import annotations

import numpy as np

from ml.indicators.params import IndicatorParams
from ml.indicators.ta import ta

#: Rows per lane.
LANE = 128
#: Rows of the previous lane each lane runs first, to start close to its true state.
BURN_IN = 48


def _steps(
    close: np.ndarray,
    lower: np.ndarray,
    neg_upper: np.ndarray,
    resets: np.ndarray,
    up: np.ndarray,
    x: np.ndarray,
    record_from: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Advance lanes through the rows of the time-major inputs.

    ``lower`` and ``neg_upper`` hold one more leading row than ``close`` (the bar before each
    step); ``resets`` marks each symbol's first bar with bands. Returns the recorded states
    (rows ``record_from..``) and the state just before row ``record_from``.
    """
    steps = close.shape[0]
    ups = np.empty((steps - record_from, close.shape[1]), dtype=bool)
    xs = np.empty((steps - record_from, close.shape[1]))
    up, x = up.copy(), x.copy()
    entry_up, entry_x = up, x
    for t in range(steps):
        if t == record_from:
            entry_up, entry_x = up.copy(), x.copy()
        c = close[t]
        lb, nub = lower[t + 1], neg_upper[t + 1]
        # previous final bands: upper is basic when up, -x when down; lower is x when up
        go_up = c > np.where(up, -neg_upper[t], -x)
        go_down = c < np.where(up, x, lower[t])
        go_down &= ~go_up
        np.maximum(x, np.where(up, lb, nub), out=x)
        x = np.where(go_up, lb, x)
        x = np.where(go_down, nub, x)
        up = (up | go_up) & ~go_down
        fresh = np.flatnonzero(resets[t])
        if fresh.shape[0]:
            up[fresh] = True
            x[fresh] = lb[fresh]
        if t >= record_from:
            ups[t - record_from] = up
            xs[t - record_from] = x
    return ups, xs, entry_up, entry_x


_TILE = 256


def _transpose_into(out: np.ndarray, matrix: np.ndarray) -> None:
    """``out[:] = matrix.T`` in cache-sized tiles (a plain transposing copy thrashes the cache)."""
    if matrix.shape[0] >= matrix.shape[1]:
        for j in range(0, matrix.shape[0], _TILE):
            out[:, j : j + _TILE] = matrix[j : j + _TILE].T
    else:
        for j in range(0, matrix.shape[1], _TILE):
            out[j : j + _TILE] = matrix[:, j : j + _TILE].T


def _lanes(values: np.ndarray, lanes: int, lead: int) -> np.ndarray:
    """Time-major ``(lead + LANE, lanes)`` matrix: column ``j`` holds rows
    ``j * LANE - lead .. (j + 1) * LANE`` of ``values`` (NaN outside ``values``)."""
    n = values.shape[0]
    full = n // LANE
    out = np.empty((lead + LANE, lanes))
    _transpose_into(out[lead:, :full], values[: full * LANE].reshape(full, LANE))
    if full < lanes:
        rest = n - full * LANE
        out[lead : lead + rest, full] = values[full * LANE :]
        out[lead + rest :, full] = np.nan
    out[:lead, 0] = np.nan
    out[:lead, 1:] = out[LANE : LANE + lead, :-1]
    return out


def _rows(matrix: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` row-major values of a time-major ``(LANE, lanes)`` matrix."""
    out = np.empty((matrix.shape[1], matrix.shape[0]), dtype=matrix.dtype)
    _transpose_into(out, matrix)
    return out.reshape(-1)[:n]


def supertrend(
    close: np.ndarray,
    upper: np.ndarray,
    lower: np.ndarray,
    seg_starts: np.ndarray,
    seg_stops: np.ndarray,
    first_offset: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Supertrend line and direction (float64 +1/-1) over a long, segment-sorted frame.

    Parameters
    ----------
    close, upper, lower : numpy.ndarray
        Closes and basic bands of every row (price units); bands are finite from
        ``first_offset`` rows into each segment on.
    seg_starts, seg_stops : numpy.ndarray
        Row range of each symbol segment.
    first_offset : int
        Position in a segment of its first bar with bands (the ATR period).

    Returns
    -------
    tuple of numpy.ndarray
        ``(line, direction)``, NaN before ``first_offset`` in each segment.
    """
    n = close.shape[0]
    lanes = max(1, -(-n // LANE))
    burn = min(BURN_IN, LANE - 1)
    first = seg_starts + first_offset
    first = first[first < seg_stops]
    fresh = np.zeros((burn + LANE, lanes), dtype=bool)
    fresh[burn + first % LANE, first // LANE] = True
    fresh[:burn, 1:] = fresh[LANE : LANE + burn, :-1]
    cm = _lanes(close, lanes, burn)
    lm = _lanes(lower, lanes, burn + 1)
    um = _lanes(upper, lanes, burn + 1)
    np.negative(um, out=um)
    guess_up = np.ones(lanes, dtype=bool)
    guess_x = np.full(lanes, -np.inf)
    ups, xs, used_up, used_x = _steps(cm, lm, um, fresh, guess_up, guess_x, burn)
    cm, lm, um, fresh = cm[burn:], lm[burn:], um[burn:], fresh[burn:]
    for _ in range(lanes):
        inc_up = np.roll(ups[-1], 1)
        inc_x = np.roll(xs[-1], 1)
        same = (inc_up == used_up) & ((inc_x == used_x) | (np.isnan(inc_x) & np.isnan(used_x)))
        same[0] = True
        wrong = np.flatnonzero(~same)
        if wrong.shape[0] == 0:
            break
        used_up[wrong], used_x[wrong] = inc_up[wrong], inc_x[wrong]
        ups[:, wrong], xs[:, wrong], _, _ = _steps(
            cm[:, wrong], lm[:, wrong], um[:, wrong], fresh[:, wrong], inc_up[wrong], inc_x[wrong], 0
        )
    np.negative(xs, out=xs, where=~ups)
    line = _rows(xs, n)
    direction = np.where(_rows(ups, n), 1.0, -1.0)
    for a, b in zip(seg_starts.tolist(), seg_stops.tolist(), strict=True):
        stop = min(a + first_offset, b)
        line[a:stop] = np.nan
        direction[a:stop] = np.nan
    return line, direction


def supertrend_columns(
    arrays: dict[str, np.ndarray],
    seg_starts: np.ndarray,
    seg_stops: np.ndarray,
    params: IndicatorParams,
) -> tuple[np.ndarray, np.ndarray]:
    """``supertrend`` and ``supertrend_direction`` of a long frame (float64, NaN = null).

    ``arrays`` holds the frame's ``high, low, close``. The ATR is TA-Lib's, per segment.
    """
    h, lo, c = arrays["high"], arrays["low"], arrays["close"]
    period = params.supertrend_period
    upper = np.empty(c.shape[0])
    for a, b in zip(seg_starts.tolist(), seg_stops.tolist(), strict=True):
        np.multiply(ta.ATR(h[a:b], lo[a:b], c[a:b], period), params.supertrend_multiplier, out=upper[a:b])
    hl2 = h + lo
    hl2 *= 0.5
    lower = hl2 - upper
    upper += hl2
    return supertrend(c, upper, lower, seg_starts, seg_stops, period)
