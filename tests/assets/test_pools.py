"""The per-exchange concurrency pool on real SQLite Dagster instances: a bare ``DAGSTER_HOME``
(no ``dagster.yaml``) and one made from ``deploy/dagster.local.yaml``.

Order is proved by events and by the pool's rows, never by timing; every thread is joined with
a deadline and asserted finished.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance, job, op

from assets.pools import (
    ProcessIdentity,
    current_process,
    exchange_slot,
    parse_claimant,
    pool_name,
    process_alive,
    stale_claims,
)
from tests.assets.conftest import sim_definitions
from tests.assets.pool_processes import (
    DEADLINE_S,
    RecordingLog,
    Worker,
    claims,
    join_all,
    start_slot_process,
)
from tests.support.waiting import wait_until

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
pytestmark = pytest.mark.timeout(300)  # a pool that never frees must fail the test, not hang the suite


def make_home(tmp_path: Path, kind: str) -> Path:
    home = tmp_path / f"dagster-{kind}"
    home.mkdir()
    if kind == "template":
        shutil.copy(DEPLOY / "dagster.local.yaml", home / "dagster.yaml")
    return home


@pytest.fixture
def bare_home(tmp_path: Path) -> Path:
    return make_home(tmp_path, "bare")


@pytest.fixture
def bare(bare_home: Path) -> Iterator[DagsterInstance]:
    with DagsterInstance.from_config(str(bare_home)) as instance:
        assert instance.event_log_storage.supports_global_concurrency_limits
        yield instance


def enter_and_leave(instance: DagsterInstance, exchange: str, run_id: str, log: RecordingLog | None = None,
                    **options: float) -> Worker:
    """A started thread that takes a slot of ``exchange`` and gives it back at once."""
    worker = Worker(run_id, lambda: _enter_and_leave(instance, exchange, run_id, log, options))
    worker.start()
    return worker


def _enter_and_leave(instance: DagsterInstance, exchange: str, run_id: str, log: RecordingLog | None,
                     options: dict[str, float]) -> None:
    with exchange_slot(instance, exchange=exchange, run_id=run_id, step_key="step", poll_s=0.02, log=log, **options):
        pass


def test_a_second_step_waits_for_the_exchange_slot_and_another_exchange_does_not(bare: DagsterInstance) -> None:
    events: list[str] = []
    a_inside, release_a, okx_done = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with exchange_slot(bare, exchange="binance", run_id="run-a", step_key="candles_1h", poll_s=0.02):
            events.append("a-start")
            a_inside.set()
            assert release_a.wait(DEADLINE_S), "the test never released run-a"
            events.append("a-end")

    def second() -> None:
        with exchange_slot(bare, exchange="binance", run_id="run-b", step_key="candles_1h", poll_s=0.02):
            events.append("b-start")

    def other_exchange() -> None:
        with exchange_slot(bare, exchange="okx", run_id="run-c", step_key="candles_1h", poll_s=0.02):
            events.append("okx")
        okx_done.set()

    a, b, c = Worker("a", first), Worker("b", second), Worker("okx", other_exchange)
    a.start()
    assert a_inside.wait(DEADLINE_S), "run-a never got the binance slot"
    b.start()
    c.start()
    assert okx_done.wait(DEADLINE_S), "okx waited for binance's slot"
    wait_until(lambda: "run-b" in {run for run, _ in claims(bare, "binance")[1]}, timeout_s=DEADLINE_S,
               message="run-b never queued for the binance slot")
    held, _ = claims(bare, "binance")
    assert {run for run, _ in held} == {"run-a"} and "b-start" not in events
    release_a.set()
    join_all(a, b, c)
    assert events == ["a-start", "okx", "a-end", "b-start"]
    info = bare.event_log_storage.get_concurrency_info(pool_name("binance"))
    assert info.slot_count == 1 and not info.claimed_slots and not info.pending_steps


def test_a_failing_block_frees_its_slot(bare: DagsterInstance) -> None:
    with pytest.raises(RuntimeError), exchange_slot(bare, exchange="bybit", run_id="r", step_key="s"):
        raise RuntimeError("exchange down")
    assert claims(bare, "bybit") == (set(), set())


@pytest.mark.parametrize(("kind", "source", "from_default"), [
    ("bare", "Signalworks' default: one step per exchange", False),
    ("template", "the instance's concurrency.pools.default_limit", True),
])
def test_a_pool_without_a_limit_gets_one_slot_once_and_the_run_log_says_so(
        tmp_path: Path, kind: str, source: str, from_default: bool) -> None:
    log = RecordingLog()
    with DagsterInstance.from_config(str(make_home(tmp_path, kind))) as instance:
        join_all(enter_and_leave(instance, "sim", "run-1", log))
        join_all(enter_and_leave(instance, "sim", "run-2", log))
        limits = {limit.name: limit for limit in instance.event_log_storage.get_pool_limits()}
    [line] = log.matching("pool exchange:sim had no limit")
    assert f"set it to 1 ({source})" in line
    assert "`dagster instance concurrency set exchange:sim <slots>`" in line
    assert limits[pool_name("sim")].limit == 1 and limits[pool_name("sim")].from_default is from_default


@pytest.mark.parametrize("kind", ["bare", "template"])
def test_a_limit_set_by_the_operator_is_never_changed(tmp_path: Path, kind: str) -> None:
    log = RecordingLog()
    with DagsterInstance.from_config(str(make_home(tmp_path, kind))) as instance:
        instance.event_log_storage.set_concurrency_slots(pool_name("binance"), 2)
        first_inside, release = threading.Event(), threading.Event()

        def hold() -> None:
            with exchange_slot(instance, exchange="binance", run_id="run-1", step_key="s", poll_s=0.02, log=log):
                first_inside.set()
                assert release.wait(DEADLINE_S), "the test never released run-1"

        holder = Worker("holder", hold)
        holder.start()
        assert first_inside.wait(DEADLINE_S), "run-1 never got a slot"
        join_all(enter_and_leave(instance, "binance", "run-2", log))  # the second slot, while run-1 holds one
        release.set()
        join_all(holder)
        [limit] = [lim for lim in instance.event_log_storage.get_pool_limits() if lim.name == pool_name("binance")]
    assert limit.limit == 2 and not limit.from_default
    assert not log.matching("pool exchange:binance had no limit") and not log.matching("waiting")


def test_a_waiting_step_reports_the_pool_the_wait_the_holder_and_the_command(bare: DagsterInstance) -> None:
    log = RecordingLog()
    with exchange_slot(bare, exchange="sim", run_id="run-holder", step_key="markets"):
        waiter = enter_and_leave(bare, "sim", "run-waiter", log, report_every_s=0.05)
        lines = log.wait_for("waiting", 3)
    join_all(waiter)
    holder = current_process().claimant("markets", "sim")
    for line in lines:
        assert "for a slot of pool exchange:sim (limit 1, 1 held)" in line
        assert f"held by {holder} (run run-holder)" in line
        assert line.endswith("change the limit with `dagster instance concurrency set exchange:sim <slots>`")
    assert claims(bare, "sim") == (set(), set())


def test_an_interrupt_while_waiting_withdraws_the_pending_claim(bare: DagsterInstance) -> None:
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with exchange_slot(bare, exchange="binance", run_id="run-holder", step_key="s", poll_s=0.02):
            inside.set()
            assert release.wait(DEADLINE_S), "the test never released the holder"

    def interrupt_once_queued() -> None:
        wait_until(lambda: "run-interrupted" in {run for run, _ in claims(bare, "binance")[1]},
                   timeout_s=DEADLINE_S, message="the main thread never queued for the slot")
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # type: ignore[arg-type]

    holder = Worker("holder", hold)
    holder.start()
    assert inside.wait(DEADLINE_S), "the holder never got the slot"
    interrupter = Worker("interrupter", interrupt_once_queued)
    interrupter.start()
    with pytest.raises(KeyboardInterrupt), \
            exchange_slot(bare, exchange="binance", run_id="run-interrupted", step_key="s", poll_s=0.02):
        pytest.fail("entered a pool whose only slot is held")
    join_all(interrupter)
    held, pending = claims(bare, "binance")
    assert {run for run, _ in held} == {"run-holder"} and not pending
    release.set()
    join_all(holder, enter_and_leave(bare, "binance", "run-next"))
    assert claims(bare, "binance") == (set(), set())


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_waiting_withdraws_the_pending_claim_of_a_plain_process(
        bare_home: Path, bare: DagsterInstance, signum: int) -> None:
    with exchange_slot(bare, exchange="binance", run_id="run-holder", step_key="s"):
        child = start_slot_process(bare_home, "binance", "run-signalled")
        try:
            wait_until(lambda: "run-signalled" in {run for run, _ in claims(bare, "binance")[1]},
                       timeout_s=DEADLINE_S, message="the child never queued for the slot")
            child.send_signal(signum)
            child.wait(timeout=DEADLINE_S)
        finally:
            child.kill()
            _, stderr = child.communicate(timeout=DEADLINE_S)
        assert child.returncode != 0, stderr
        if signum == signal.SIGTERM:
            assert child.returncode == 128 + signal.SIGTERM, stderr
        held, pending = claims(bare, "binance")
        assert {run for run, _ in held} == {"run-holder"} and not pending, stderr
    assert claims(bare, "binance") == (set(), set())


def test_the_slot_of_a_killed_holder_goes_to_the_next_step(bare_home: Path, bare: DagsterInstance) -> None:
    child = start_slot_process(bare_home, "binance", "run-killed")
    try:
        wait_until(lambda: "run-killed" in {run for run, _ in claims(bare, "binance")[0]},
                   timeout_s=DEADLINE_S, message="the child never took the slot")
        child.kill()
    finally:
        child.kill()
        child.communicate(timeout=DEADLINE_S)
    log = RecordingLog()
    join_all(enter_and_leave(bare, "binance", "run-next", log))
    [freed] = log.matching("freed the claim of child[binance]")
    assert f"its process (pid {child.pid} on " in freed and freed.endswith("is gone")
    assert claims(bare, "binance") == (set(), set())


def test_a_killed_waiter_never_takes_the_slot_from_the_next_step(bare_home: Path, bare: DagsterInstance) -> None:
    with exchange_slot(bare, exchange="binance", run_id="run-holder", step_key="s"):
        child = start_slot_process(bare_home, "binance", "run-dead-waiter")
        try:
            wait_until(lambda: "run-dead-waiter" in {run for run, _ in claims(bare, "binance")[1]},
                       timeout_s=DEADLINE_S, message="the child never queued for the slot")
            child.kill()
        finally:
            child.kill()
            child.communicate(timeout=DEADLINE_S)
    # Dagster hands the freed slot to the oldest request: the dead waiter's
    [request] = bare.event_log_storage.get_concurrency_info(pool_name("binance")).pending_steps
    assert request.run_id == "run-dead-waiter" and request.assigned_timestamp is not None
    log = RecordingLog()
    join_all(enter_and_leave(bare, "binance", "run-next", log))
    assert len(log.matching("freed the claim of child[binance]")) == 1
    assert claims(bare, "binance") == (set(), set())


@op
def _noop() -> None:
    pass


@job
def _a_run() -> None:
    _noop()


def test_the_claim_of_a_finished_run_is_freed_after_the_grace_period(bare: DagsterInstance) -> None:
    pool = pool_name("binance")
    run = bare.create_run_for_job(job_def=_a_run)
    elsewhere = ProcessIdentity(pid=1, host="another-machine").claimant("candles_1h", "binance")
    bare.event_log_storage.set_concurrency_slots(pool, 1)
    assert bare.event_log_storage.claim_concurrency_slot(pool, run.run_id, elsewhere).is_claimed
    assert stale_claims(bare, pool, grace_s=0) == []  # a run in progress on a machine we cannot see into
    bare.report_run_failed(run)
    assert stale_claims(bare, pool, grace_s=3600) == []
    [stale] = stale_claims(bare, pool, grace_s=0)
    assert (stale.run_id, stale.claimant) == (run.run_id, elsewhere) and "its run ended (FAILURE)" in stale.reason
    log = RecordingLog()
    join_all(enter_and_leave(bare, "binance", "run-next", log, grace_s=0))
    assert len(log.matching(f"freed the claim of {elsewhere}")) == 1
    assert claims(bare, "binance") == (set(), set())


def test_a_claim_names_its_process_and_a_gone_process_is_told_apart() -> None:
    me = current_process()
    assert parse_claimant(me.claimant("candles_1h", "sim")) == ("candles_1h[sim]", me)
    assert parse_claimant("candles_1h[sim]") == ("candles_1h[sim]", None)
    assert process_alive(me) is True
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                           text=True, check=True)
    assert process_alive(dataclasses.replace(me, pid=int(child.stdout))) is False
    assert process_alive(dataclasses.replace(me, host="another-machine")) is None
    if me.boot:  # Linux: a pid reused by a later process is not the claimant
        assert process_alive(dataclasses.replace(me, start=str(int(me.start) + 1))) is False
        assert process_alive(dataclasses.replace(me, pid_ns="1")) is None
    assert me.pid == os.getpid()


def test_asset_runs_on_a_bare_instance_use_and_release_the_pool(tmp_path: Path, bare: DagsterInstance) -> None:
    defs, _ = sim_definitions(tmp_path)
    markets = defs.resolve_job_def("markets_job").execute_in_process(instance=bare)
    assert markets.success
    assert defs.resolve_job_def("candles_1h_job").execute_in_process(
        instance=bare, partition_key="2024-03-11|sim").success
    messages = [event.message or "" for event in bare.all_logs(markets.run_id)]
    assert any(m.startswith("pool exchange:sim had no limit: set it to 1") for m in messages), messages
    info = bare.event_log_storage.get_concurrency_info(pool_name("sim"))
    assert info.slot_count == 1 and not info.claimed_slots and not info.pending_steps
