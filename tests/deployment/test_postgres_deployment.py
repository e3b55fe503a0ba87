"""The PostgreSQL deployment the README documents, brought up as deployed and driven through the
webserver's GraphQL API.

One throwaway PostgreSQL server holds two databases: Dagster's storage (``DAGSTER_PG_DB``) and the
warehouse (``SIGNALWORKS_DATABASE_URL``). ``$DAGSTER_HOME/dagster.yaml`` is
``deploy/dagster.postgres.yaml`` copied unchanged: every setting comes from the environment. The
code location is served by ``dagster api grpc`` as its own process; ``dagster-webserver`` and
``dagster-daemon`` run as theirs, on a workspace that points at that server. Runs are queued by
the webserver and started by the daemon (QueuedRunCoordinator), as in production.

Every wait is on a condition with a deadline.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
import yaml
from sqlalchemy.engine import make_url

from resources.warehouse.store import Warehouse
from tests.support.postgres import free_port
from tests.support.waiting import wait_until as _wait_until

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LOCATION = "signalworks"
START_S = 240.0
RUN_S = 300.0
#: The schedule is evaluated at this instant, and the simulated exchange's clock frozen there.
TICK = datetime(2024, 3, 12, 9, 2, tzinfo=UTC)
SCHEDULED_PARTITION = "2024-03-12|sim"
SYMBOLS = 3
#: Each run executes its steps in the run's own process (as ``signalworks demo`` does): the run is
#: still started by the daemon through the code server, and a step subprocess per step would only
#: add start-up time here. The executor of production runs is the jobs' own.
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(900)]

LOCATIONS = """query { workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } ... on PythonError { message } } }"""
LAUNCH = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) { __typename
  ... on LaunchRunSuccess { run { runId status } } ... on PythonError { message } ... on RunConfigValidationInvalid {
  errors { message } } ... on InvalidSubsetError { message } } }"""
RUN = """query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }"""
EVENTS = """query($id: ID!) { logsForRun(runId: $id) { __typename ... on EventConnection { events {
  __typename ... on MessageEvent { message } } } } }"""
DRY_RUN = """mutation($selector: ScheduleSelector!, $ts: Float) { scheduleDryRun(selectorData: $selector, timestamp: $ts) {
  __typename ... on DryRunInstigationTick { evaluationResult { skipReason error { message }
  runRequests { runKey jobName runConfigYaml tags { key value } } } } ... on PythonError { message } } }"""


#: The webserver is asked through GraphQL: five times a second is enough and costs it little.
wait_until = functools.partial(_wait_until, every_s=0.2)

def signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    """Send ``sig`` to the process group ``process`` leads (it and the run processes it started)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)


@dataclass
class Deployment:
    home: Path
    env: dict[str, str]
    warehouse_url: str
    grpc_port: int
    web_port: int
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def log(self, name: str) -> Path:
        return self.home / f"{name}.log"

    def start(self, name: str, args: list[str]) -> None:
        with self.log(name).open("ab") as log:
            self.processes[name] = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=log,
                                                    stderr=subprocess.STDOUT, start_new_session=True)

    def start_code_server(self) -> None:
        """Start ``dagster api grpc`` and wait until it serves (its "Started ... in process <pid>")."""
        self.start("code-server", [str(BIN / "dagster"), "api", "grpc", "-h", "127.0.0.1", "-p", str(self.grpc_port),
                                   "-m", "orchestration.definitions", "-a", "defs", "--location-name", LOCATION])
        process = self.processes["code-server"]

        def serving() -> bool:
            assert process.poll() is None, f"the code server exited:\n{self.tail('code-server')}"
            return any("Started Dagster code server" in line and f"in process {process.pid}" in line
                       for line in self.log("code-server").read_text(errors="replace").splitlines())

        wait_until(serving, timeout_s=START_S, message=lambda: f"the code server never served:\n{self.tail('code-server')}")

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.processes.pop(name)
        signal_group(process, sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            signal_group(process, signal.SIGKILL)
            process.wait()

    def stop_all(self) -> None:
        for process in self.processes.values():
            signal_group(process, signal.SIGTERM)
        for name in list(self.processes):
            self.stop(name)

    def tail(self, name: str) -> str:
        return self.log(name).read_text(errors="replace")[-3000:] if self.log(name).exists() else "(no log)"

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        reply = httpx.post(f"http://127.0.0.1:{self.web_port}/graphql",
                           json={"query": query, "variables": variables}, timeout=120).json()
        assert "errors" not in reply, reply
        return reply["data"]

    def location_loaded(self) -> bool:
        for name, process in self.processes.items():
            assert process.poll() is None, f"{name} exited with {process.returncode}:\n{self.tail(name)}"
        try:
            workspace = self.graphql(LOCATIONS)["workspaceOrError"]
        except (httpx.HTTPError, ValueError):
            return False
        assert workspace["__typename"] == "Workspace", workspace
        entries = {entry["name"]: entry for entry in workspace["locationEntries"]}
        error = (entries.get(LOCATION, {}).get("locationOrLoadError") or {})
        assert error.get("__typename") != "PythonError", error.get("message")
        return entries.get(LOCATION, {}).get("loadStatus") == "LOADED"

    def launch(self, job: str, *, tags: dict[str, str], frozen_at: datetime = TICK,
               run_config: dict[str, Any] | None = None) -> str:
        config = {**IN_PROCESS, **(run_config or {}),
                  "resources": {"exchanges": {"config": {"frozen_clock": frozen_at.isoformat()}}}}
        params = {"selector": {"repositoryLocationName": LOCATION, "repositoryName": "__repository__",
                               "jobName": job},
                  "runConfigData": config,
                  "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]}}
        result = self.graphql(LAUNCH, params=params)["launchRun"]
        assert result["__typename"] == "LaunchRunSuccess", result
        return str(result["run"]["runId"])

    def status(self, run_id: str) -> str:
        return str(self.graphql(RUN, id=run_id)["runOrError"]["status"])

    def messages(self, run_id: str) -> list[str]:
        events = self.graphql(EVENTS, id=run_id)["logsForRun"]["events"]
        return [event.get("message") or "" for event in events]

    def wait_for(self, run_id: str) -> str:
        def finished() -> str | None:
            status = self.status(run_id)
            return status if status in ("SUCCESS", "FAILURE", "CANCELED") else None

        return str(wait_until(finished, timeout_s=RUN_S, message=lambda: (
            f"run {run_id} still {self.status(run_id)}; daemon log:\n{self.tail('daemon')}\n"
            f"code server log:\n{self.tail('code-server')}")))

    def run_succeeds(self, job: str, **kwargs: Any) -> str:
        run_id = self.launch(job, **kwargs)
        status = self.wait_for(run_id)
        failures = [m for m in self.messages(run_id) if "fail" in m.lower() or "error" in m.lower()]
        assert status == "SUCCESS", f"{job} {kwargs.get('tags')}: {status}\n" + "\n".join(failures[-15:])
        return run_id


def create_database(server_url: str, name: str) -> str:
    import psycopg

    admin = server_url.replace("postgresql+psycopg", "postgresql").rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="module")
def deployment(postgres_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("deployment")
    dagster_url = make_url(create_database(postgres_server, "deploy_dagster"))
    warehouse_url = create_database(postgres_server, "deploy_warehouse")
    dagster_home = root / "dagster"
    dagster_home.mkdir()
    # the instance is the template as shipped: nothing substituted, everything from the environment
    shutil.copy(ROOT / "deploy" / "dagster.postgres.yaml", dagster_home / "dagster.yaml")
    grpc_port, web_port = free_port(), free_port()
    # the README's workspace, on a free port
    workspace = yaml.safe_load((ROOT / "deploy" / "workspace.yaml").read_text())
    [entry] = workspace["load_from"]
    assert entry["grpc_server"]["location_name"] == LOCATION
    entry["grpc_server"]["port"] = grpc_port
    (root / "workspace.yaml").write_text(yaml.safe_dump(workspace))
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("SIGNALWORKS_", "DAGSTER_PG_"))}
    env.update({
        "DAGSTER_HOME": str(dagster_home),
        "DAGSTER_PG_HOST": str(dagster_url.host), "DAGSTER_PG_PORT": str(dagster_url.port),
        "DAGSTER_PG_USER": str(dagster_url.username), "DAGSTER_PG_PASSWORD": dagster_url.password or "",
        "DAGSTER_PG_DB": str(dagster_url.database),
        "SIGNALWORKS_DATABASE_URL": warehouse_url,
        "SIGNALWORKS_EXCHANGES": "sim",
        "SIGNALWORKS_CANDLES_1H_SYMBOLS": str(SYMBOLS),
        "SIGNALWORKS_HOME": str(root / "home"),
        "DAGSTER_DISABLE_TELEMETRY": "1", "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(ROOT),
    })
    deployment = Deployment(root, env, warehouse_url, grpc_port, web_port)
    try:
        deployment.start_code_server()
        deployment.start("webserver", [str(BIN / "dagster-webserver"), "-w", str(root / "workspace.yaml"),
                                       "-h", "127.0.0.1", "-p", str(web_port)])
        deployment.start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(root / "workspace.yaml")])
        wait_until(deployment.location_loaded, timeout_s=START_S,
                   message=lambda: f"the code location never loaded:\n{deployment.tail('webserver')}")
        yield deployment
    finally:
        deployment.stop_all()


def candles(warehouse: Warehouse) -> pl.DataFrame:
    return warehouse.read_candles(timeframe="1h", exchange="sim").sort(["symbol", "ts"])


def test_markets_a_partition_and_a_schedule_tick_run_as_deployed(deployment: Deployment) -> None:
    deployment.run_succeeds("markets_job", tags={})

    tick = deployment.graphql(DRY_RUN, ts=TICK.timestamp(), selector={
        "repositoryLocationName": LOCATION, "repositoryName": "__repository__",
        "scheduleName": "candles_1h_schedule"})["scheduleDryRun"]
    assert tick["__typename"] == "DryRunInstigationTick", tick
    evaluation = tick["evaluationResult"]
    assert evaluation["error"] is None and evaluation["skipReason"] is None, evaluation
    requests = evaluation["runRequests"]
    assert [{t["key"]: t["value"] for t in r["tags"]}["dagster/partition"] for r in requests] == [SCHEDULED_PARTITION]
    for request in requests:
        deployment.run_succeeds(request["jobName"] or "candles_1h_job",
                                tags={t["key"]: t["value"] for t in request["tags"]},
                                run_config=yaml.safe_load(request["runConfigYaml"]) or {})

    warehouse = Warehouse.from_url(deployment.warehouse_url)
    stored = candles(warehouse)
    # 00:00 .. 08:00 closed by 09:02, for the 3 most liquid symbols
    assert stored.get_column("symbol").n_unique() == SYMBOLS
    assert stored.height == SYMBOLS * 9, stored
    assert warehouse.read_candles(timeframe="4h", exchange="sim").height == SYMBOLS * 2  # 00:00, 04:00
    indicators = warehouse.read_indicators(timeframe="1h", exchange="sim")
    assert indicators.height == stored.height
    with warehouse.engine.connect() as connection:
        from sqlalchemy import text

        tables = set(connection.execute(text(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")).scalars())
    assert "runs" not in tables and "signalworks_alembic_version" in tables  # Dagster's storage is elsewhere

    # the same partition again: nothing changes
    deployment.run_succeeds("candles_1h_job", tags={"dagster/partition": SCHEDULED_PARTITION})
    assert candles(warehouse).equals(stored)
    assert warehouse.read_indicators(timeframe="1h", exchange="sim").sort(["symbol", "ts"]).equals(
        indicators.sort(["symbol", "ts"]))


def test_a_run_queued_while_the_code_server_is_down_waits_and_then_succeeds(deployment: Deployment) -> None:
    daemon = deployment.processes["daemon"]
    signal_group(daemon, signal.SIGSTOP)  # hold the queue: the run is queued before anyone dequeues it
    try:
        run_id = deployment.launch("markets_job", tags={})
        assert deployment.status(run_id) == "QUEUED"
        deployment.stop("code-server", signal.SIGKILL)
    finally:
        signal_group(daemon, signal.SIGCONT)
    waiting = "Run dequeue failed to reach the user code server, re-submitting the run into the queue"
    wait_until(lambda: any(waiting in m for m in deployment.messages(run_id)), timeout_s=RUN_S,
               message=lambda: f"no message about the unreachable code server: {deployment.messages(run_id)}")
    assert deployment.status(run_id) == "QUEUED"

    deployment.start_code_server()
    assert deployment.wait_for(run_id) == "SUCCESS", deployment.messages(run_id)[-15:]
