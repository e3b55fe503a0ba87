"""The float columns' validity bitmaps: Arrow's bit order, any start and stop the engine uses."""

from __future__ import annotations

import numpy as np
import pytest

from ml.indicators.bitmaps import pack_not_nan


def _expected(values: np.ndarray) -> np.ndarray:
    return np.packbits(~np.isnan(values), axis=1, bitorder="little")


@pytest.mark.parametrize("columns", [1, 7, 8, 9, 2047, 2048, 2049, 5000, 8203])
def test_bits_equal_numpy_packbits(columns: int) -> None:
    rng = np.random.default_rng(columns)
    values = rng.normal(size=(3, columns))
    values[rng.random(values.shape) < rng.uniform(0.05, 0.95)] = np.nan
    values[1, : columns // 3] = np.nan  # a warm-up prefix
    values[2] = np.nan if columns % 2 else values[2]  # a column with no value
    bits = np.zeros((3, (columns + 7) // 8), dtype=np.uint8)
    pack_not_nan(values, 0, columns, bits)
    assert np.array_equal(bits, _expected(values))


def test_a_range_leaves_the_other_bytes_alone() -> None:
    """Blocks pack their own whole bytes; the straddling bytes are packed later by the engine."""
    rng = np.random.default_rng(5)
    values = rng.normal(size=(2, 6000))
    values[rng.random(values.shape) < 0.3] = np.nan
    bits = np.full((2, 750), 0xAA, dtype=np.uint8)
    pack_not_nan(values, 2056, 4104, bits)
    expected = _expected(values)
    assert np.array_equal(bits[:, 257:513], expected[:, 257:513])
    assert (bits[:, :257] == 0xAA).all() and (bits[:, 513:] == 0xAA).all()


def test_infinities_count_as_values() -> None:
    values = np.array([[np.inf, -np.inf, np.nan, 0.0, -0.0, np.nan, 1e-308, 5e-324, np.nan]])
    bits = np.zeros((1, 2), dtype=np.uint8)
    pack_not_nan(values, 0, 9, bits)
    assert np.array_equal(bits, _expected(values))
