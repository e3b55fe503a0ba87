"""Walk-forward windows, purge and embargo with known answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.features import Interval, training_mask, walk_forward_split, walk_forward_windows
from ml.marketdata.frames import TS

T0 = datetime(2024, 1, 1, tzinfo=UTC)
H = timedelta(hours=1)


def _rows(n: int, horizon: int) -> pl.DataFrame:
    """One row per hour 0..n-1 whose label ends ``horizon + 1`` hours after it opens."""
    ts = [T0 + i * H for i in range(n)]
    return pl.DataFrame({"ts": ts, "label_end_ts": [t + (horizon + 1) * H for t in ts]},
                        schema={"ts": TS, "label_end_ts": TS})


def _hours(mask: pl.Series) -> list[int]:
    return [i for i, keep in enumerate(mask.to_list()) if keep]


def test_anchored_and_rolling_windows() -> None:
    anchored = walk_forward_windows(T0, T0 + 10 * H, train_length=4 * H, test_length=2 * H, mode="anchored")
    rolling = walk_forward_windows(T0, T0 + 10 * H, train_length=4 * H, test_length=2 * H, mode="rolling")
    assert [(w.train.start, w.train.end, w.test.start, w.test.end) for w in anchored] == [
        (T0, T0 + 4 * H, T0 + 4 * H, T0 + 6 * H),
        (T0, T0 + 6 * H, T0 + 6 * H, T0 + 8 * H),
        (T0, T0 + 8 * H, T0 + 8 * H, T0 + 10 * H),
    ]
    assert [(w.train.start, w.test.start) for w in rolling] == [
        (T0, T0 + 4 * H), (T0 + 2 * H, T0 + 6 * H), (T0 + 4 * H, T0 + 8 * H)]
    assert walk_forward_windows(T0, T0 + 5 * H, train_length=4 * H, test_length=2 * H, mode="rolling") == []


@settings(max_examples=50, deadline=None, derandomize=True)
@given(st.integers(1, 50), st.integers(1, 30), st.integers(20, 400), st.sampled_from(["anchored", "rolling"]))
def test_test_windows_never_overlap_and_follow_their_training(train: int, test: int, n: int, mode: str) -> None:
    windows = walk_forward_windows(T0, T0 + n * H, train_length=train * H, test_length=test * H, mode=mode)
    for before, after in pairwise(windows):
        assert before.test.end == after.test.start
    for w in windows:
        assert w.train.end == w.test.start and w.test.end <= T0 + n * H
        assert w.train.end - w.train.start == (train * H if mode == "rolling" else w.test.start - T0)


def test_purge_drops_training_rows_whose_label_ends_inside_the_test_window() -> None:
    """Labels span 3 hours (horizon 2): rows 4 and 5 (ends 7:00, 8:00) reach test [6, 8); row 3
    (ends 6:00, known when the test window starts) stays."""
    rows = _rows(12, horizon=2)
    mask = training_mask(rows, Interval(start=T0, end=T0 + 6 * H),
                         purge_against=[Interval(start=T0 + 6 * H, end=T0 + 8 * H)])
    assert _hours(mask) == [0, 1, 2, 3]


def test_purge_also_drops_rows_inside_and_around_a_test_group_in_the_middle() -> None:
    rows = _rows(12, horizon=1)
    mask = training_mask(rows, Interval(start=T0, end=T0 + 12 * H),
                         purge_against=[Interval(start=T0 + 5 * H, end=T0 + 7 * H)],
                         embargo_after=[Interval(start=T0 + 5 * H, end=T0 + 7 * H)], embargo=2 * H)
    # purge: rows 4 (ends 6:00 > 5:00), 5, 6; embargo: rows 7, 8
    assert _hours(mask) == [0, 1, 2, 3, 9, 10, 11]


def test_walk_forward_split_embargoes_after_earlier_test_windows() -> None:
    rows = _rows(14, horizon=1)
    windows = walk_forward_windows(T0, T0 + 14 * H, train_length=6 * H, test_length=3 * H, mode="anchored")
    train, test = walk_forward_split(rows, windows, 1, embargo=2 * H)
    # window 1: train [0, 9), test [9, 12); window 0's test [6, 9) embargoes nothing inside [0, 9)
    # except rows 9, 10 (outside training anyway); purge drops row 8 (its label ends at 10:00 > 9:00)
    assert _hours(train) == [0, 1, 2, 3, 4, 5, 6, 7]
    assert _hours(test) == [9, 10, 11]
    rolling = walk_forward_windows(T0, T0 + 14 * H, train_length=4 * H, test_length=2 * H, mode="rolling")
    # window 2: train [4, 8), test [8, 10); window 0's test [4, 6) embargoes rows 6, 7 (after it);
    # purge drops row 7 as well (its label ends at 9:00)
    train, _ = walk_forward_split(rows, rolling, 2, embargo=2 * H)
    assert _hours(train) == [4, 5]
    train, _ = walk_forward_split(rows, rolling, 2)
    assert _hours(train) == [4, 5, 6]


def test_bad_windows_are_rejected() -> None:
    with pytest.raises(ValueError, match="positive"):
        walk_forward_windows(T0, T0 + 5 * H, train_length=0 * H, test_length=H, mode="anchored")
    with pytest.raises(ValueError, match="timezone"):
        Interval(start=datetime(2024, 1, 1), end=datetime(2024, 1, 2))
