"""Runs launched through the code location carry its origin, as the UI needs to list them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml
from dagster import (
    AssetCheckKey,
    AssetKey,
    DagsterInstance,
    Definitions,
    EnvVar,
    QueuedRunCoordinator,
)

from orchestration.launcher import (
    RANGE_END_TAG,
    RANGE_START_TAG,
    code_location,
    immediate_launch_config,
    launch,
    resources_run_config,
)
from orchestration.partitions import candle_partitions
from resources.exchanges.resource import ExchangeCredentials, ExchangeResource
from resources.warehouse.resource import WarehouseResource
from resources.warehouse.store import Warehouse
from tests.assets.conftest import sim_definitions
from tests.support.dagster_ui import PROJECT_ROOT, check_statuses, ui_instance

NOW = datetime(2024, 3, 12, 9, 30, tzinfo=UTC)
RANGE = {RANGE_START_TAG: "2024-03-10|sim", RANGE_END_TAG: "2024-03-11|sim"}

JOB_RUNS_QUERY = """query($selector: PipelineSelector!) { pipelineOrError(params: $selector) {
  __typename ... on Pipeline { runs { runId } } } }"""
RUNS_QUERY = "{ runsOrError { ... on Runs { results { runId repositoryOrigin { repositoryLocationName } } } } }"


@pytest.mark.parametrize("user_config", [
    {},
    yaml.safe_load((PROJECT_ROOT / "deploy" / "dagster.local.yaml").read_text()),
    {"run_coordinator": {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator",
                         "config": {"max_concurrent_runs": 2}}},
])
def test_the_launch_instance_shares_storage_and_starts_runs_at_once(tmp_path: Path, user_config: dict) -> None:
    home, launch_home = tmp_path / "home", tmp_path / "launch"
    home.mkdir(), launch_home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(user_config))
    config = immediate_launch_config(user_config, home)
    assert config.get("concurrency", {}).get("pools") == user_config.get("concurrency", {}).get("pools")
    (launch_home / "dagster.yaml").write_text(yaml.safe_dump(config))
    with DagsterInstance.from_config(str(home)) as user, DagsterInstance.from_config(str(launch_home)) as launching:
        assert not isinstance(launching.run_coordinator, QueuedRunCoordinator)  # no daemon needed
        defs, _ = sim_definitions(tmp_path / "data")
        run = launching.create_run_for_job(defs.resolve_job_def("markets_job"))
        assert user.get_run_by_id(run.run_id) is not None  # the same runs, seen from the user's instance


def test_ephemeral_instance_runs_in_process(tmp_path: Path) -> None:
    defs, _ = sim_definitions(tmp_path)
    with DagsterInstance.ephemeral() as instance, code_location(instance, log_path=tmp_path / "log") as location:
        assert location is None
        result = launch(defs, instance, "candles_1h_job", tags={"dagster/partition": "2024-03-11|sim"})
    assert not result.success and any("materialise `markets` first" in m for m in result.failures)


def test_runs_launched_through_the_code_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The runs carry the location's origin and the caller's resource configuration (here: the
    simulated exchange's frozen clock, so the test is the same on any date)."""
    monkeypatch.delenv("SIGNALWORKS_DATABASE_URL", raising=False)
    # another DAGSTER_HOME in the environment (as `make test` exports the project's) must not matter:
    # the runs go to the storage of the instance the caller opened
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "elsewhere"))
    home = tmp_path / "home"
    defs, settings = sim_definitions(home)
    in_process = {"execution": {"config": {"in_process": {}}}}
    with ui_instance(home) as instance:
        with code_location(instance, log_path=home / "runs.log", env={"SIGNALWORKS_HOME": str(home)}) as launcher:
            assert launcher is not None
            too_early = launch(defs, instance, "candles_1h_job", run_config=in_process, tags=RANGE)
            markets = launch(defs, instance, "markets_job", run_config=in_process)
            candles = launch(defs, instance, "candles_1h_job", run_config=in_process, tags=RANGE,
                             asset_selection=[AssetKey("candles_1h")])
            runs = httpx.post(f"{launcher.url}/graphql", json={"query": RUNS_QUERY}).json()
            job_runs = httpx.post(f"{launcher.url}/graphql", json={"query": JOB_RUNS_QUERY, "variables": {"selector": {
                "repositoryLocationName": launcher.location_name, "repositoryName": "__repository__",
                "pipelineName": "candles_1h_job"}}}).json()
        assert launcher._process is None  # the webserver is stopped with the block

        assert not too_early.success and any("materialise `markets` first" in m for m in too_early.failures)
        assert markets.success and candles.success, (markets, candles)
        # what the timeline needs (a repository origin) and what a job's page lists (its runs)
        origins = {r["runId"]: r["repositoryOrigin"] for r in runs["data"]["runsOrError"]["results"]}
        for run_id in (too_early.run_id, markets.run_id, candles.run_id):
            assert origins[run_id] == {"repositoryLocationName": launcher.location_name}
        assert {r["runId"] for r in job_runs["data"]["pipelineOrError"]["runs"]} == {too_early.run_id, candles.run_id}
        run = instance.get_run_by_id(candles.run_id)
        assert run is not None and run.remote_job_origin is not None
        assert {k: run.tags[k] for k in RANGE} == RANGE
        assert run.asset_selection == {AssetKey("candles_1h")}
        assert run.run_config["resources"]["exchanges"]["config"]["frozen_clock"] == NOW.isoformat()
        statuses = check_statuses(instance, AssetCheckKey(AssetKey("candles_1h"), "unique_keys"),
                                  candle_partitions(settings))
        assert statuses == {"2024-03-10|sim": "SUCCEEDED", "2024-03-11|sim": "SUCCEEDED"}
        # the frozen clock reached the run: today's partition (2024-03-12) was never asked for
        stored = Warehouse.from_url(settings.warehouse_url).read_candles(timeframe="1h", exchange="sim")
        assert stored.get_column("ts").max() == datetime(2024, 3, 11, 23, tzinfo=UTC)


def test_resources_run_config_refers_to_secrets_by_name(tmp_path: Path) -> None:
    defs, _ = sim_definitions(tmp_path)
    defs = Definitions(resources={**defs.resources, "warehouse": WarehouseResource(url=EnvVar("SOME_URL")),
                                  "exchanges": ExchangeResource(credentials=[ExchangeCredentials(
                                      exchange="binance", api_key=EnvVar("KEY"), secret=EnvVar("SECRET"))])})
    config = resources_run_config(defs)["resources"]
    assert config["warehouse"] == {"config": {"url": {"env": "SOME_URL"}}}
    (credentials,) = config["exchanges"]["config"]["credentials"]
    assert credentials["api_key"] == {"env": "KEY"} and credentials["secret"] == {"env": "SECRET"}
