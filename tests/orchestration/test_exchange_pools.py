"""Exchange pools as a Dagster user meets them: ``dagster asset materialize`` against this code
location in a bare ``DAGSTER_HOME`` (no ``dagster.yaml``), steps killed or interrupted as
subprocesses, and the deploy templates loaded as real instances (SQLite and PostgreSQL).

Every wait is on a condition (the pool's rows, the run log) with a deadline.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from dagster import AssetKey, DagsterInstance, DagsterRunStatus
from sqlalchemy.engine import make_url

from assets.pools import current_process, exchange_slot, grace_period, pool_name
from tests.assets.pool_processes import (
    DEADLINE_S,
    Worker,
    claims,
    join_all,
    start_slot_process,
)
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CLI_TIMEOUT_S = 300
#: The simulated exchange's clock, passed as run config so the runs are the same on any day.
FROZEN_CLOCK = json.dumps({"resources": {"exchanges": {"config": {"frozen_clock": "2024-03-12T09:30:00+00:00"}}}})
PARTITION = "2024-03-11|sim"

pytestmark = pytest.mark.timeout(900)  # a pool that never frees must fail the test, not hang the suite


def bare_home(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A ``DAGSTER_HOME`` without ``dagster.yaml`` and the environment of a CLI run against it."""
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "SIGNALWORKS_HOME": str(tmp_path / "home"),
           "SIGNALWORKS_EXCHANGES": "sim", "SIGNALWORKS_CANDLES_1H_SYMBOLS": "3", "DAGSTER_DISABLE_TELEMETRY": "1",
           "PYTHONPATH": str(ROOT), "OMP_WAIT_POLICY": "PASSIVE"}
    env.pop("SIGNALWORKS_DATABASE_URL", None)
    return dagster_home, env


def materialize(*args: str) -> list[str]:
    return [sys.executable, "-m", "dagster", "asset", "materialize", *args]


def signalworks(*selection: str) -> list[str]:
    return materialize("-m", "orchestration.definitions", "--config-json", FROZEN_CLOCK, "--select", *selection)


def run_cli(command: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(command[3:6])} exited {done.returncode}:\n{output[-4000:]}"
    return output


def start_cli(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A CLI run in its own process group, as a terminal runs it (Ctrl-C reaches the whole group)."""
    with log.open("wb") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)


def alive_and(process: subprocess.Popen[bytes], log: Path, condition: Callable[[], bool]) -> Callable[[], bool]:
    """``condition``, failing at once (with the process's output) if ``process`` has exited."""
    def check() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the CLI run exited {process.returncode} early:\n{log.read_text()[-4000:]}")
        return condition()
    return check


def run_log(instance: DagsterInstance, run_id: str) -> list[str]:
    return [event.user_message for event in instance.all_logs(run_id)]


@pytest.mark.slow
def test_a_bare_dagster_home_materialises_markets_then_candles_1h_with_the_cli(tmp_path: Path) -> None:
    dagster_home, env = bare_home(tmp_path)
    markets = run_cli(signalworks("markets"), env)
    assert "pool exchange:sim had no limit: set it to 1 (Signalworks' default: one step per exchange)" in markets
    candles = run_cli([*signalworks("candles_1h"), "--partition", PARTITION], env)
    assert "had no limit" not in candles
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = instance.get_runs()
        assert [run.status for run in runs] == [DagsterRunStatus.SUCCESS] * 2
        materialization = instance.get_latest_materialization_event(AssetKey("candles_1h"))
        assert materialization is not None and materialization.dagster_event.partition == PARTITION  # type: ignore[union-attr]
        [limit] = instance.event_log_storage.get_pool_limits()
        assert (limit.name, limit.limit) == (pool_name("sim"), 1)
        assert claims(instance, "sim") == (set(), set())


def test_a_limit_the_operator_set_with_the_cli_stays(tmp_path: Path) -> None:
    dagster_home, env = bare_home(tmp_path)
    run_cli([sys.executable, "-m", "dagster", "instance", "concurrency", "set", pool_name("sim"), "2"], env)
    assert "had no limit" not in run_cli(signalworks("markets"), env)
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        [limit] = instance.event_log_storage.get_pool_limits()
        assert (limit.name, limit.limit, limit.from_default) == (pool_name("sim"), 2, False)


@pytest.mark.slow
def test_after_the_step_holding_the_slot_is_killed_the_next_run_proceeds(tmp_path: Path) -> None:
    dagster_home, env = bare_home(tmp_path)
    # the storage is created here, before the CLI starts: two processes creating a fresh SQLite
    # instance at once can both stamp its schema version (a Dagster race, not the pool's)
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        holder = start_cli(materialize("-m", "tests.orchestration.pool_holder_location", "--select",
                                       "exchange_slot_holder"), env, tmp_path / "holder.log")
        try:
            wait_until(alive_and(holder, tmp_path / "holder.log", lambda: bool(claims(instance, "sim")[0])),
                       timeout_s=CLI_TIMEOUT_S, message="the holder never took the slot")
            [(run_id, claimant)] = claims(instance, "sim")[0]
            os.killpg(holder.pid, signal.SIGKILL)  # the run worker and its step process
        finally:
            stop_group(holder)
        assert instance.get_run_by_id(run_id).status == DagsterRunStatus.STARTED  # type: ignore[union-attr]
        markets = run_cli(signalworks("markets"), env)
        assert f"freed the claim of {claimant} on pool exchange:sim (run {run_id}): its process" in markets
        assert claims(instance, "sim") == (set(), set())


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_step_interrupted_while_it_waits_leaves_no_pending_claim(tmp_path: Path, signum: int) -> None:
    dagster_home, env = bare_home(tmp_path)
    log = tmp_path / "waiter.log"
    with DagsterInstance.from_config(str(dagster_home)) as instance, \
            exchange_slot(instance, exchange="sim", run_id="held-by-the-test", step_key="test"):
        waiter = start_cli(signalworks("markets"), env, log)
        try:
            wait_until(alive_and(waiter, log, lambda: bool(claims(instance, "sim")[1])), timeout_s=CLI_TIMEOUT_S,
                       message="the markets step never queued for the slot")
            [(run_id, _)] = claims(instance, "sim")[1]
            wait_until(lambda: any(line.startswith("waiting") for line in run_log(instance, run_id)),
                       timeout_s=CLI_TIMEOUT_S, message="the waiting step never said so in its run log")
            os.killpg(waiter.pid, signum)
            waiter.wait(timeout=CLI_TIMEOUT_S)
        finally:
            stop_group(waiter)
        assert waiter.returncode != 0, log.read_text()[-3000:]
        held, pending = claims(instance, "sim")
        assert held == {("held-by-the-test", current_process().claimant("test", "sim"))} and not pending
        assert instance.get_run_by_id(run_id).is_finished  # type: ignore[union-attr]
        waiting = [line for line in run_log(instance, run_id) if line.startswith("waiting")]
        assert waiting and all("held by test[sim] pid" in line and "dagster instance concurrency set exchange:sim"
                               in line for line in waiting)


def test_the_local_template_loads_with_run_monitoring_and_one_slot_per_exchange(tmp_path: Path) -> None:
    shutil.copy(DEPLOY / "dagster.local.yaml", tmp_path / "dagster.yaml")
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.run_monitoring_enabled and "MONITORING" in instance.get_required_daemon_types()
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] == 60
        assert grace_period(instance) == 60
        assert instance.global_op_concurrency_default_limit == 1
        assert instance.event_log_storage.supports_global_concurrency_limits


def postgres_home(home: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch, *, pool_default: bool = True) -> Path:
    """``home`` with the PostgreSQL template and its variables set (the test server's);
    without ``pool_default``, the template less its ``concurrency.pools`` block."""
    url = make_url(postgres_url)
    for variable, value in {"DAGSTER_PG_HOST": url.host, "DAGSTER_PG_USER": url.username,
                            "DAGSTER_PG_PASSWORD": url.password or "", "DAGSTER_PG_DB": url.database,
                            "DAGSTER_PG_PORT": url.port}.items():
        monkeypatch.setenv(variable, str(value))
    config = (DEPLOY / "dagster.postgres.yaml").read_text()
    if not pool_default:
        parsed = yaml.safe_load(config)
        del parsed["concurrency"]["pools"]
        config = yaml.safe_dump(parsed)
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text(config)
    return home


@pytest.mark.postgres
def test_the_postgres_template_loads_and_its_pools_behave(tmp_path: Path, postgres_url: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    with DagsterInstance.from_config(str(postgres_home(tmp_path, postgres_url, monkeypatch))) as instance:
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert instance.run_monitoring_enabled and grace_period(instance) == 60
        instance.event_log_storage.set_concurrency_slots(pool_name("binance"), 2)
        with exchange_slot(instance, exchange="binance", run_id="run-1", step_key="s"), \
                exchange_slot(instance, exchange="binance", run_id="run-2", step_key="s"), \
                exchange_slot(instance, exchange="okx", run_id="run-3", step_key="s"):
            pass
        limits = {limit.name: (limit.limit, limit.from_default) for limit in instance.event_log_storage.get_pool_limits()}
        assert limits == {pool_name("binance"): (2, False), pool_name("okx"): (1, True)}
        holder = start_slot_process(tmp_path, "okx", "run-killed")
        try:
            wait_until(lambda: bool(claims(instance, "okx")[0]), timeout_s=CLI_TIMEOUT_S,
                       message="the child never took the okx slot")
            holder.kill()
        finally:
            holder.kill()
            holder.communicate(timeout=60)
        with exchange_slot(instance, exchange="okx", run_id="run-next", step_key="s", poll_s=0.05):
            assert {run for run, _ in claims(instance, "okx")[0]} == {"run-next"}
        assert claims(instance, "okx") == (set(), set())


@pytest.mark.postgres
@pytest.mark.parametrize("pool_default", [True, False], ids=["template", "no-pool-default"])
def test_steps_that_first_use_a_pool_at_the_same_moment_all_proceed_on_postgres(
        tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch, pool_default: bool) -> None:
    steps = 8
    with DagsterInstance.from_config(str(postgres_home(tmp_path, postgres_url, monkeypatch,
                                                       pool_default=pool_default))) as instance:
        together = threading.Barrier(steps)
        inside: list[str] = []

        def step(run_id: str) -> None:
            together.wait(timeout=DEADLINE_S)
            with exchange_slot(instance, exchange="binance", run_id=run_id, step_key="candles_1h", poll_s=0.02):
                inside.append(run_id)

        workers = [Worker(f"run-{n}", lambda n=n: step(f"run-{n}")) for n in range(steps)]
        for worker in workers:
            worker.start()
        join_all(*workers)
        assert sorted(inside) == sorted(f"run-{n}" for n in range(steps))
        [limit] = instance.event_log_storage.get_pool_limits()
        assert (limit.name, limit.limit) == (pool_name("binance"), 1)
        assert claims(instance, "binance") == (set(), set())
