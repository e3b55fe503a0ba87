"""Arrow bitmaps of the output buffers, packed by compiled loops (one read of each row).

numpy's way (``np.packbits(~np.isnan(floats))``) makes a full-size bool temporary per row and
packs it in a second pass under the GIL; these kernels read each value once, build each byte in a
register and release the GIL, so the two engine threads pack their blocks at the same time.
Bit ``i % 8`` of byte ``i // 8`` is row ``i`` (Arrow's little-endian bit order).
"""

from __future__ import annotations

import numpy as np

from ml.indicators.jit import kernel


@kernel
def not_nan_bits(values: np.ndarray) -> np.ndarray:
    """Packed "not NaN" bitmap of every row of the float matrix ``values``."""
    rows, n = values.shape
    out = np.zeros((rows, (n + 7) // 8), dtype=np.uint8)
    full = n // 8
    for r in range(rows):
        row, bits = values[r], out[r]
        for byte in range(full):
            i, acc = byte * 8, 0
            for bit in range(8):
                acc |= np.uint8(row[i + bit] == row[i + bit]) << bit
            bits[byte] = acc
        for i in range(full * 8, n):
            bits[full] |= np.uint8(row[i] == row[i]) << (i - full * 8)
    return out


@kernel
def true_bits(flags: np.ndarray) -> np.ndarray:
    """Packed bitmap of every row of the bool matrix ``flags``."""
    rows, n = flags.shape
    out = np.zeros((rows, (n + 7) // 8), dtype=np.uint8)
    full = n // 8
    for r in range(rows):
        row, bits = flags[r], out[r]
        for byte in range(full):
            i, acc = byte * 8, 0
            for bit in range(8):
                acc |= np.uint8(row[i + bit]) << bit
            bits[byte] = acc
        for i in range(full * 8, n):
            bits[full] |= np.uint8(row[i]) << (i - full * 8)
    return out
