"""Derived columns: distances in percent, EMA crossovers, RSI divergence (one and two timeframes).

* ``diff_ema200_pct = (close - ema_200) / ema_200 * 100`` (null while the EMA is).
* ``range_pct = (close - open) / open * 100``; ``high_low_range_pct = (high - low) / low * 100``
  (null where the divisor is 0).
* ``ema_{f}_{s}_cross_up``: EMA ``f`` is above EMA ``s`` at this candle and was at or below it at
  the previous one; ``..._cross_down`` the mirror. Null until both EMAs exist at the previous
  candle (position ``s``).
* ``rsi_divergence`` over ``N = divergence_bars`` (14) candles with ``RSI = rsi_{divergence_rsi}``:
  +1 (bullish) when ``close[t] < close[t-N]`` while ``RSI[t] > RSI[t-N]``; -1 (bearish) when
  ``close[t] > close[t-N]`` while ``RSI[t] < RSI[t-N]``; 0 otherwise; null while ``RSI[t-N]`` is.
* ``rsi_divergence_htf``: the same comparison with the *higher timeframe's* RSI in place of this
  timeframe's: ``RSI_htf[t]`` is the RSI of the latest higher-timeframe candle that has *closed*
  at or before this candle's close (``htf_open + htf_length <= open + length``), so a candle never
  sees a higher-timeframe candle still forming. Null where either value is missing.
"""

from __future__ import annotations

import numpy as np

from ml.indicators.jit import kernel
from ml.indicators.volatility import ratio


@kernel
def percent_columns(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray,
                    trend: np.ndarray, a: int, b: int, out: np.ndarray) -> None:
    """Rows of ``out``: ``diff_ema{n}_pct``, ``range_pct``, ``high_low_range_pct``."""
    # zero-based views: indices the compiler can prove in range, so the loops vectorise
    opens, highs, lows, closes, ema = o[a:b], h[a:b], lo[a:b], c[a:b], trend[a:b]
    diff, body, span = out[0, a:b], out[1, a:b], out[2, a:b]
    for j in range(b - a):
        diff[j] = ratio(closes[j] - ema[j], ema[j]) * 100.0
        body[j] = ratio(closes[j] - opens[j], opens[j]) * 100.0
        span[j] = ratio(highs[j] - lows[j], lows[j]) * 100.0


@kernel
def crosses(fast: np.ndarray, slow: np.ndarray, a: int, b: int, warmup: int, up: np.ndarray,
            down: np.ndarray, valid: np.ndarray) -> None:
    """EMA crossovers (bool), null (``valid`` False) for the first ``warmup`` rows."""
    w = min(a + warmup, b)
    up[a:w] = down[a:w] = valid[a:w] = False
    m = b - w
    if m <= 0:
        return
    fast_now, slow_now = fast[w:b], slow[w:b]
    fast_then, slow_then = fast[w - 1 : b - 1], slow[w - 1 : b - 1]
    ups, downs, valids = up[w:b], down[w:b], valid[w:b]
    for j in range(m):
        # "now and not before", without a branch
        ups[j] = (fast_now[j] > slow_now[j]) & ~(fast_then[j] > slow_then[j])
        downs[j] = (fast_now[j] < slow_now[j]) & ~(fast_then[j] < slow_then[j])
        valids[j] = True


@kernel
def divergence(close: np.ndarray, momentum: np.ndarray, a: int, b: int, bars: int,
               out: np.ndarray, valid: np.ndarray) -> None:
    """+1 / -1 / 0 divergence of ``close`` and ``momentum`` over ``bars`` rows (int64); null
    (``valid`` False) where either momentum value is NaN or there is no row ``bars`` back."""
    w = min(a + bars, b)
    out[a:w] = 0
    valid[a:w] = False
    m = b - w
    if m <= 0:
        return
    c1s, c0s = close[w:b], close[a : a + m]
    m1s, m0s = momentum[w:b], momentum[a : a + m]
    signs, valids = out[w:b], valid[w:b]
    for j in range(m):
        m1, m0, c1, c0 = m1s[j], m0s[j], c1s[j], c0s[j]
        signs[j] = np.int64((c1 < c0) & (m1 > m0)) - np.int64((c1 > c0) & (m1 < m0))
        valids[j] = (m1 == m1) & (m0 == m0)


@kernel
def derived_kernel(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray,
                   starts: np.ndarray, stops: np.ndarray, trend: np.ndarray, pairs: np.ndarray,
                   emas: np.ndarray, rsi: np.ndarray, higher_rsi: np.ndarray, bars: int,
                   percent: np.ndarray, flags: np.ndarray, flags_valid: np.ndarray,
                   signs: np.ndarray, signs_valid: np.ndarray) -> None:
    """Derived columns of the segments.

    ``pairs`` holds, per crossover, the rows of its fast and slow EMA in ``emas`` and the slow
    period; ``flags`` / ``flags_valid`` get ``cross_up, cross_down`` per pair; ``signs`` /
    ``signs_valid`` get ``rsi_divergence`` and ``rsi_divergence_htf`` (all null when
    ``higher_rsi`` is empty).
    """
    for seg in range(starts.shape[0]):
        a, b = starts[seg], stops[seg]
        percent_columns(o, h, lo, c, trend, a, b, percent)
        for p in range(pairs.shape[0]):
            fast, slow, warmup = pairs[p, 0], pairs[p, 1], pairs[p, 2]
            crosses(emas[fast], emas[slow], a, b, warmup, flags[2 * p], flags[2 * p + 1],
                    flags_valid[p])
        divergence(c, rsi, a, b, bars, signs[0], signs_valid[0])
        if higher_rsi.shape[0]:
            divergence(c, higher_rsi, a, b, bars, signs[1], signs_valid[1])
        else:
            signs[1, a:b] = 0
            signs_valid[1, a:b] = False
