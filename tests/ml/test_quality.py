"""Data-quality rules against naive loops and hand-built cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.marketdata.frames import TS
from ml.marketdata.quality import duplicate_keys, find_gaps, ohlc_violations
from tests.support.builders import make_candles

START = datetime(2024, 3, 1, tzinfo=UTC)


def test_clean_candles_have_no_violations() -> None:
    assert ohlc_violations(make_candles(500, seed=3)).is_empty()


@pytest.mark.parametrize(
    ("column", "value"),
    [("high", 0.0), ("low", 1e9), ("volume", -1.0), ("close", float("nan")), ("open", float("inf"))],
)
def test_each_broken_rule_is_caught(column: str, value: float) -> None:
    frame = make_candles(10)
    broken = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 4).then(pl.lit(value)).otherwise(pl.col(column)).alias(column)
    )
    bad = ohlc_violations(broken)
    assert bad.height == 1
    assert bad.get_column("ts")[0] == frame.get_column("ts")[4]


def test_duplicate_keys_counts_repeats() -> None:
    frame = make_candles(5)
    doubled = pl.concat([frame, frame.head(2)])
    found = duplicate_keys(doubled, ["exchange", "symbol", "timeframe", "ts"])
    assert found.height == 2
    assert found.get_column("n").to_list() == [2, 2]


@settings(max_examples=60, deadline=None)
@given(missing=st.sets(st.integers(0, 47), max_size=48))
def test_gaps_match_a_naive_loop(missing: set[int]) -> None:
    present = [START + timedelta(hours=h) for h in range(48) if h not in missing]
    frame = pl.DataFrame({"symbol": ["A"] * len(present), "ts": present}, schema={"symbol": pl.String, "ts": TS})
    gaps = find_gaps(frame, timeframe="1h", start=START, end=START + timedelta(hours=48), symbols=["A"])
    runs: list[tuple[datetime, int]] = []
    for hour in sorted(missing):
        if runs and runs[-1][0] + timedelta(hours=runs[-1][1]) == START + timedelta(hours=hour):
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((START + timedelta(hours=hour), 1))
    assert list(zip(gaps.get_column("gap_start").to_list(), gaps.get_column("missing").to_list(), strict=True)) == runs


def test_a_symbol_without_candles_is_one_whole_window_gap() -> None:
    frame = make_candles(24, start=START, symbols=("A/USDT",))
    gaps = find_gaps(frame, timeframe="1h", start=START, end=START + timedelta(days=1), symbols=["A/USDT", "B/USDT"])
    assert gaps.rows() == [("B/USDT", START, 24)]
