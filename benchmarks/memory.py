"""Peak memory of one piece of work, measured in a fresh spawned process (Linux ``/proc``).

The child builds its inputs, calls :func:`start_peak` (resets the kernel's high-water mark to the
current RSS), runs the work and sends :func:`peak_growth_mb` back: how far the resident set grew
above its size at the start. Spawned, not forked, so nothing the parent allocated counts (and a
polars parent never forks).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from pathlib import Path

CLEAR_REFS = Path("/proc/self/clear_refs")


def status_kb(field: str) -> float:
    """A ``/proc/self/status`` field in kB (``VmHWM``, ``VmRSS``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def start_peak() -> float:
    """Reset the high-water mark to the current RSS; returns it (kB)."""
    CLEAR_REFS.write_text("5")
    return status_kb("VmHWM")


def peak_growth_mb(start_kb: float) -> float:
    """Peak RSS since :func:`start_peak` returned ``start_kb``, above it, in MB."""
    return (status_kb("VmHWM") - start_kb) / 1024


def peak_mb_in_child(target: Callable[..., None], *args: object, timeout_s: float = 600) -> float | None:
    """Run ``target(*args, conn)`` in a spawned process and return the MB it sends on ``conn``;
    ``None`` where ``/proc`` cannot reset the high-water mark or the child sends nothing in time."""
    if not CLEAR_REFS.exists():
        return None
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=target, args=(*args, child))
    process.start()
    value = parent.recv() if parent.poll(timeout_s) else None
    process.join(60)
    return value
