"""Walk-forward windows with purging and an embargo (qlib's rolling tasks, López de Prado's purge).

Windows are half-open intervals of candle open times (UTC). Test windows follow each other
without overlap; training precedes its test window:

* anchored: training always starts at the data's start and grows;
* rolling: training is the ``train_length`` just before the test window.

Purge: a training row whose label becomes known after its test window has begun
(``label_end_ts > test_start``, see :mod:`ml.features.labels`) is dropped, so no training label
uses a candle of the test window. Embargo: training rows that open within ``embargo`` after the
end of a test window (the window's own and every earlier one) are dropped, so serially correlated
rows right after a tested period never train a later window's model. In walk-forward only the
earlier windows' embargoes can bite (training precedes its own test); :func:`training_mask` also
serves combinatorial cross-validation, where training rows follow test groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, model_validator

Mode = Literal["anchored", "rolling"]


class Interval(BaseModel):
    """``[start, end)`` in UTC."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _ordered_and_aware(self) -> Interval:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("interval bounds must be timezone-aware (UTC)")
        if self.end <= self.start:
            raise ValueError(f"empty interval [{self.start}, {self.end})")
        return self


class WalkForwardWindow(BaseModel):
    """One walk-forward step: train on ``train``, then test on ``test`` (``train.end == test.start``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int
    train: Interval
    test: Interval


def walk_forward_windows(
    start: datetime, end: datetime, *, train_length: timedelta, test_length: timedelta, mode: Mode,
) -> list[WalkForwardWindow]:
    """Windows over the data range ``[start, end)``.

    The first test window starts at ``start + train_length``; each next one where the previous
    ended; only full test windows that end at or before ``end`` are produced (possibly none).
    """
    if train_length <= timedelta(0) or test_length <= timedelta(0):
        raise ValueError("train_length and test_length must be positive")
    if mode not in ("anchored", "rolling"):
        raise ValueError(f"mode must be 'anchored' or 'rolling', got {mode!r}")
    windows: list[WalkForwardWindow] = []
    test_start = start + train_length
    while test_start + test_length <= end:
        train_start = start if mode == "anchored" else test_start - train_length
        windows.append(WalkForwardWindow(
            index=len(windows),
            train=Interval(start=train_start, end=test_start),
            test=Interval(start=test_start, end=test_start + test_length),
        ))
        test_start += test_length
    return windows


def training_mask(
    frame: pl.DataFrame,
    train: Interval,
    *,
    purge_against: Sequence[Interval],
    embargo_after: Sequence[Interval] = (),
    embargo: timedelta = timedelta(0),
) -> pl.Series:
    """Boolean mask of ``frame`` rows (columns ``ts``, ``label_end_ts``) usable to train.

    A row is usable when its ``ts`` is in ``train``, its ``label_end_ts`` is known, it overlaps
    no interval of ``purge_against`` (``ts < end`` and ``label_end_ts > start``), and its ``ts``
    is not within ``[end, end + embargo)`` of any interval of ``embargo_after``.
    """
    ts, label_end = pl.col("ts"), pl.col("label_end_ts")
    usable = (ts >= train.start) & (ts < train.end) & label_end.is_not_null()
    for test in purge_against:
        usable = usable & ~((ts < test.end) & (label_end > test.start))
    if embargo > timedelta(0):
        for test in embargo_after:
            usable = usable & ~((ts >= test.end) & (ts < test.end + embargo))
    return frame.select(usable.alias("train")).get_column("train")


def walk_forward_split(
    frame: pl.DataFrame, windows: Sequence[WalkForwardWindow], index: int, *, embargo: timedelta = timedelta(0),
) -> tuple[pl.Series, pl.Series]:
    """(training mask, test mask) of window ``index``: purged against its test window, embargoed
    after its own and every earlier test window; the test mask is ``ts`` in the test window."""
    window = windows[index]
    train = training_mask(frame, window.train, purge_against=[window.test],
                          embargo_after=[w.test for w in windows[: index + 1]], embargo=embargo)
    test = frame.select(((pl.col("ts") >= window.test.start) & (pl.col("ts") < window.test.end)).alias("test"))
    return train, test.get_column("test")
