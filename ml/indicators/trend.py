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
is a *chain*, and chains advance four per pass with their states in registers, so the CPU
overlaps four recursions whose single-chain speed is bound by the latency of one step.
"""

from __future__ import annotations

import numpy as np

from ml.indicators.jit import fma, kernel
from ml.indicators.talib_c import hlc_into


@kernel
def _seed(x: np.ndarray, start: int, period: int, b: int, out: np.ndarray) -> tuple[float, int]:
    """TA-Lib's EMA seed: the mean of ``x[start:start + period]``, written at its last row.

    Returns the seed and the first row the recursion updates (``b`` when rows run out or the
    chain is unused, ``period == 0``).
    """
    last = start + period - 1
    if period == 0 or last >= b:
        return 0.0, b
    total = 0.0
    for i in range(start, last + 1):
        total += x[i]
    out[last] = total / period
    return out[last], last + 1


@kernel
def _ema4(x0: np.ndarray, x1: np.ndarray, x2: np.ndarray, x3: np.ndarray, starts: np.ndarray,
          periods: np.ndarray, b: int, o0: np.ndarray, o1: np.ndarray, o2: np.ndarray,
          o3: np.ndarray) -> None:
    """Four TA-Lib EMA chains in one pass: chain ``j`` is the EMA of period ``periods[j]`` of
    ``x_j`` seeded at ``starts[j]``, written into ``o_j`` up to row ``b`` (period 0: unused)."""
    e0, t0 = _seed(x0, starts[0], periods[0], b, o0)
    e1, t1 = _seed(x1, starts[1], periods[1], b, o1)
    e2, t2 = _seed(x2, starts[2], periods[2], b, o2)
    e3, t3 = _seed(x3, starts[3], periods[3], b, o3)
    k0, k1 = 2.0 / (periods[0] + 1), 2.0 / (periods[1] + 1)
    k2, k3 = 2.0 / (periods[2] + 1), 2.0 / (periods[3] + 1)
    for i in range(min(min(t0, t1), min(t2, t3)), b):
        if i >= t0:
            e0 = fma(x0[i] - e0, k0, e0)
            o0[i] = e0
        if i >= t1:
            e1 = fma(x1[i] - e1, k1, e1)
            o1[i] = e1
        if i >= t2:
            e2 = fma(x2[i] - e2, k2, e2)
            o2[i] = e2
        if i >= t3:
            e3 = fma(x3[i] - e3, k3, e3)
            o3[i] = e3


@kernel
def _chains(inputs: np.ndarray, a: int, b: int, chains: np.ndarray, out: np.ndarray) -> None:
    """Run ``chains`` (rows: input row, output row, seed offset from ``a``, period) four at a
    time, NaN-filling each output before its seed."""
    starts = np.empty(4, dtype=np.int64)
    periods = np.zeros(4, dtype=np.int64)
    for q in range(0, chains.shape[0], 4):
        rows_in = np.zeros(4, dtype=np.int64)
        rows_out = np.zeros(4, dtype=np.int64)
        for j in range(4):
            periods[j] = 0
            starts[j] = a
            if q + j < chains.shape[0]:
                rows_in[j], rows_out[j] = chains[q + j, 0], chains[q + j, 1]
                starts[j], periods[j] = a + chains[q + j, 2], chains[q + j, 3]
                out[rows_out[j], a : min(starts[j] + periods[j] - 1, b)] = np.nan
        _ema4(inputs[rows_in[0]], inputs[rows_in[1]], inputs[rows_in[2]], inputs[rows_in[3]],
              starts, periods, b, out[rows_out[0]], out[rows_out[1]], out[rows_out[2]],
              out[rows_out[3]])


@kernel
def _smas(x: np.ndarray, a: int, b: int, periods: np.ndarray, rows: np.ndarray,
          out: np.ndarray) -> None:
    """TA-Lib's SMA: a running total (add the new value, read, subtract the oldest)."""
    for j in range(periods.shape[0]):
        p, row = periods[j], out[rows[j]]
        row[a : min(a + p - 1, b)] = np.nan
        if b - a < p:
            continue
        total = 0.0
        for i in range(a, a + p - 1):
            total += x[i]
        for i in range(a + p - 1, b):
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

    Row numbers refer to a working matrix of ``rows`` rows for one segment, whose first
    ``out.shape[0]`` rows are copied to ``out`` (the rest, the inner EMAs, are scratch). Working
    on one segment at a time keeps the chains in cache and the scratch rows out of the output
    memory (which is fresh, so every row written there costs page faults).
    """
    closes = layout.shape[0] - 2
    meta = np.zeros(2, dtype=np.int32)
    ehma, line, signal, hist, adx = first[0], first[1], first[2], first[3], first[4]
    ehma_first, macd_first = first[5], first[6]
    half, full, slow, fast = first[7], first[8], first[9], first[10]
    longest = 0
    for seg in range(starts.shape[0]):
        longest = max(longest, stops[seg] - starts[seg])
    work = np.empty((rows, longest))
    for seg in range(starts.shape[0]):
        a, b = starts[seg], stops[seg]
        n = b - a
        cs, hs, ls = c[a:b], h[a:b], lo[a:b]
        _chains_close(cs, 0, n, layout[:closes], work)
        _smas(cs, 0, n, smas[:, 1], smas[:, 0], work)
        for i in range(n):
            work[half, i] = 2.0 * work[half, i] - work[full, i]
            work[line, i] = work[fast, i] - work[slow, i]
        _chains(work, 0, n, layout[closes:], work)
        for i in range(n):
            work[hist, i] = work[line, i] - work[signal, i]
        work[ehma, : min(ehma_first, n)] = np.nan
        for row in (line, signal, hist):
            work[row, : min(macd_first, n)] = np.nan
        hlc_into(adx_address, hs, ls, cs, 0, n, adx_n, 2 * adx_n - 1, work[adx], meta)
        _null_before_first_move(hs, ls, cs, 0, n, work[adx])
        for row in range(out.shape[0]):
            out[row, a:b] = work[row, :n]


@kernel
def _chains_close(c: np.ndarray, a: int, b: int, chains: np.ndarray, out: np.ndarray) -> None:
    """:func:`_chains` for chains whose input is the close."""
    starts = np.empty(4, dtype=np.int64)
    periods = np.zeros(4, dtype=np.int64)
    for q in range(0, chains.shape[0], 4):
        rows_out = np.zeros(4, dtype=np.int64)
        for j in range(4):
            periods[j] = 0
            starts[j] = a
            if q + j < chains.shape[0]:
                rows_out[j] = chains[q + j, 1]
                starts[j], periods[j] = a + chains[q + j, 2], chains[q + j, 3]
                out[rows_out[j], a : min(starts[j] + periods[j] - 1, b)] = np.nan
        _ema4(c, c, c, c, starts, periods, b, out[rows_out[0]], out[rows_out[1]],
              out[rows_out[2]], out[rows_out[3]])


@kernel
def _null_before_first_move(h: np.ndarray, lo: np.ndarray, c: np.ndarray, a: int, b: int,
                            out: np.ndarray) -> None:
    """NaN until the segment's first bar (from its second) with a positive true range."""
    for i in range(a, b):
        if i > a and (h[i] != lo[i] or h[i] != c[i - 1] or lo[i] != c[i - 1]):
            return
        out[i] = np.nan
