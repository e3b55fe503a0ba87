"""Blocks: runs of whole symbol segments, the unit of work of one engine thread.

The engine works on the long candle frame sorted by ``(exchange, symbol, ts)``: one *segment* per
``(exchange, symbol)``, rows ``starts[s]:stops[s]``. A block is a run of consecutive whole
segments, small enough that its inputs stay in cache while every kernel passes over them and
numerous enough that the threads finish together. No kernel reads across a segment boundary.

Blocks are cut at (about) equal row counts, and their number is a multiple of the threads: with
blocks of a fixed size the last, shorter block ran alone on one thread while the other idled.
Every block costs some Python (a dispatch per kernel, ~10 per block), so they are not tiny.
"""

from __future__ import annotations

import numpy as np

#: Rows per block aimed at (whole segments): about half a megabyte per float column.
BLOCK_ROWS = 1 << 16


def split_blocks(
    starts: np.ndarray, stops: np.ndarray, workers: int = 1, target: int = BLOCK_ROWS
) -> list[slice]:
    """Segment index ranges ``[first, last)`` of about equal rows, about ``target`` rows each,
    as many as a multiple of ``workers`` when there are enough segments (whole segments)."""
    if len(starts) == 0:
        return []
    rows = int(stops[-1] - starts[0])
    count = max(1, -(-rows // target))
    count = min(len(starts), -(-count // workers) * workers)
    # block k ends at the first segment whose end reaches k / count of the rows
    bounds = np.searchsorted(stops - starts[0], rows * np.arange(1, count + 1) / count, "left") + 1
    blocks: list[slice] = []
    begin = 0
    for end in bounds:
        if end > begin:
            blocks.append(slice(begin, int(end)))
            begin = int(end)
    if begin < len(starts):
        blocks.append(slice(begin, len(starts)))
    return blocks
