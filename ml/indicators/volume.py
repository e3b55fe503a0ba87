"""Volume indicators: OBV, anchored VWAP, volume / SMA ratio, volume in USD(T).

* ``obv``: TA-Lib's On-Balance Volume per symbol (the same loop, the same bits): starts at the first candle's volume, then adds
  the volume when the close rises, subtracts it when it falls, keeps it when unchanged (base
  units). A running total from the symbol's first candle in the frame: it depends on where the
  series starts (so does TA-Lib's), only its changes are comparable across partitions.
* ``vwap``: anchored VWAP of the typical price ``(high + low + close) / 3``: the volume-weighted
  mean over the candles of the current anchor period up to and including this candle. Anchors
  (``vwap_anchor="auto"``): the UTC day for intraday timeframes, the ISO week (Monday 00:00 UTC)
  for 1d and 3d candles, the calendar month (UTC) for 1w; a candle belongs to the period of its
  open time. Null while the period has had no volume. The same values as pandas-ta-classic's
  ``vwap(anchor="D")`` for intraday candles.
* ``volume_sma_ratio``: ``volume / SMA(volume, 20)`` (TA-Lib's running-total SMA, per symbol);
  from position 19; null when the 20 volumes are all zero (a running total can keep a residue
  after large volumes leave the window, so zero is decided by counting positive volumes).
* ``volume_usd``: ``volume * close`` in USDT: for USDT-quoted pairs as is, for other quotes times
  the quote's USDT price (see :func:`ml.indicators.engine.compute_indicators`).
"""

from __future__ import annotations

import numpy as np

from ml.indicators.jit import kernel
from ml.indicators.volatility import ratio
from ml.marketdata.timeframes import DAY_MS

#: ``(offset, width)`` in ms of the anchors computed inline: period id = (ts + offset) // width.
INLINE_ANCHORS = {"day": (0, DAY_MS), "week": (3 * DAY_MS, 7 * DAY_MS)}


def resolve_anchor(anchor: str, step_ms: int) -> str:
    """The VWAP anchor period for ``anchor`` ("auto" picks by timeframe) at candles of ``step_ms``."""
    if anchor != "auto":
        return anchor
    if step_ms < DAY_MS:
        return "day"
    return "week" if step_ms < 7 * DAY_MS else "month"


def anchor_periods(ts: np.ndarray, anchor: str) -> tuple[np.ndarray, np.ndarray]:
    """Anchor period id and period start (epoch ms UTC) of each open time ``ts`` (epoch ms UTC)."""
    if anchor == "day":
        ids = ts // DAY_MS
        return ids, ids * DAY_MS
    if anchor == "week":  # 1970-01-01 was a Thursday: day d is in ISO week (d + 3) // 7
        ids = (ts // DAY_MS + 3) // 7
        return ids, (ids * 7 - 3) * DAY_MS
    if anchor == "month":
        months = ts.astype("datetime64[ms]").astype("datetime64[M]")
        return months.astype(np.int64), months.astype("datetime64[ms]").astype(np.int64)
    raise ValueError(f"unknown VWAP anchor {anchor!r}")


@kernel
def volume_kernel(c: np.ndarray, h: np.ndarray, lo: np.ndarray, v: np.ndarray, ts: np.ndarray,
                  starts: np.ndarray, stops: np.ndarray, anchor_offset: int, anchor_width: int,
                  anchor_ids: np.ndarray, sma_n: int, out: np.ndarray) -> None:
    """Rows of ``out``: OBV, VWAP, volume / SMA ratio, raw ``volume * close`` (NaN = null).

    The VWAP period of a row is ``(ts + anchor_offset) // anchor_width``, or ``anchor_ids`` when
    that array is not empty (calendar months).

    Per segment: OBV, then the other running totals (the VWAP sums, the SMA's window total and
    count of positive volumes) in one sequential pass, the divisions afterwards in straight
    loops the compiler vectorises.
    """
    obv, vwap, relative, quote = out[0], out[1], out[2], out[3]
    inline = anchor_ids.shape[0] == 0
    longest = 0
    for seg in range(starts.shape[0]):
        longest = max(longest, stops[seg] - starts[seg])
    volume_sums = np.empty(longest)
    positives = np.empty(longest, dtype=np.int64)
    for seg in range(starts.shape[0]):
        a, b = starts[seg], stops[seg]
        n = b - a
        closes, highs, lows, volumes = c[a:b], h[a:b], lo[a:b], v[a:b]
        obvs, vwaps, ratios, quotes = obv[a:b], vwap[a:b], relative[a:b], quote[a:b]
        for j in range(n):
            vwaps[j] = (highs[j] + lows[j] + closes[j]) / 3.0 * volumes[j]  # price x volume
            quotes[j] = volumes[j] * closes[j]
        running = volumes[0]
        obvs[0] = running
        for j in range(1, n):
            # TA-Lib's "+volume if up, -volume if down, else unchanged", without a coin-toss branch
            sign = np.float64(closes[j] > closes[j - 1]) - np.float64(closes[j] < closes[j - 1])
            moved = running + sign * volumes[j]
            running = moved if sign != 0.0 else running
            obvs[j] = running
        sum_pv = sum_v = 0.0
        period = -1
        period_end = ts[a]  # open times from here on start a new period (inline anchors)
        total = 0.0
        positive = 0
        for j in range(n):
            i = a + j
            if inline:
                fresh = ts[i] >= period_end
                if fresh:  # one integer division per period, not per row
                    period = (ts[i] + anchor_offset) // anchor_width
                    period_end = (period + 1) * anchor_width - anchor_offset
            else:
                fresh = anchor_ids[i] != period
                period = anchor_ids[i]
            if j == 0 or fresh:
                sum_pv, sum_v = vwaps[j], volumes[j]
            else:
                sum_pv += vwaps[j]
                sum_v += volumes[j]
            vwaps[j], volume_sums[j] = sum_pv, sum_v
            # TA-Lib's SMA: add the new volume, read, subtract the oldest
            total += volumes[j]
            positive += volumes[j] > 0
            ratios[j], positives[j] = total, positive
            if j >= sma_n - 1:
                total -= volumes[j - sma_n + 1]
                positive -= volumes[j - sma_n + 1] > 0
        for j in range(n):
            vwaps[j] = ratio(vwaps[j], volume_sums[j])
        ratios[: min(sma_n - 1, n)] = np.nan
        for j in range(sma_n - 1, n):
            window = ratios[j]
            ratios[j] = ratio(volumes[j], window / sma_n) if positives[j] > 0 else np.nan
