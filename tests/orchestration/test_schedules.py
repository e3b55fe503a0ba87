"""Schedules request the right partitions at a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from dagster import RunRequest, build_schedule_context

from tests.assets.conftest import sim_definitions


@pytest.mark.parametrize(
    ("schedule", "moment", "expected_days"),
    [
        ("candles_1h_schedule", datetime(2024, 3, 12, 14, 2, tzinfo=UTC), ["2024-03-12"]),
        ("candles_1h_schedule", datetime(2024, 3, 12, 0, 2, tzinfo=UTC), ["2024-03-11", "2024-03-12"]),
        ("candles_1h_schedule", datetime(2024, 3, 12, 1, 2, tzinfo=UTC), ["2024-03-11", "2024-03-12"]),
        ("candles_1h_schedule", datetime(2024, 3, 12, 2, 2, tzinfo=UTC), ["2024-03-12"]),
        ("candles_1m_schedule", datetime(2024, 3, 12, 0, 5, tzinfo=UTC), ["2024-03-11", "2024-03-12"]),
        ("candles_1m_schedule", datetime(2024, 3, 12, 0, 20, tzinfo=UTC), ["2024-03-12"]),
    ],
)
def test_candle_schedules_request_todays_partitions(tmp_path: Path, schedule: str, moment: datetime,
                                                    expected_days: list[str]) -> None:
    defs, _ = sim_definitions(tmp_path, exchanges=("sim", "sim_b"))
    schedule_def = defs.resolve_schedule_def(schedule)
    with build_schedule_context(scheduled_execution_time=moment,
                                repository_def=defs.get_repository_def()) as context:
        requests = list(schedule_def.evaluate_tick(context).run_requests or [])
    assert all(isinstance(r, RunRequest) for r in requests)
    keys = sorted(str(r.partition_key) for r in requests)
    assert keys == sorted(f"{day}|{exchange}" for day in expected_days for exchange in ("sim", "sim_b"))
    assert len({r.run_key for r in requests}) == len(requests)


@pytest.mark.parametrize(
    ("schedule", "cron", "job"),
    [
        ("candles_1h_schedule", "2 * * * *", "candles_1h_job"),
        ("candles_1m_schedule", "*/5 * * * *", "candles_1m_job"),
        ("coingecko_schedule", "*/30 * * * *", "coingecko_job"),
        ("markets_schedule", "0 * * * *", "markets_job"),
        ("derivatives_schedule", "1 * * * *", "derivatives_job"),
        ("candles_1m_retention_schedule", "30 3 * * 0", "candles_1m_retention_job"),
    ],
)
def test_schedule_cadence(tmp_path: Path, schedule: str, cron: str, job: str) -> None:
    defs, _ = sim_definitions(tmp_path)
    schedule_def = defs.resolve_schedule_def(schedule)
    assert schedule_def.cron_schedule == cron
    assert schedule_def.job_name == job
    assert schedule_def.execution_timezone == "UTC"
