"""Report files under the data home: ``<home>/reports/<kind>/<name>.json``.

Writes are atomic (a temporary file in the same folder, flushed to disk, then renamed over the
old one), so a reader sees the previous report or the new one, never half of one, and a failed
run leaves the previous report in place. JSON has no NaN or infinity: non-finite floats are
written as ``null``; datetimes as ISO-8601 strings.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
from dagster import ConfigurableResource
from pydantic import Field

from resources.atomic_file import atomic_write_bytes

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def jsonable(value: Any) -> Any:
    """``value`` with datetimes as ISO strings, non-finite floats as None, numpy scalars and
    arrays as Python values, tuples as lists (recursively)."""
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.bool_ | np.integer):
        return value.item()
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


class ReportStoreResource(ConfigurableResource):
    """Where report assets keep their JSON (the data home by default)."""

    home: str = Field(description="data home; reports go to <home>/reports/<kind>/<name>.json")

    def path(self, kind: str, name: str) -> Path:
        for part in (kind, name):
            if not _NAME.match(part):
                raise ValueError(f"report kind and name must be plain file names, got {part!r}")
        return Path(self.home) / "reports" / kind / f"{name}.json"

    def write_json(self, kind: str, name: str, payload: dict[str, Any]) -> Path:
        """Write ``payload`` (made JSON-able by :func:`jsonable`) atomically; returns the path."""
        target = self.path(kind, name)
        text = json.dumps(jsonable(payload), indent=1, allow_nan=False)
        return atomic_write_bytes(target, text.encode("utf-8"))

    def read_json(self, kind: str, name: str) -> dict[str, Any]:
        """The stored report; ``FileNotFoundError`` when there is none, ``ValueError`` naming the
        file when it is not a JSON object."""
        target = self.path(kind, name)
        try:
            data = json.loads(target.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{target}: not valid JSON ({error})") from error
        if not isinstance(data, dict):
            raise ValueError(f"{target}: expected a JSON object, got {type(data).__name__}")
        return data
