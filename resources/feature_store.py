"""Feature frames as parquet files under the data home (``$SIGNALWORKS_HOME/features/``).

A write goes to a temporary file in the same directory, is flushed to disk and renamed over the
final name (``os.replace``), so a reader sees the previous frame or the new one, never half of
one; a failed write leaves the previous file untouched.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
from dagster import ConfigurableResource
from pydantic import Field

from resources.atomic_file import atomic_write


def default_features_root() -> str:
    """``$SIGNALWORKS_HOME/features`` (``./.signalworks/features`` when the variable is unset), absolute."""
    home = os.environ.get("SIGNALWORKS_HOME", "").strip() or "./.signalworks"
    return str((Path(home) / "features").resolve())


class FeatureStoreResource(ConfigurableResource):
    """Named parquet frames in one directory."""

    root: str | None = Field(default=None, description="directory of the frames; default $SIGNALWORKS_HOME/features")

    @property
    def root_path(self) -> Path:
        return Path(self.root or default_features_root()).resolve()

    def path_of(self, name: str) -> Path:
        if not name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"feature frame name {name!r}: use letters, digits, '_' and '-' only")
        return self.root_path / f"{name}.parquet"

    def write(self, name: str, frame: pl.DataFrame) -> Path:
        """Replace the frame ``name`` atomically; returns its path."""
        return atomic_write(self.path_of(name), frame.write_parquet)

    def read(self, name: str) -> pl.DataFrame:
        """The frame ``name``; ``FileNotFoundError`` naming the asset to materialise when absent."""
        path = self.path_of(name)
        if not path.exists():
            raise FileNotFoundError(f"no feature frame at {path}: materialise the `features` asset first")
        return pl.read_parquet(path)
