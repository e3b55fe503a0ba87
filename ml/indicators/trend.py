"""Trend indicators: EMA, SMA, EHMA, MACD and ADX, one fused pass per symbol segment.

Conventions (all TA-Lib's, ``TA_COMPATIBILITY_DEFAULT``, unstable period 0); positions count bars
from a symbol's first candle in the frame, and earlier rows are null:

* ``ema_n``: ``EMA_t = EMA_{t-1} + (x_t - EMA_{t-1}) * 2 / (n + 1)`` seeded at position ``n - 1``
  with the simple mean of the first ``n`` closes.
* ``sma_n``: mean of the last ``n`` closes, from position ``n - 1``.
* ``ehma_n`` (exponential Hull): ``EMA(2 * EMA(close, n // 2) - EMA(close, n), round(sqrt(n)))``.
  The inner difference exists from ``n - 1``; the outer EMA is seeded with the mean of its first
  ``round(sqrt(n))`` values, so EHMA 180 starts at ``179 + 12 = 191``.
* ``macd``, ``macd_signal``, ``macd_hist``: TA-Lib ``MACD(12, 26, 9)``: both EMAs start at
  position ``slow - 1`` (the fast one is seeded with the mean of the 12 closes ending there, not
  of the first 12), the signal is the EMA 9 of the line seeded with the mean of its first 9
  values; all three are output from ``slow + signal - 2 = 33``.
* ``adx_n``: Wilder's ADX: +DM, -DM and true range summed over the first ``n - 1`` changes then
  Wilder-smoothed (``S_t = S_{t-1} - S_{t-1} / n + x_t``); DX averaged over its first ``n``
  values then Wilder-smoothed; output from ``2n - 1 = 27``. Null until a symbol's true range is
  first positive (0/0; TA-Lib would report 0 there).

The kernel is TA-Lib's arithmetic transcribed operation for operation (the same seeds, the same
order of additions, the EMA step as TA-Lib's ``fma(x - prev, k, prev)``, TA-Lib's 1e-14 zero
test in ADX), so every column equals TA-Lib run on the symbol alone bit for bit; the tests check
exactly that against ``talib``. What it gains over one TA-Lib call per indicator is one pass over
the segment for all of them: the independent recursions overlap in the CPU.
"""

from __future__ import annotations

import numpy as np

from ml.indicators.jit import fma, kernel

#: TA-Lib's ``TA_IS_ZERO`` band.
EPSILON = 1e-14


@kernel
def _ema_seeds(x: np.ndarray, a: int, b: int, periods: np.ndarray, state: np.ndarray,
               out: np.ndarray) -> None:
    """Seed each EMA of ``periods`` with the mean of its first ``p`` values (row ``a + p - 1``)
    and NaN the rows before it."""
    for j in range(periods.shape[0]):
        p = periods[j]
        out[j, a : min(a + p - 1, b)] = np.nan
        if b - a >= p:
            total = 0.0
            for i in range(a, a + p):
                total += x[i]
            state[j] = total / p
            out[j, a + p - 1] = state[j]


@kernel
def _ema_steps(x: np.ndarray, a: int, b: int, periods: np.ndarray, state: np.ndarray,
               out: np.ndarray) -> None:
    """Advance every seeded EMA from the row after its seed to ``b`` (one pass, all periods)."""
    count = periods.shape[0]
    k = np.empty(count)
    for j in range(count):
        k[j] = 2.0 / (periods[j] + 1)
    for i in range(a, b):
        xi = x[i]
        for j in range(count):
            if i >= a + periods[j]:
                state[j] = fma(xi - state[j], k[j], state[j])
                out[j, i] = state[j]


@kernel
def _smas(x: np.ndarray, a: int, b: int, periods: np.ndarray, out: np.ndarray) -> None:
    """TA-Lib's SMA: a running total (add the new value, read, subtract the oldest)."""
    for j in range(periods.shape[0]):
        p = periods[j]
        out[j, a : min(a + p - 1, b)] = np.nan
        if b - a < p:
            continue
        total = 0.0
        for i in range(a, a + p - 1):
            total += x[i]
        for i in range(a + p - 1, b):
            total += x[i]
            value = total
            total -= x[i - p + 1]
            out[j, i] = value / p


@kernel
def _ema_of(x: np.ndarray, a: int, first: int, b: int, p: int, out: np.ndarray) -> None:
    """TA-Lib EMA of ``x[first:b]`` into ``out[first:b]`` (``out[a:first]`` and the warm-up NaN)."""
    out[a : min(first + p - 1, b)] = np.nan
    if b - first < p:
        return
    k = 2.0 / (p + 1)
    total = 0.0
    for i in range(first, first + p):
        total += x[i]
    prev = total / p
    out[first + p - 1] = prev
    for i in range(first + p, b):
        prev = fma(x[i] - prev, k, prev)
        out[i] = prev


@kernel
def _macd(c: np.ndarray, a: int, b: int, fast: int, slow: int, signal: int, line: np.ndarray,
          sig: np.ndarray, hist: np.ndarray) -> None:
    """TA-Lib ``MACD(fast, slow, signal)``: both EMAs start at ``slow - 1``."""
    first = a + slow + signal - 2
    head = min(first, b)
    line[a:head] = np.nan
    sig[a:head] = np.nan
    hist[a:head] = np.nan
    if b <= first:
        return
    begin = a + slow - 1
    ks, kf, kg = 2.0 / (slow + 1), 2.0 / (fast + 1), 2.0 / (signal + 1)
    total = 0.0
    for i in range(begin - slow + 1, begin + 1):
        total += c[i]
    slow_ema = total / slow
    total = 0.0
    for i in range(begin - fast + 1, begin + 1):
        total += c[i]
    fast_ema = total / fast
    line[begin] = fast_ema - slow_ema
    for i in range(begin + 1, b):
        slow_ema = fma(c[i] - slow_ema, ks, slow_ema)
        fast_ema = fma(c[i] - fast_ema, kf, fast_ema)
        line[i] = fast_ema - slow_ema
    total = 0.0
    for i in range(begin, first + 1):
        total += line[i]
    prev = total / signal
    for i in range(first, b):
        if i > first:
            prev = fma(line[i] - prev, kg, prev)
        sig[i] = prev
        hist[i] = line[i] - prev
    line[begin:first] = np.nan


@kernel
def _true_range(h: float, lo: float, prev_close: float) -> float:
    greatest = h - lo
    up = abs(prev_close - h)
    if up > greatest:
        greatest = up
    down = abs(prev_close - lo)
    if down > greatest:
        greatest = down
    return greatest


@kernel
def _adx(h: np.ndarray, lo: np.ndarray, c: np.ndarray, a: int, b: int, n: int,
         out: np.ndarray) -> None:
    """TA-Lib ``ADX(n)``, then null before the segment's first positive true range."""
    plus = minus = tr = dx_sum = adx = 0.0
    moved = False
    for i in range(a, b):
        out[i] = np.nan
        if i == a:
            continue
        if not moved and (h[i] != lo[i] or h[i] != c[i - 1] or lo[i] != c[i - 1]):
            moved = True
        up, down = h[i] - h[i - 1], lo[i - 1] - lo[i]
        step = i - a
        if step >= n:
            minus -= minus / n
            plus -= plus / n
        if down > 0 and up < down:
            minus += down
        elif up > 0 and up > down:
            plus += up
        if step < n:
            tr += _true_range(h[i], lo[i], c[i - 1])
            continue
        tr = tr - tr / n + _true_range(h[i], lo[i], c[i - 1])
        dx = -1.0
        if not (-EPSILON < tr < EPSILON):
            minus_di, plus_di = 100.0 * (minus / tr), 100.0 * (plus / tr)
            total = minus_di + plus_di
            if not (-EPSILON < total < EPSILON):
                dx = 100.0 * (abs(minus_di - plus_di) / total)
        if step < 2 * n:
            if dx >= 0.0:
                dx_sum += dx
            if step == 2 * n - 1:
                adx = dx_sum / n
        elif dx >= 0.0:
            adx = (adx * (n - 1) + dx) / n
        if step >= 2 * n - 1 and moved:
            out[i] = adx


@kernel
def trend_kernel(c: np.ndarray, h: np.ndarray, lo: np.ndarray, starts: np.ndarray,
                 stops: np.ndarray, emas: np.ndarray, smas: np.ndarray, ehma: np.ndarray,
                 macd: np.ndarray, adx_n: int, out: np.ndarray, scratch: np.ndarray) -> None:
    """Every trend column of the segments ``starts[s]:stops[s]`` into ``out`` (rows: the EMAs of
    ``emas``, the SMAs of ``smas``, EHMA, MACD line, signal, histogram, ADX; NaN = null).

    ``ehma`` is ``(half, full, root)``, ``macd`` is ``(fast, slow, signal)``; ``scratch`` is a
    float row per EMA plus two for EHMA's inner EMAs.
    """
    e, s = emas.shape[0], smas.shape[0]
    inner_periods = ehma[:2].copy()
    state = np.empty(e)
    inner_state = np.empty(2)
    inner = scratch[:2]
    base = e + s
    for seg in range(starts.shape[0]):
        a, b = starts[seg], stops[seg]
        _ema_seeds(c, a, b, emas, state, out[:e])
        _ema_seeds(c, a, b, inner_periods, inner_state, inner)
        _ema_steps(c, a, b, emas, state, out[:e])
        _ema_steps(c, a, b, inner_periods, inner_state, inner)
        _smas(c, a, b, smas, out[e:base])
        half_first = a + ehma[1] - 1  # the inner difference exists where the slower EMA does
        diff = inner[0]
        for i in range(half_first, b):
            diff[i] = 2.0 * inner[0, i] - inner[1, i]
        _ema_of(diff, a, min(half_first, b), b, ehma[2], out[base])
        _macd(c, a, b, macd[0], macd[1], macd[2], out[base + 1], out[base + 2], out[base + 3])
        _adx(h, lo, c, a, b, adx_n, out[base + 4])
