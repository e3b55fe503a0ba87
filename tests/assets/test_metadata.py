import base64

import polars as pl
import pytest

from assets.metadata import markdown_table, plot_metadata, png_markdown

PNG_HEADER = b"\x89PNG\r\n\x1a\n"


def test_markdown_table_formats_and_truncates() -> None:
    frame = pl.DataFrame({"name": ["a|b", None, "c"], "value": [1.23456789, float("nan"), 3.0]})
    assert markdown_table(frame, digits=3).splitlines() == [
        "| name | value |", "|---|---|", "| a\\|b | 1.23 |", "|  |  |", "| c | 3 |"]
    truncated = markdown_table(frame, columns=["value"], max_rows=1)
    assert truncated.splitlines()[:3] == ["| value |", "|---|", "| 1.235 |"]
    assert truncated.endswith("_2 more rows not shown_")


def test_png_is_embedded_as_a_data_uri_and_other_bytes_are_refused() -> None:
    payload = PNG_HEADER + b"rest"
    text = png_markdown(payload, "equity")
    assert text.startswith("![equity](data:image/png;base64,")
    assert base64.b64decode(text.split(",", 1)[1].rstrip(")")) == payload
    assert plot_metadata(payload, "equity").value == text
    with pytest.raises(ValueError, match="equity: not a PNG"):
        png_markdown(b"GIF89a", "equity")
