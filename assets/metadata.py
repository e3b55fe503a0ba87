"""Materialisation metadata the Dagster UI renders: Markdown tables and embedded PNG plots.

One place for the formatting, so every asset's tables and plots look alike. The UI renders
``MetadataValue.md`` as Markdown, including images given as ``data:`` URIs.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence

import polars as pl
from dagster import MetadataValue

#: Rows shown at most in one Markdown table (the UI gets slow with thousands).
MAX_TABLE_ROWS = 200


def format_cell(value: object, digits: int = 4) -> str:
    """One table cell: floats to ``digits`` significant digits, None and NaN as an empty cell."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pl.DataFrame, *, columns: Sequence[str] | None = None, digits: int = 4,
                   max_rows: int = MAX_TABLE_ROWS) -> str:
    """``frame`` (or its ``columns``) as a Markdown table, at most ``max_rows`` rows, with a note
    naming how many rows were left out."""
    shown = frame.select(list(columns)) if columns is not None else frame
    lines = ["| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    lines += ["| " + " | ".join(format_cell(v, digits) for v in row) + " |"
              for row in shown.head(max_rows).iter_rows()]
    if shown.height > max_rows:
        lines.append(f"\n_{shown.height - max_rows} more rows not shown_")
    return "\n".join(lines)


def table_metadata(frame: pl.DataFrame, *, columns: Sequence[str] | None = None, digits: int = 4,
                   max_rows: int = MAX_TABLE_ROWS) -> MetadataValue:
    """:func:`markdown_table` as a metadata value."""
    return MetadataValue.md(markdown_table(frame, columns=columns, digits=digits, max_rows=max_rows))


def png_markdown(png: bytes, alt: str) -> str:
    """A Markdown image embedding ``png`` as a ``data:`` URI."""
    if not png.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError(f"{alt}: not a PNG image")
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def plot_metadata(png: bytes, alt: str) -> MetadataValue:
    """A PNG plot as a metadata value the UI shows inline."""
    return MetadataValue.md(png_markdown(png, alt))
