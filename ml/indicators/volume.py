"""Volume indicators: OBV, anchored VWAP, volume / SMA ratio, volume in USD(T).

* ``obv``: TA-Lib's On-Balance Volume per symbol: starts at the first candle's volume, then adds
  the volume when the close rises, subtracts it when it falls, keeps it when unchanged (base
  units). A running total from the symbol's first candle in the frame: it depends on where the
  series starts (so does TA-Lib's), only its changes are comparable across partitions.
* ``vwap``: anchored VWAP of the typical price ``(high + low + close) / 3``: the volume-weighted
  mean over the candles of the current anchor period up to and including this candle. Anchors
  (``vwap_anchor="auto"``): the UTC day for intraday timeframes, the ISO week (Monday 00:00 UTC)
  for 1d and 3d candles, the calendar month (UTC) for 1w; a candle belongs to the period of its
  open time. Null while the period has had no volume. The same values as pandas-ta-classic's
  ``vwap(anchor="D")`` for intraday candles.
* ``volume_sma_ratio``: ``volume / SMA(volume, 20)`` (TA-Lib's SMA, per symbol); from position
  19; null when the 20 volumes are all zero.
* ``volume_usd``: ``volume * close`` in USDT: for USDT-quoted pairs as is, for other quotes times
  the quote's USDT price (see :func:`ml.indicators.engine.compute_indicators`).
"""

from __future__ import annotations

import numpy as np

from ml.indicators.blocks import Block, ratio
from ml.indicators.params import IndicatorParams
from ml.indicators.ta import ta
from ml.marketdata.timeframes import DAY_MS

#: Internal column: ``volume * close`` before any quote conversion.
RAW_VOLUME_QUOTE = "_volume_quote"


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


def grouped_cumsum(values: list[np.ndarray], group: np.ndarray, cell: np.ndarray) -> list[np.ndarray]:
    """Running sums of each array within consecutive groups, added in row order.

    ``group`` numbers the (contiguous, ascending) groups 0..G-1, ``cell`` is each row's slot in its
    group (strictly increasing inside a group). Rows are scattered into a ``(G, max cell + 1)``
    matrix of zeros and summed along its rows, so every running sum adds exactly the group's
    earlier rows in order (adding the zeros of empty slots changes nothing).
    """
    groups = int(group[-1]) + 1 if group.shape[0] else 0
    width = int(cell.max()) + 1 if cell.shape[0] else 1
    if groups * width > 4 * group.shape[0] + 4096:  # sparse groups: sum them one by one
        starts = np.flatnonzero(np.diff(group, prepend=-1))
        stops = np.append(starts[1:], group.shape[0])
        outs = [np.empty_like(v) for v in values]
        for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
            for v, out in zip(values, outs, strict=True):
                np.cumsum(v[a:b], out=out[a:b])
        return outs
    flat = group * width
    flat += cell
    outs = []
    for v in values:
        matrix = np.zeros(groups * width)
        matrix[flat] = v
        square = matrix.reshape(groups, width)
        np.cumsum(square, axis=1, out=square)
        outs.append(matrix[flat])
    return outs


def volume_columns(
    block: Block, params: IndicatorParams, *, step_ms: int
) -> dict[str, np.ndarray]:
    """OBV, VWAP, the volume SMA ratio and raw ``volume * close`` of ``block``."""
    v, c = block.volume, block.close
    signed = np.empty(block.size)
    np.subtract(c[1:], c[:-1], out=signed[1:])
    np.sign(signed, out=signed)
    signed *= v
    obv = np.empty(block.size)
    for a, b in block.bounds:
        signed[a] = v[a]
        np.cumsum(signed[a:b], out=obv[a:b])

    anchor = resolve_anchor(params.vwap_anchor, step_ms)
    ids, period_start = anchor_periods(block.ts, anchor)
    new = np.empty(block.size, dtype=bool)
    np.not_equal(ids[1:], ids[:-1], out=new[1:])
    block.null_heads(new, 1, value=True)
    group = np.cumsum(new)
    group -= 1
    cell = block.ts - period_start
    cell //= step_ms
    typical = block.high + block.low
    typical += c
    typical /= 3.0
    typical *= v
    sum_pv, sum_v = grouped_cumsum([typical, v], group, cell)
    vwap = ratio(sum_pv, sum_v)

    n = params.volume_sma_period
    sma = np.empty(block.size)
    for a, b in block.bounds:
        sma[a:b] = ta.SMA(v[a:b], n)
    positive = np.cumsum(v > 0)
    none = np.zeros(block.size, dtype=bool)
    if block.size > n:
        np.equal(positive[n:], positive[:-n], out=none[n:])
    none[: min(n, block.size)] = positive[: min(n, block.size)] == 0
    relative = ratio(v, sma)
    relative[none] = np.nan
    return {
        "obv": obv,
        "vwap": vwap,
        "volume_sma_ratio": block.null_heads(relative, n - 1),
        RAW_VOLUME_QUOTE: v * c,
    }
