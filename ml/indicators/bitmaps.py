"""Arrow validity bitmaps of the float output rows, packed by a compiled loop.

Each engine thread packs the bits of the rows of its block right after its kernels wrote them,
with the GIL released, so the two threads pack at once; numpy's
``np.packbits(~np.isnan(x))`` would hold a full-size bool temporary and run after the pool.
Bit ``i % 8`` of byte ``i // 8`` is row ``i`` (Arrow's little-endian bit order).
"""

from __future__ import annotations

import sys

import numpy as np

from ml.indicators.jit import kernel

if sys.byteorder != "little":  # pragma: no cover - the word trick below reads bytes as little-endian
    raise ImportError("ml.indicators.bitmaps packs bitmaps on little-endian machines only")

#: Rows whose "not NaN" bytes are formed at once before they are packed (stays in L1).
_CHUNK = 2048
#: Multiplying 8 bytes of 0/1 by this gathers byte ``q``'s bit into bit ``q`` of the top byte.
_GATHER = np.uint64(0x0102040810204080)


@kernel
def pack_not_nan(values: np.ndarray, start: int, stop: int, bits: np.ndarray) -> None:
    """Write the "not NaN" bits of columns ``start:stop`` of every row of ``values`` into the
    same rows of ``bits``; ``start`` is a multiple of 8 and ``stop`` too, unless it is the last
    column.

    Two straight loops per chunk, both vectorised by the compiler: one byte (0 or 1) per value,
    then each 8 bytes, read as one little-endian word, become one bitmap byte by a multiply.
    """
    first, full = start // 8, stop // 8
    flags = np.empty(_CHUNK, dtype=np.uint8)
    words = flags.view(np.uint64)
    gather, top = _GATHER, np.uint64(56)
    for r in range(values.shape[0]):
        row, out = values[r], bits[r]
        position = first * 8
        while position < full * 8:
            m = min(_CHUNK, full * 8 - position)
            chunk = row[position : position + m]
            for j in range(m):
                flags[j] = np.uint8(chunk[j] == chunk[j])
            packed = out[position // 8 : position // 8 + m // 8]
            for w in range(m // 8):
                packed[w] = np.uint8((words[w] * gather) >> top)
            position += m
        if stop > full * 8:
            acc = 0
            for i in range(full * 8, stop):
                acc |= np.uint8(row[i] == row[i]) << (i - full * 8)
            out[full] = acc
