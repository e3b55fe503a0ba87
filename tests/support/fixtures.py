"""Locate ``../shared/fixtures`` (real recorded responses); never copied into the project.

In a user's clone the folder may be absent: tests that need it skip with a clear reason. Under
``CI=true`` it must be there, so a missing folder fails instead of skipping.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def shared_fixtures_dir() -> Path:
    """Path of the shared fixtures, skipping (or failing under CI) when it is absent."""
    candidates = [
        Path(os.environ["SIGNALWORKS_SHARED_FIXTURES"]) if "SIGNALWORKS_SHARED_FIXTURES" in os.environ else None,
        PROJECT_ROOT.parent / "shared" / "fixtures",
    ]
    for candidate in candidates:
        if candidate is not None and candidate.is_dir():
            return candidate
    reason = (
        "../shared/fixtures (real recorded API responses) is not beside this clone; "
        "set SIGNALWORKS_SHARED_FIXTURES to its path to run this test"
    )
    skip_unless_ci(reason)


def skip_unless_ci(reason: str) -> NoReturn:
    """Skip with ``reason`` on a developer's machine; fail under ``CI=true``, where every test
    (PostgreSQL and ../shared included) must run."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason, allow_module_level=True)
