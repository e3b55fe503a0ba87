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

EMA, SMA, EHMA and MACD are TA-Lib's arithmetic transcribed operation for operation (the same
seeds, the same order of additions, the EMA step as TA-Lib's ``fma(x - prev, k, prev)``), so they
equal TA-Lib run on the symbol alone bit for bit; the tests check exactly that against ``talib``.
ADX is TA-Lib's C function itself (:mod:`ml.indicators.talib_c`). What the kernel gains over one
TA-Lib call per indicator: every EMA (the five EMAs, EHMA's two inner ones, MACD's fast and slow)
is a *chain*, and chains advance five per pass (the close's) or two (EHMA's outer EMA and MACD's
signal) with their states in registers, so the CPU overlaps recursions whose single-chain speed
is bound by the latency of one step; once every chain of a pass is seeded the pass runs without
a branch. Output rows are written in place; only the inner EMAs live in a per-segment scratch
matrix.
"""

from __future__ import annotations

import numpy as np

from ml.indicators.jit import fma, kernel
from ml.indicators.talib_c import hlc_into


@kernel
def _seed(x: np.ndarray, start: int, period: int, b: int, out: np.ndarray) -> tuple[float, int]:
    """TA-Lib's EMA seed: the mean of ``x[start:start + period]``, written at its last row.

    Returns the seed and the first row the recursion updates (``b`` when rows run out).
    """
    last = start + period - 1
    if last >= b:
        return 0.0, b
    total = 0.0
    for i in range(start, last + 1):
        total += x[i]
    out[last] = total / period
    return out[last], last + 1


@kernel
def _ema5(x: np.ndarray, starts: np.ndarray, periods: np.ndarray, b: int, o0: np.ndarray,
          o1: np.ndarray, o2: np.ndarray, o3: np.ndarray, o4: np.ndarray) -> None:
    """Five TA-Lib EMA chains of ``x`` in one pass: chain ``j`` has period ``periods[j]``, is
    seeded at ``starts[j]`` and written into ``o_j`` up to row ``b``. Written out chain by chain
    on purpose: with the states in an array the compiler keeps them in memory, not registers."""
    e0, t0 = _seed(x, starts[0], periods[0], b, o0)
    e1, t1 = _seed(x, starts[1], periods[1], b, o1)
    e2, t2 = _seed(x, starts[2], periods[2], b, o2)
    e3, t3 = _seed(x, starts[3], periods[3], b, o3)
    e4, t4 = _seed(x, starts[4], periods[4], b, o4)
    k0, k1 = 2.0 / (periods[0] + 1), 2.0 / (periods[1] + 1)
    k2, k3 = 2.0 / (periods[2] + 1), 2.0 / (periods[3] + 1)
    k4 = 2.0 / (periods[4] + 1)
    late = max(max(max(t0, t1), max(t2, t3)), t4)
    for i in range(min(min(min(t0, t1), min(t2, t3)), t4), late):
        xi = x[i]
        if i >= t0:
            e0 = fma(xi - e0, k0, e0)
            o0[i] = e0
        if i >= t1:
            e1 = fma(xi - e1, k1, e1)
            o1[i] = e1
        if i >= t2:
            e2 = fma(xi - e2, k2, e2)
            o2[i] = e2
        if i >= t3:
            e3 = fma(xi - e3, k3, e3)
            o3[i] = e3
        if i >= t4:
            e4 = fma(xi - e4, k4, e4)
            o4[i] = e4
    xs = x[late:b]
    p0, p1, p2, p3, p4 = o0[late:b], o1[late:b], o2[late:b], o3[late:b], o4[late:b]
    for j in range(b - late):  # every chain seeded: no branch
        xi = xs[j]
        e0 = fma(xi - e0, k0, e0)
        p0[j] = e0
        e1 = fma(xi - e1, k1, e1)
        p1[j] = e1
        e2 = fma(xi - e2, k2, e2)
        p2[j] = e2
        e3 = fma(xi - e3, k3, e3)
        p3[j] = e3
        e4 = fma(xi - e4, k4, e4)
        p4[j] = e4


@kernel
def _ema2(x0: np.ndarray, x1: np.ndarray, starts: np.ndarray, periods: np.ndarray, b: int,
          o0: np.ndarray, o1: np.ndarray) -> None:
    """Two TA-Lib EMA chains (of ``x0`` and ``x1``) in one pass, as :func:`_ema5`."""
    e0, t0 = _seed(x0, starts[0], periods[0], b, o0)
    e1, t1 = _seed(x1, starts[1], periods[1], b, o1)
    k0, k1 = 2.0 / (periods[0] + 1), 2.0 / (periods[1] + 1)
    late = max(t0, t1)
    for i in range(min(t0, t1), late):
        if i >= t0:
            e0 = fma(x0[i] - e0, k0, e0)
            o0[i] = e0
        if i >= t1:
            e1 = fma(x1[i] - e1, k1, e1)
            o1[i] = e1
    x0s, x1s, p0, p1 = x0[late:b], x1[late:b], o0[late:b], o1[late:b]
    for j in range(b - late):
        e0 = fma(x0s[j] - e0, k0, e0)
        p0[j] = e0
        e1 = fma(x1s[j] - e1, k1, e1)
        p1[j] = e1


@kernel
def _row(out: np.ndarray, scratch: np.ndarray, row: int, a: int, n: int) -> np.ndarray:
    """Row ``row`` of the segment's working rows: an output row (in place in ``out``, columns
    ``a:a + n``) or, past the output rows, a scratch row (the last one is a dummy sink)."""
    if row < out.shape[0]:
        return out[row, a : a + n]
    return scratch[row - out.shape[0], :n]


@kernel
def _chains_close(c: np.ndarray, n: int, chains: np.ndarray, out: np.ndarray,
                  scratch: np.ndarray, a: int) -> None:
    """The EMA chains of the close (rows: input row (unused), output row, seed offset, period),
    five per pass, each output NaN before its seed; a pass short of five chains fills it with
    period-1 chains into the dummy row."""
    dummy = out.shape[0] + scratch.shape[0] - 1
    starts = np.zeros(5, dtype=np.int64)
    periods = np.ones(5, dtype=np.int64)
    rows = np.full(5, dummy, dtype=np.int64)
    for q in range(0, chains.shape[0], 5):
        for j in range(5):
            starts[j], periods[j], rows[j] = 0, 1, dummy
            if q + j < chains.shape[0]:
                rows[j], starts[j], periods[j] = chains[q + j, 1], chains[q + j, 2], chains[q + j, 3]
                _row(out, scratch, rows[j], a, n)[: min(starts[j] + periods[j] - 1, n)] = np.nan
        _ema5(c, starts, periods, n, _row(out, scratch, rows[0], a, n),
              _row(out, scratch, rows[1], a, n), _row(out, scratch, rows[2], a, n),
              _row(out, scratch, rows[3], a, n), _row(out, scratch, rows[4], a, n))


@kernel
def _chains_pair(n: int, chains: np.ndarray, out: np.ndarray, scratch: np.ndarray,
                 a: int) -> None:
    """Two EMA chains whose inputs are working rows (EHMA's outer EMA, MACD's signal)."""
    starts = np.zeros(2, dtype=np.int64)
    periods = np.zeros(2, dtype=np.int64)
    for j in range(2):
        starts[j], periods[j] = chains[j, 2], chains[j, 3]
        _row(out, scratch, chains[j, 1], a, n)[: min(starts[j] + periods[j] - 1, n)] = np.nan
    _ema2(_row(out, scratch, chains[0, 0], a, n), _row(out, scratch, chains[1, 0], a, n), starts,
          periods, n, _row(out, scratch, chains[0, 1], a, n), _row(out, scratch, chains[1, 1], a, n))


@kernel
def _smas(x: np.ndarray, n: int, periods: np.ndarray, rows: np.ndarray, out: np.ndarray,
          scratch: np.ndarray, a: int) -> None:
    """TA-Lib's SMA: a running total (add the new value, read, subtract the oldest)."""
    for j in range(periods.shape[0]):
        p, row = periods[j], _row(out, scratch, rows[j], a, n)
        row[: min(p - 1, n)] = np.nan
        if n < p:
            continue
        total = 0.0
        for i in range(p - 1):
            total += x[i]
        for i in range(p - 1, n):
            total += x[i]
            value = total
            total -= x[i - p + 1]
            row[i] = value / p


@kernel
def trend_kernel(adx_address: int, c: np.ndarray, h: np.ndarray, lo: np.ndarray,
                 starts: np.ndarray, stops: np.ndarray, layout: np.ndarray, smas: np.ndarray,
                 first: np.ndarray, adx_n: int, rows: int, out: np.ndarray) -> None:
    """Every trend column of the segments ``starts[s]:stops[s]`` into the float rows ``out``.

    ``layout`` rows are EMA chains (input row, output row, seed offset, period). Its first chains
    are the close's EMAs (the EMA columns, EHMA's half and full inner EMAs, MACD's slow and fast
    ones); the last two are EHMA's outer EMA and MACD's signal, whose inputs are the rows where
    the kernel writes ``2 * half - full`` and ``fast - slow``. ``smas`` rows are (output row,
    period). ``first`` holds the rows of the EHMA, MACD line, signal, histogram and ADX columns,
    then the first positions of EHMA and MACD, then the rows of the four inner EMAs (half, full,
    slow, fast).

    Rows below ``out.shape[0]`` are output rows, written in place; rows up to ``rows`` are
    scratch (the inner EMAs) in a small matrix for one segment at a time, which stays in cache
    and keeps them out of the output memory.
    """
    closes = layout.shape[0] - 2
    meta = np.zeros(2, dtype=np.int32)
    ehma, line, signal, hist, adx = first[0], first[1], first[2], first[3], first[4]
    ehma_first, macd_first = first[5], first[6]
    half, full, slow, fast = first[7], first[8], first[9], first[10]
    longest = 0
    for seg in range(starts.shape[0]):
        longest = max(longest, stops[seg] - starts[seg])
    scratch = np.empty((rows - out.shape[0] + 1, longest))
    for seg in range(starts.shape[0]):
        a, b = starts[seg], stops[seg]
        n = b - a
        cs, hs, ls = c[a:b], h[a:b], lo[a:b]
        _chains_close(cs, n, layout[:closes], out, scratch, a)
        _smas(cs, n, smas[:, 1], smas[:, 0], out, scratch, a)
        halves, fulls = _row(out, scratch, half, a, n), _row(out, scratch, full, a, n)
        lines = _row(out, scratch, line, a, n)
        fasts, slows = _row(out, scratch, fast, a, n), _row(out, scratch, slow, a, n)
        for i in range(n):
            halves[i] = 2.0 * halves[i] - fulls[i]
            lines[i] = fasts[i] - slows[i]
        _chains_pair(n, layout[closes:], out, scratch, a)
        signals, hists = _row(out, scratch, signal, a, n), _row(out, scratch, hist, a, n)
        for i in range(n):
            hists[i] = lines[i] - signals[i]
        _row(out, scratch, ehma, a, n)[: min(ehma_first, n)] = np.nan
        for row in (line, signal, hist):
            _row(out, scratch, row, a, n)[: min(macd_first, n)] = np.nan
        adxs = _row(out, scratch, adx, a, n)
        hlc_into(adx_address, hs, ls, cs, 0, n, adx_n, 2 * adx_n - 1, adxs, meta)
        _null_before_first_move(hs, ls, cs, 0, n, adxs)


@kernel
def _null_before_first_move(h: np.ndarray, lo: np.ndarray, c: np.ndarray, a: int, b: int,
                            out: np.ndarray) -> None:
    """NaN until the segment's first bar (from its second) with a positive true range."""
    for i in range(a, b):
        if i > a and (h[i] != lo[i] or h[i] != c[i - 1] or lo[i] != c[i - 1]):
            return
        out[i] = np.nan
