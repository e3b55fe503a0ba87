"""Timing samples, targets and a plain-text report (no assertions: figures and verdicts only)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of repeated runs that each handle ``rows`` rows."""

    label: str
    rows: int
    seconds: tuple[float, ...]

    @property
    def best(self) -> float:
        return min(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def best_rate(self) -> float:
        return self.rows / self.best

    @property
    def median_rate(self) -> float:
        return self.rows / self.median


def measure(label: str, rows: int, run: Callable[[int], object], repeat: int,
            setup: Callable[[int], object] | None = None) -> Timing:
    """Time ``run(i)`` for ``i`` in ``range(repeat)``; ``setup(i)`` runs first, untimed."""
    seconds = []
    for i in range(repeat):
        if setup is not None:
            setup(i)
        start = time.perf_counter()
        run(i)
        seconds.append(time.perf_counter() - start)
    return Timing(label, rows, tuple(seconds))


@dataclass(frozen=True)
class Target:
    """``value`` compared with ``threshold`` (``at_least``, or below it; ``inclusive`` admits equality
    there); ``None`` = not measured."""

    name: str
    value: float | None
    threshold: float
    unit: str = "x"
    at_least: bool = True
    inclusive: bool = False

    @property
    def verdict(self) -> str:
        if self.value is None:
            return "NOT RUN"
        if self.at_least:
            met = self.value >= self.threshold
        else:
            met = self.value <= self.threshold if self.inclusive else self.value < self.threshold
        return "MET" if met else "MISSED"

    def line(self) -> str:
        sign = ">=" if self.at_least else "<=" if self.inclusive else "<"
        shown = "n/a" if self.value is None else _number(self.value, self.unit)
        return f"  {self.verdict:<7} {self.name}: {shown} (target {sign} {_number(self.threshold, self.unit)})"


def _number(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "M rows/s":
        return f"{value:.3f} M rows/s"
    if unit in ("MB", "messages/s"):
        return f"{value:,.0f} {unit}"
    return f"{value:.3g} {unit}"


@dataclass
class Section:
    """One part of the report: text lines and the targets it judged."""

    title: str
    lines: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def render(self) -> str:
        rule = "=" * len(self.title)
        body = "\n".join(self.lines)
        verdicts = "\n".join(t.line() for t in self.targets)
        return f"\n{self.title}\n{rule}\n{body}\n" + (f"\nTargets\n{verdicts}\n" if verdicts else "")


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """A left/right aligned text table (numbers right-aligned)."""
    cells = [[str(c) for c in header]] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    numeric = [all(_is_number(row[i]) for row in cells[1:]) if rows else False for i in range(len(header))]

    def render(row: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if numeric[i] else c.ljust(w) for i, (c, w) in
                         enumerate(zip(row, widths, strict=True))).rstrip()

    lines = [render(cells[0]), render(["-" * w for w in widths])]
    lines += [render(r) for r in cells[1:]]
    return ["  " + line for line in lines]


def timing_rows(timings: Sequence[Timing], reference: Timing | None = None,
                reference_name: str = "ref") -> list[list[object]]:
    """Rows for :func:`table`: label, rows, best/median seconds and M rows/s, ratio to reference."""
    rows: list[list[object]] = []
    for t in timings:
        ratio = "" if reference is None else f"{t.best_rate / reference.best_rate:.2f}x {reference_name}"
        rows.append([t.label, f"{t.rows:,}", f"{t.best:.3f}", f"{t.median:.3f}",
                     f"{t.best_rate / 1e6:.3f}", f"{t.median_rate / 1e6:.3f}", ratio])
    return rows


TIMING_HEADER = ("", "rows", "best s", "median s", "best M rows/s", "median M rows/s", "vs")


def _cell(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", "").rstrip("x"))
    except ValueError:
        return text == ""
    return True
