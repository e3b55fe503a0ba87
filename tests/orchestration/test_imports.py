"""The project's code imports only Dagster's public API: private modules (``dagster._...``) move
between releases without notice, and Dagster's API moves fast."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("orchestration", "assets", "sensors", "resources", "ml", "streaming")


def private_dagster_imports(source: str) -> list[str]:
    """Every ``import dagster._x`` / ``from dagster._x import ...`` in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [f"line {node.lineno}: {name}" for name in names
                  if name.split(".")[0].startswith("dagster") and any(p.startswith("_") for p in name.split(".")[1:])]
    return found


@pytest.mark.parametrize("source, expected", [
    ("from dagster._core.storage.tags import X", 1),
    ("import dagster._check as check", 1),
    ("def f():\n    from dagster_postgres._x import y", 1),
    ("from dagster import JobDefinition, asset", 0),
    ("import dagster_postgres", 0),
    ("from ._private import x", 0),
])
def test_the_scanner_finds_private_imports(source: str, expected: int) -> None:
    assert len(private_dagster_imports(source)) == expected


def test_no_module_imports_private_dagster_modules() -> None:
    offenders = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found = private_dagster_imports(path.read_text())
            if found:
                offenders[str(path.relative_to(ROOT))] = found
    assert not offenders, f"private Dagster imports: {offenders}"


HEAVY = ("xgboost", "hmmlearn", "sklearn", "torch", "matplotlib", "telethon", "discord")


def test_loading_the_code_location_imports_no_heavy_library() -> None:
    """Every run and every UI reload loads the code location: the model and client libraries are
    imported inside the functions that use them, never at load time."""
    import subprocess
    import sys

    probe = ("import sys, orchestration.definitions as d; d.defs; "
             f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"loaded at import time: {out.stdout.strip()}"
