"""Model schedules: XGBoost every 6 h (one run per segment), the HMM every 12 h, features hourly;
the model run config defaults are the documented windows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from dagster import RunRequest, build_schedule_context

from assets.models import FeaturesConfig, RegimeModelConfig, XgbModelsConfig
from tests.assets.conftest import sim_definitions


@pytest.mark.parametrize(
    ("schedule", "cron", "job"),
    [
        ("model_features_schedule", "10 * * * *", "model_features_job"),
        ("xgb_training_schedule", "20 */6 * * *", "xgb_training_job"),
        ("regime_training_schedule", "25 */12 * * *", "regime_training_job"),
    ],
)
def test_model_schedule_cadence(tmp_path: Path, schedule: str, cron: str, job: str) -> None:
    defs, _ = sim_definitions(tmp_path)
    schedule_def = defs.resolve_schedule_def(schedule)
    assert (schedule_def.cron_schedule, schedule_def.job_name, schedule_def.execution_timezone) == (cron, job, "UTC")


def test_xgb_schedule_requests_one_run_per_segment(tmp_path: Path) -> None:
    defs, _ = sim_definitions(tmp_path)
    moment = datetime(2024, 3, 12, 6, 20, tzinfo=UTC)
    with build_schedule_context(scheduled_execution_time=moment, repository_def=defs.get_repository_def()) as context:
        requests = list(defs.resolve_schedule_def("xgb_training_schedule").evaluate_tick(context).run_requests or [])
    assert all(isinstance(r, RunRequest) for r in requests)
    assert sorted(str(r.partition_key) for r in requests) == ["alts", "majors", "memes"]
    assert len({r.run_key for r in requests}) == 3


def test_windows_are_bounded_run_config_with_documented_defaults() -> None:
    assert (FeaturesConfig().window_days, FeaturesConfig().horizon) == (90, 4)
    assert RegimeModelConfig().window_days == 60
    assert (XgbModelsConfig().window_days, XgbModelsConfig().expiry_hours) == (60, 24)
