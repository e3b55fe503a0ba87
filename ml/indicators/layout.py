"""Where the kernels write: preallocated long output arrays, and their conversion to polars.

Every kernel writes whole symbol segments of full-length arrays (threads write disjoint rows):

* float columns into the rows of one ``(columns, rows)`` float64 matrix, NaN for null, grouped by
  kernel so that each kernel gets a contiguous slice of rows (a view, never a copy);
* Int64 columns (counts, directions, divergence signs) as int64 rows plus a bool validity row;
* Boolean columns as bool rows plus a bool validity row where they can be null.

The conversion wraps the buffers without copying them: each row becomes an Arrow array over the
numpy memory with a packed validity bitmap (for floats: not NaN, packed by the engine's threads
as they go, :mod:`ml.indicators.bitmaps`), and polars takes the Arrow table as it is. Bool values
are packed to bits (Arrow's layout). One conversion for the whole output: a frame per block
cost ~1 ms of GIL-held Python per block (48 Arrow arrays, a polars import) and a concat. Writing
the output once, where it will stay, matters: the output is ~50 columns of 8 bytes per candle,
and every extra copy into fresh memory costs page faults and memory bandwidth comparable to the
kernels themselves. The buffers come from Arrow's memory pool (:func:`arrow_empty`), which keeps
freed pages for the next computation, so a process that computes again (the next timeframe, the
next partition) writes into warm memory instead of faulting in ~400 MB of fresh zeroed pages.
"""

from __future__ import annotations

import ctypes
import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from ml.indicators.params import IndicatorParams


def float_groups(p: IndicatorParams) -> dict[str, list[str]]:
    """Float rows in matrix order, grouped by the kernel that writes them (and scratch rows)."""
    return {
        "trend": [*(f"ema_{n}" for n in p.ema_periods), *(f"sma_{n}" for n in p.sma_periods),
                  f"ehma_{p.ehma_period}", "macd", "macd_signal", "macd_hist", f"adx_{p.adx_period}"],
        "momentum": [f"rsi_{n}" for n in p.rsi_periods],
        "volatility": ["bb_upper", "bb_middle", "bb_lower", "bb_width", "bb_position",
                       f"atr_{p.atr_period}"],
        "volume": ["obv", "vwap", "volume_sma_ratio", "volume_usd"],
        "structure": ["ob_bull_top", "ob_bull_bottom", "ob_bear_top", "ob_bear_bottom", "fvg_top",
                      "fvg_bottom", "fvg_size_pct"],
        "supertrend": ["supertrend"],
        "derived": [f"diff_ema{p.trend_ema}_pct", "range_pct", "high_low_range_pct"],
        SCRATCH: ["_ema_half", "_ema_full", "_macd_slow", "_macd_fast"],  # last: not in the buffers
    }


#: Float rows the kernels use as working space (not output columns).
SCRATCH = "scratch"


#: Int64 columns: (row, validity row).
INT_COLUMNS = {
    "supertrend_direction": (0, 0),
    "td_up": (1, 1),
    "td_down": (2, 1),
    "rsi_divergence": (3, 2),
    "rsi_divergence_htf": (4, 3),
}


def bool_columns(p: IndicatorParams) -> dict[str, tuple[int, int]]:
    """Boolean columns: (row, validity row or -1 where never null)."""
    out = {"ob_bull_touch": (0, -1), "ob_bear_touch": (1, -1), "fvg_bull": (2, 0), "fvg_bear": (3, 0)}
    for pair, (fast, slow) in enumerate(p.ema_crosses):
        out[f"ema_{fast}_{slow}_cross_up"] = (4 + 2 * pair, 1 + pair)
        out[f"ema_{fast}_{slow}_cross_down"] = (5 + 2 * pair, 1 + pair)
    return out


@dataclass(frozen=True)
class Buffers:
    """The long output arrays of one computation (``rows`` candles)."""

    params: IndicatorParams
    floats: np.ndarray
    ints: np.ndarray
    ints_valid: np.ndarray
    bools: np.ndarray
    bools_valid: np.ndarray

    @classmethod
    def allocate(cls, params: IndicatorParams, rows: int) -> Buffers:
        """Uninitialised buffers for ``rows`` candles."""
        shapes = cls.shapes(params, rows)
        return cls(params, *(arrow_empty(shape, dtype) for shape, dtype in zip(shapes, _DTYPES, strict=True)))

    @staticmethod
    def shapes(params: IndicatorParams, rows: int) -> list[tuple[int, int]]:
        floats = sum(len(names) for group, names in float_groups(params).items() if group != SCRATCH)
        pairs = len(params.ema_crosses)
        return [(floats, rows), (len(INT_COLUMNS), rows), (4, rows), (4 + 2 * pairs, rows),
                (1 + pairs, rows)]

    def group(self, name: str) -> np.ndarray:
        """The float rows written by kernel ``name`` (a view)."""
        start = 0
        for group, names in float_groups(self.params).items():
            if group == name:
                return self.floats[start : start + len(names)]
            start += len(names)
        raise KeyError(name)

    def float_row(self, column: str) -> np.ndarray:
        """One float column (a view)."""
        return self.floats[self.row(column)]

    def row(self, column: str) -> int:
        """Row of a float column in :attr:`floats`."""
        names = [n for group in float_groups(self.params).values() for n in group]
        return names.index(column)

    def float_bitmaps(self) -> np.ndarray:
        """Uninitialised packed validity bitmaps of :attr:`floats`, one row per float row."""
        rows, n = self.floats.shape
        return arrow_empty((rows, (n + 7) // 8), np.uint8)

    def to_frame(self, float_bits: np.ndarray) -> pl.DataFrame:
        """Every column as one polars frame (nulls, no NaN; no particular column order), with
        ``float_bits`` (:meth:`float_bitmaps`, filled) the float rows' validity.

        The buffers become the frame's memory (no copy): only the other bitmaps are new.
        """
        rows = self.floats.shape[1]
        names: list[str] = []
        arrays: list[pa.Array] = []
        float_names = [
            n for group, names in float_groups(self.params).items() if group != SCRATCH for n in names
        ]
        for row, name in enumerate(float_names):
            names.append(name)
            arrays.append(_arrow(pa.float64(), rows, self.floats[row], float_bits[row]))
        int_bits = np.packbits(self.ints_valid, axis=1, bitorder="little")
        for name, (row, valid) in INT_COLUMNS.items():
            names.append(name)
            arrays.append(_arrow(pa.int64(), rows, self.ints[row], int_bits[valid]))
        bool_bits = np.packbits(self.bools_valid, axis=1, bitorder="little")
        values = np.packbits(self.bools, axis=1, bitorder="little")
        for name, (row, valid) in bool_columns(self.params).items():
            names.append(name)
            arrays.append(_arrow(pa.bool_(), rows, values[row], None if valid < 0 else bool_bits[valid]))
        frame = pl.from_arrow(pa.Table.from_arrays(arrays, names=names))
        assert isinstance(frame, pl.DataFrame)
        return frame


_DTYPES = (np.float64, np.int64, np.bool_, np.bool_, np.bool_)


def arrow_empty(shape: tuple[int, int], dtype: type[np.generic]) -> np.ndarray:
    """An uninitialised C-contiguous array in memory from Arrow's default memory pool.

    The output frame owns these buffers until it is dropped; the pool (mimalloc or jemalloc, as
    polars' own allocator) then keeps the pages for the next computation. numpy's ``np.empty``
    takes memory this size straight from the kernel and gives it back on free, so every call
    paid fresh, zeroed pages (~400 MB per 1 M candles): about a third of the engine's time on
    2 cores.
    """
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    buffer = pa.allocate_buffer(max(size, 1))
    if size >= _HUGE_PAGE_MIN:
        _advise_huge_pages(buffer.address, size)
    return np.frombuffer(buffer, dtype=dtype, count=int(np.prod(shape))).reshape(shape)


#: Buffers from this size on are advised to use transparent huge pages (as numpy does).
_HUGE_PAGE_MIN = 4 << 20
_MADV_HUGEPAGE = 14
_PAGE = 4096


def _advise_huge_pages(address: int, size: int) -> None:
    """Ask Linux to back ``[address, address + size)`` with transparent huge pages where that
    memory is still unbacked (a first computation, or a pool that returned its pages): one 2 MB
    fault instead of 512 4 kB ones. A no-op elsewhere and where THP is disabled."""
    madvise = _madvise()
    if madvise is None:
        return
    start = -(-address // _PAGE) * _PAGE
    stop = (address + size) // _PAGE * _PAGE
    if stop > start:
        madvise(ctypes.c_void_p(start), ctypes.c_size_t(stop - start), _MADV_HUGEPAGE)


@functools.cache
def _madvise() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):  # pragma: no cover - a libc without madvise
        return None
    function.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    function.restype = ctypes.c_int
    return function


def _arrow(dtype: pa.DataType, rows: int, values: np.ndarray, bitmap: np.ndarray | None) -> pa.Array:
    """An Arrow array over the numpy buffer ``values`` with the packed validity ``bitmap``."""
    validity = None if bitmap is None else pa.py_buffer(bitmap)
    return pa.Array.from_buffers(dtype, rows, [validity, pa.py_buffer(values)])
