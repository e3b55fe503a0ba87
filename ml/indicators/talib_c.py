"""TA-Lib's C functions called from the numba kernels, one call per symbol segment.

RSI, ATR, ADX and Bollinger Bands come from TA-Lib itself, bit for bit: their C code smooths in
forms (two-coefficient Wilder updates, fused multiply-adds, epsilon tests) that a
re-implementation would have to track release by release, and ADX's seven divisions per bar run
no faster in a transcription. The kernels call the C entry points directly, with no Python
in between: the function addresses are looked up once through the ``talib`` extension module
(which links TA-Lib and initialises it on import) and passed to the kernels as integers.

Each wrapper fills the segment's warm-up rows with NaN and lets TA-Lib write the rest in place,
exactly the values ``talib.<NAME>(segment)`` returns.
"""

from __future__ import annotations

import ctypes
from functools import cache

import numpy as np

from ml.indicators.jit import call_c_bbands, call_c_hlc, call_c_real, kernel

_NAMES = ("TA_RSI", "TA_ATR", "TA_BBANDS", "TA_ADX")


@cache
def addresses() -> tuple[int, int, int, int]:
    """Addresses of ``TA_RSI``, ``TA_ATR``, ``TA_BBANDS`` and ``TA_ADX`` in the loaded TA-Lib."""
    import talib  # noqa: F401 - runs TA_Initialize
    from talib import _ta_lib

    library = ctypes.CDLL(_ta_lib.__file__)  # dlsym searches the module and what it links
    found = []
    for name in _NAMES:
        try:
            found.append(ctypes.cast(getattr(library, name), ctypes.c_void_p).value)
        except AttributeError as e:
            raise RuntimeError(
                f"TA-Lib's {name} is not visible through {_ta_lib.__file__}; "
                "install the ta-lib wheel, which links the C library dynamically"
            ) from e
    return found[0], found[1], found[2], found[3]


@kernel
def rsi_into(address: int, x: np.ndarray, a: int, b: int, period: int, out: np.ndarray,
             meta: np.ndarray) -> None:
    """``out[a:b] = talib.RSI(x[a:b], period)`` (``meta``: two int32 of scratch)."""
    out[a : min(a + period, b)] = np.nan
    if b - a <= period:
        return
    m = np.int64(meta.ctypes.data)
    call_c_real(address, (np.int64(0), np.int64(b - a - 1), np.int64(x.ctypes.data) + 8 * a,
                          np.int64(period), m, m + 4, np.int64(out.ctypes.data) + 8 * (a + period)))


@kernel
def hlc_into(address: int, h: np.ndarray, lo: np.ndarray, c: np.ndarray, a: int, b: int,
             period: int, lookback: int, out: np.ndarray, meta: np.ndarray) -> None:
    """``out[a:b] = talib.<F>(h[a:b], lo[a:b], c[a:b], period)`` for a function ``F`` of
    ``TA_ATR``'s signature whose first value is at ``lookback``."""
    out[a : min(a + lookback, b)] = np.nan
    if b - a <= lookback:
        return
    m = np.int64(meta.ctypes.data)
    call_c_hlc(address, (np.int64(0), np.int64(b - a - 1), np.int64(h.ctypes.data) + 8 * a,
                         np.int64(lo.ctypes.data) + 8 * a, np.int64(c.ctypes.data) + 8 * a,
                         np.int64(period), m, m + 4, np.int64(out.ctypes.data) + 8 * (a + lookback)))


@kernel
def atr_into(address: int, h: np.ndarray, lo: np.ndarray, c: np.ndarray, a: int, b: int,
             period: int, out: np.ndarray, meta: np.ndarray) -> None:
    """``out[a:b] = talib.ATR(h[a:b], lo[a:b], c[a:b], period)``."""
    hlc_into(address, h, lo, c, a, b, period, period, out, meta)


@kernel
def bbands_into(address: int, x: np.ndarray, a: int, b: int, period: int, k: float,
                upper: np.ndarray, middle: np.ndarray, lower: np.ndarray, meta: np.ndarray) -> None:
    """``talib.BBANDS(x[a:b], period, k, k, 0)`` (SMA middle band) into rows ``a:b``."""
    head = min(a + period - 1, b)
    upper[a:head] = np.nan
    middle[a:head] = np.nan
    lower[a:head] = np.nan
    if b - a < period:
        return
    m = np.int64(meta.ctypes.data)
    at = 8 * (a + period - 1)
    call_c_bbands(address, (np.int64(0), np.int64(b - a - 1), np.int64(x.ctypes.data) + 8 * a,
                            np.int64(period), k, k, np.int64(0), m, m + 4,
                            np.int64(upper.ctypes.data) + at, np.int64(middle.ctypes.data) + at,
                            np.int64(lower.ctypes.data) + at))
