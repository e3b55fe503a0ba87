"""The demo's report settings fit the stored days, and a run stopped by its blocking checks is told
apart from one that failed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ml.features.splits import walk_forward_windows
from orchestration.launcher import LaunchedRun
from orchestration.report_demo import demo_walk_forward_config, stopped_by_blocking_checks


@pytest.mark.parametrize("hourly_days", [10, 45, 90])
def test_demo_windows_fit_three_times_in_the_stored_days(hourly_days: int) -> None:
    config = demo_walk_forward_config(hourly_days)
    # the stored 1h candles: from midnight hourly_days - 1 days ago to the last closed hour of today
    start = datetime(2024, 3, 1, tzinfo=UTC)
    end = start + timedelta(days=hourly_days - 1, hours=9)
    windows = walk_forward_windows(start, end, train_length=timedelta(days=config["train_days"]),
                                   test_length=timedelta(days=config["test_days"]), mode="rolling")
    assert len(windows) == 3
    assert config["days"] == hourly_days and config["embargo_hours"] <= 24 * config["test_days"]


def test_blocking_check_rejections_are_told_apart_from_failures() -> None:
    rejected = LaunchedRun("a", False, (
        "xgb_model_checks: dagster._core.errors.DagsterAssetCheckFailedError: 1 blocking asset check failed "
        "with ERROR severity:", "run: ... 1 blocking asset check failed with ERROR severity:"))
    crashed = LaunchedRun("b", False, ("xgb_models: ValueError: segment memes has no symbols",
                                       "run: ... 1 blocking asset check failed with ERROR severity:"))
    assert stopped_by_blocking_checks(rejected)
    assert not stopped_by_blocking_checks(crashed)
    assert not stopped_by_blocking_checks(LaunchedRun("c", False, ()))
    assert not stopped_by_blocking_checks(LaunchedRun("d", True, ()))
