"""Run lanes: validation runs wait inside their call's window, so market-data runs and backfills
must never take every run slot of the instance templates in ``deploy/``."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance

from orchestration.jobs import LANE_TAG
from tests.assets.conftest import sim_definitions

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_every_job_runs_in_a_lane(tmp_path: Path) -> None:
    defs, _ = sim_definitions(tmp_path)
    lanes = {job.name: (job.tags or {}).get(LANE_TAG) for job in defs.get_repository_def().get_all_jobs()
             if not job.name.startswith("__")}
    assert lanes["validate_calls_job"] == "social" and lanes["publish_signals_job"] == "social"
    market = {name for name, lane in lanes.items() if lane == "market"}
    assert {"candles_1h_job", "candles_1m_job", "markets_job", "derivatives_job", "coingecko_job",
            "candles_1m_retention_job"} <= market
    assert set(lanes.values()) == {"social", "market", "signals"}, lanes
    # market-signal runs: one per sensor tick at most, seconds long, not capped, ahead of market data
    signals = defs.resolve_job_def("market_signals_job")
    assert lanes["market_signals_job"] == "signals" and signals.tags["dagster/priority"] == "5"
    assert signals.executor_def.name == "in_process"
    validate = defs.resolve_job_def("validate_calls_job")
    assert validate.tags["dagster/priority"] == "10"
    assert validate.executor_def.name == "in_process"  # no step subprocess start-up inside a call's latency


@pytest.mark.parametrize("template", ["dagster.local.yaml", "dagster.postgres.yaml"])
def test_market_runs_leave_slots_for_validation(template: str) -> None:
    config = yaml.safe_load((DEPLOY / template).read_text())
    runs = config["concurrency"]["runs"]
    capped = {limit["key"]: limit["limit"] for limit in runs["tag_concurrency_limits"]}
    market_at_most = capped["dagster/backfill"] + next(
        limit["limit"] for limit in runs["tag_concurrency_limits"] if limit.get("value") == "market")
    assert runs["max_concurrent_runs"] - market_at_most >= 8  # a call per 5-s tick for 40 s of a 60-s window
    interval = (config.get("run_queue") or config["run_coordinator"]["config"])["dequeue_interval_seconds"]
    assert interval == 1


def test_the_local_template_loads_as_an_instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "dagster.yaml").write_text((DEPLOY / "dagster.local.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with DagsterInstance.get() as instance:
        assert instance.run_coordinator.dequeue_interval_seconds == 1  # type: ignore[attr-defined]
        queue = instance.get_concurrency_config().run_queue_config
        assert queue is not None and queue.max_concurrent_runs == 16
