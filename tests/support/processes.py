"""Run a function in fresh processes and collect what each reports (spawn: forking after polars
can hang the child)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from typing import Any


def results_of_spawned(target: Callable[..., None], args_per_process: Sequence[tuple[Any, ...]],
                       *, timeout_s: float = 60.0) -> list[Any]:
    """Start one spawned process per ``args`` (``target(*args, queue)``), return what each put on
    the queue (in arrival order) and assert every process exited cleanly."""
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    processes = [ctx.Process(target=target, args=(*args, results)) for args in args_per_process]
    for process in processes:
        process.start()
    found = [results.get(timeout=timeout_s) for _ in processes]
    for process in processes:
        process.join(timeout=timeout_s)
    assert [p.exitcode for p in processes] == [0] * len(processes)
    return found
