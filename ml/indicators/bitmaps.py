"""Arrow validity bitmaps of the float output rows, packed by a compiled loop.

Each engine thread packs the bits of the rows of its block right after its kernels wrote them,
with the GIL released, so the two threads pack at once; numpy's
``np.packbits(~np.isnan(x))`` would hold a full-size bool temporary and run after the pool.
Bit ``i % 8`` of byte ``i // 8`` is row ``i`` (Arrow's little-endian bit order).
"""

from __future__ import annotations

import numpy as np

from ml.indicators.jit import kernel


@kernel
def pack_not_nan(values: np.ndarray, start: int, stop: int, bits: np.ndarray) -> None:
    """Write the "not NaN" bits of columns ``start:stop`` of every row of ``values`` into the
    same rows of ``bits``; ``start`` is a multiple of 8 and ``stop`` too, unless it is the last
    column."""
    first, full = start // 8, stop // 8
    for r in range(values.shape[0]):
        row, out = values[r], bits[r]
        for byte in range(first, full):
            i, acc = byte * 8, 0
            for bit in range(8):
                acc |= np.uint8(row[i + bit] == row[i + bit]) << bit
            out[byte] = acc
        if stop > full * 8:
            acc = 0
            for i in range(full * 8, stop):
                acc |= np.uint8(row[i] == row[i]) << (i - full * 8)
            out[full] = acc
