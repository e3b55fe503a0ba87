"""Contiguous runs of whole symbol segments ("blocks") and segment-aware array helpers.

The engine works on the long candle frame sorted by ``(exchange, symbol, ts)``: one *segment* per
``(exchange, symbol)``. A :class:`Block` is a run of whole segments, small enough to stay in cache
and processed by one worker thread. Every helper here respects segment boundaries: nothing reads
across from one symbol into the next, and nothing reads a later row (no look-ahead).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Rows per block aimed at (whole segments): about 1 MB per float column.
BLOCK_ROWS = 1 << 17


@dataclass(frozen=True)
class Block:
    """Rows ``[start, stop)`` of the long frame: whole segments, with per-row helpers.

    Attributes
    ----------
    start, stop : int
        Row range in the long frame.
    bounds : list[tuple[int, int]]
        ``(a, b)`` row range of each segment, relative to ``start``.
    starts : numpy.ndarray
        int64 block-relative first row of each segment (ascending).
    open, high, low, close, volume : numpy.ndarray
        Raw float64 prices (quote currency) and volume (base units).
    ts : numpy.ndarray
        int64 candle open times, epoch milliseconds UTC.
    """

    start: int
    stop: int
    bounds: list[tuple[int, int]]
    starts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    ts: np.ndarray

    @property
    def size(self) -> int:
        return self.stop - self.start

    # -- segment-aware helpers -------------------------------------------------------------------
    def null_heads(self, x: np.ndarray, width: int, value: float | bool = np.nan) -> np.ndarray:
        """Set the first ``width`` rows of every segment of ``x`` to ``value`` (in place)."""
        if width > 0:
            for a, b in self.bounds:
                x[a : min(a + width, b)] = value
        return x

    def lag(self, x: np.ndarray, k: int) -> np.ndarray:
        """``x`` from ``k`` rows earlier in the same segment (float; NaN where there is none)."""
        out = np.empty(x.shape[0])
        if k < x.shape[0]:
            out[k:] = x[: x.shape[0] - k]
        return self.null_heads(out, k)

    def segment_start_of(self, rows: np.ndarray) -> np.ndarray:
        """Block index of the first row of the segment holding each of ``rows``."""
        return self.starts[np.searchsorted(self.starts, rows, side="right") - 1]

    def segment_stop_of(self, rows: np.ndarray) -> np.ndarray:
        """Block index one past the last row of the segment holding each of ``rows``."""
        at = np.searchsorted(self.starts, rows, side="right")
        return np.append(self.starts, self.size)[at]

    def since_first(self, event: np.ndarray) -> np.ndarray:
        """True from the first row of its segment where ``event`` holds, onwards."""
        out = np.empty(event.shape[0], dtype=bool)
        for a, b in self.bounds:
            hit = np.flatnonzero(event[a:b])
            first = hit[0] if hit.shape[0] else b - a
            out[a : a + first] = False
            out[a + first : b] = True
        return out


def ratio(numerator: np.ndarray, denominator: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """``numerator / denominator * scale``, NaN (null) where the denominator is 0 or NaN."""
    out = np.full(numerator.shape[0], np.nan)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    if scale != 1.0:
        out *= scale
    return out


def last_before(events: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Latest of the sorted ``events`` strictly before each of ``rows`` (-1 when none)."""
    at = np.searchsorted(events, rows, side="left") - 1
    return np.where(at >= 0, events[np.maximum(at, 0)], -1)


def first_from(events: np.ndarray, rows: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Earliest of the sorted ``events`` at or after each of ``rows`` and before ``stop``.

    -1 where there is none.
    """
    at = np.searchsorted(events, rows, side="left")
    found = np.append(events, np.iinfo(np.int64).max)[at]
    return np.where(found < stop, found, -1)


def split_blocks(starts: np.ndarray, stops: np.ndarray, target: int = BLOCK_ROWS) -> list[slice]:
    """Group consecutive segments into row ranges of about ``target`` rows (whole segments)."""
    blocks: list[slice] = []
    begin = 0
    for i in range(len(starts)):
        if stops[i] - starts[begin] >= target or i == len(starts) - 1:
            blocks.append(slice(int(starts[begin]), int(stops[i])))
            begin = i + 1
    return blocks


def make_block(
    rows: slice, seg_starts: np.ndarray, seg_stops: np.ndarray, arrays: dict[str, np.ndarray]
) -> Block:
    """The :class:`Block` of ``rows`` (which must cover whole segments).

    ``arrays`` holds the long frame's ``open, high, low, close, volume, ts`` (views are taken).
    """
    first = int(np.searchsorted(seg_starts, rows.start))
    last = int(np.searchsorted(seg_starts, rows.stop))
    a = seg_starts[first:last] - rows.start
    b = seg_stops[first:last] - rows.start
    return Block(
        start=rows.start,
        stop=rows.stop,
        bounds=list(zip(a.tolist(), b.tolist(), strict=True)),
        starts=a.astype(np.int64),
        open=arrays["open"][rows],
        high=arrays["high"][rows],
        low=arrays["low"][rows],
        close=arrays["close"][rows],
        volume=arrays["volume"][rows],
        ts=arrays["ts"][rows],
    )
