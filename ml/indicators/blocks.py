"""Blocks: runs of whole symbol segments, the unit of work of one engine thread.

The engine works on the long candle frame sorted by ``(exchange, symbol, ts)``: one *segment* per
``(exchange, symbol)``, rows ``starts[s]:stops[s]``. A block is a run of consecutive whole
segments, small enough that its inputs stay in cache while every kernel passes over them and
numerous enough that the threads finish together. No kernel reads across a segment boundary.
"""

from __future__ import annotations

import numpy as np

#: Rows per block aimed at (whole segments): about 1 MB per float column.
BLOCK_ROWS = 1 << 17


def split_blocks(starts: np.ndarray, stops: np.ndarray, target: int = BLOCK_ROWS) -> list[slice]:
    """Segment index ranges ``[first, last)`` of about ``target`` rows each (whole segments)."""
    blocks: list[slice] = []
    begin = 0
    for i in range(len(starts)):
        if stops[i] - starts[begin] >= target or i == len(starts) - 1:
            blocks.append(slice(begin, i + 1))
            begin = i + 1
    return blocks
