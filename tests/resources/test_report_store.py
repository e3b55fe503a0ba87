"""Report files: atomic replacement, JSON without NaN, plain names only, clear read errors."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from resources.report_store import ReportStoreResource


def test_write_is_json_without_nan_and_reads_back(tmp_path: Path) -> None:
    store = ReportStoreResource(home=str(tmp_path))
    path = store.write_json("walk_forward", "majors", {
        "sharpe": math.nan, "ratio": math.inf, "at": datetime(2024, 3, 1, tzinfo=UTC), "n": np.int64(3),
        "flag": np.bool_(True), "values": np.array([1.5, np.nan]), "pair": (1, 2)})
    assert path == tmp_path / "reports" / "walk_forward" / "majors.json"
    assert json.loads(path.read_text()) == store.read_json("walk_forward", "majors") == {
        "sharpe": None, "ratio": None, "at": "2024-03-01T00:00:00+00:00", "n": 3, "flag": True,
        "values": [1.5, None], "pair": [1, 2]}


def test_a_failed_write_leaves_the_previous_report_and_no_temporary_file(tmp_path: Path) -> None:
    store = ReportStoreResource(home=str(tmp_path))
    store.write_json("risk", "risk_report", {"version": 1})
    with pytest.raises(TypeError):
        store.write_json("risk", "risk_report", {"version": 2, "unserialisable": object()})
    assert store.read_json("risk", "risk_report") == {"version": 1}
    assert [p.name for p in (tmp_path / "reports" / "risk").iterdir()] == ["risk_report.json"]


def test_names_must_be_plain_and_bad_files_are_named(tmp_path: Path) -> None:
    store = ReportStoreResource(home=str(tmp_path))
    with pytest.raises(ValueError, match="plain file names"):
        store.write_json("walk_forward", "../escape", {})
    with pytest.raises(FileNotFoundError):
        store.read_json("walk_forward", "alts")
    broken = store.path("walk_forward", "alts")
    broken.parent.mkdir(parents=True)
    broken.write_text("[1, 2")
    with pytest.raises(ValueError, match=r"alts\.json: not valid JSON"):
        store.read_json("walk_forward", "alts")
    broken.write_text("[1, 2]")
    with pytest.raises(ValueError, match="expected a JSON object, got list"):
        store.read_json("walk_forward", "alts")
