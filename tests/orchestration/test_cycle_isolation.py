"""The hourly cycle with the executor its job declares (not ``execute_in_process``, which ignores
it): every step in the run's own process, and an exchange that fails fails only its own run.

The runs go through ``execute_job`` on a SQLite instance, the way a run worker executes them.
"""

from __future__ import annotations

import json
from pathlib import Path

from dagster import (
    DagsterEventType,
    DagsterInstance,
    JobDefinition,
    MultiPartitionKey,
    build_reconstructable_job,
    execute_job,
    instance_for_test,
    validate_run_config,
)

from tests.assets.conftest import sim_definitions

EXCHANGES = ("sim_a", "sim_b")
DAY = "2024-03-12"


def cycle_job(home: str) -> JobDefinition:
    """``candles_1h_job`` of two simulated venues (the reconstructor the run loads the job with)."""
    defs, _ = sim_definitions(Path(home), exchanges=EXCHANGES)
    return defs.resolve_job_def("candles_1h_job")


def markets_of(home: Path, exchanges: tuple[str, ...]) -> None:
    """The universe of ``exchanges`` only: the other venues have no tracked symbols."""
    defs, _ = sim_definitions(home, exchanges=exchanges)
    assert defs.resolve_job_def("markets_job").execute_in_process().success


def run_partition(home: Path, instance: DagsterInstance, exchange: str) -> str:
    job = build_reconstructable_job(__name__, "cycle_job", reconstructable_args=(str(home),))
    key = MultiPartitionKey({"date": DAY, "exchange": exchange})
    with execute_job(job, instance, tags={"dagster/partition": str(key)}) as result:
        return result.run_id


def events(instance: DagsterInstance, run_id: str, kind: DagsterEventType) -> list:
    return [e for e in instance.all_logs(run_id, of_type=kind) if e.dagster_event is not None]


def test_the_cycle_runs_in_process_and_a_failing_exchange_fails_only_its_own_run(tmp_path: Path) -> None:
    job = cycle_job(str(tmp_path))
    assert job.executor_def.name == "market_executor"
    markets_of(tmp_path, ("sim_a",))  # sim_b has no universe: its candles step must fail
    (tmp_path / "dagster").mkdir()
    with instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        failed_id = run_partition(tmp_path, instance, "sim_b")
        ok_id = run_partition(tmp_path, instance, "sim_a")

        failed, ok = instance.get_run_by_id(failed_id), instance.get_run_by_id(ok_id)
        assert failed is not None and ok is not None
        assert failed.is_failure and ok.is_success, (failed.status, ok.status)
        [failure] = events(instance, failed_id, DagsterEventType.STEP_FAILURE)
        assert failure.step_key == "candles_1h"
        assert "no tracked 1h symbols for sim_b" in str(failure.dagster_event.event_specific_data.error)
        assert not events(instance, failed_id, DagsterEventType.ASSET_MATERIALIZATION)

        materialised = {(e.dagster_event.asset_key.to_user_string(), e.dagster_event.partition)
                        for e in events(instance, ok_id, DagsterEventType.ASSET_MATERIALIZATION)}
        assert materialised == {(asset, f"{DAY}|sim_a") for asset in ("candles_1h", "candles_mtf", "indicators")}
        checks = {(e.dagster_event.event_specific_data.asset_key.to_user_string(),
                   e.dagster_event.event_specific_data.check_name)
                  for e in events(instance, ok_id, DagsterEventType.ASSET_CHECK_EVALUATION)}
        assert {("candles_1h", "ohlc_sanity"), ("candles_mtf", "unique_keys"),
                ("indicators", "finite_values")} <= checks

        # every step ran in the run's own process: no step worker was started
        assert not events(instance, ok_id, DagsterEventType.STEP_WORKER_STARTING)
        [run_start] = events(instance, ok_id, DagsterEventType.RUN_START)
        step_pids = {e.dagster_event.pid for e in events(instance, ok_id, DagsterEventType.STEP_START)}
        assert step_pids == {run_start.dagster_event.pid}
        assert len(events(instance, ok_id, DagsterEventType.STEP_START)) >= 5  # assets and their checks


def test_market_data_jobs_run_in_process_and_model_jobs_keep_a_process_per_step(tmp_path: Path) -> None:
    defs, _ = sim_definitions(tmp_path)
    executors = {name: defs.resolve_job_def(name).executor_def.name for name in (
        "candles_1h_job", "candles_1m_job", "markets_job", "derivatives_job", "coingecko_job",
        "candles_1m_retention_job", "xgb_training_job")}
    assert executors == {**dict.fromkeys(executors, "market_executor"),
                         "xgb_training_job": "multi_or_in_process_executor"}
    job = defs.resolve_job_def("candles_1h_job")
    chosen = {json.dumps(config): validate_run_config(job, config)["execution"]["market_executor"]
              for config in ({}, {"execution": {"config": {"in_process": {}}}},
                             {"execution": {"config": {"multiprocess": {"max_concurrent": 2}}}})}
    assert [next(iter(executor)) for executor in chosen.values()] == ["in_process", "in_process", "multiprocess"]
