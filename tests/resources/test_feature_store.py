"""Feature frames on disk: round trip, atomic replacement, a failed write keeps the old frame."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from resources.feature_store import FeatureStoreResource


def test_write_read_replace_and_failed_write(tmp_path: Path) -> None:
    store = FeatureStoreResource(root=str(tmp_path / "features"))
    first = pl.DataFrame({"a": [1, 2, 3]})
    path = store.write("dataset_1h", first)
    assert path == (tmp_path / "features" / "dataset_1h.parquet").resolve()
    assert store.read("dataset_1h").equals(first)
    second = pl.DataFrame({"a": [4]})
    store.write("dataset_1h", second)
    assert store.read("dataset_1h").equals(second)
    # An unwritable frame (Python objects have no parquet type) fails the write: the previous frame
    # stays whole and no temporary file is left behind.
    with pytest.raises(Exception):  # noqa: B017  (polars raises its own error type for Object columns)
        store.write("dataset_1h", pl.DataFrame({"a": [object()]}, schema={"a": pl.Object}))
    assert store.read("dataset_1h").equals(second)
    assert [p.name for p in path.parent.iterdir()] == ["dataset_1h.parquet"]


def test_missing_frame_and_bad_names(tmp_path: Path) -> None:
    store = FeatureStoreResource(root=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="materialise the `features` asset"):
        store.read("dataset_1h")
    with pytest.raises(ValueError, match="letters, digits"):
        store.path_of("../escape")
