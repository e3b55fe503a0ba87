"""Atomic file replacement: a reader sees the previous file or the new one, never half of either.

The content goes to a temporary file in the target's directory (same file system), is flushed
and fsynced, then renamed over the target (``os.replace``, atomic on POSIX). On any error,
including an interrupt, the temporary file is removed and the target is left as it was.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> Path:
    """Replace ``path`` with what ``write`` writes to the binary file it is given; returns ``path``.

    Missing parent directories are created.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return path


def atomic_write_bytes(path: Path, payload: bytes) -> Path:
    """Replace ``path`` with ``payload`` (see :func:`atomic_write`)."""
    return atomic_write(path, lambda file: file.write(payload))
