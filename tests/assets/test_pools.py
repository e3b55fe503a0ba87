"""The per-exchange concurrency pool: one step per exchange at a time, across runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, instance_for_test

from assets.pools import exchange_slot, pool_name
from tests.assets.conftest import sim_definitions


@pytest.fixture
def pooled_instance(tmp_path: Path) -> Iterator[DagsterInstance]:
    (tmp_path / "dagster").mkdir()
    with instance_for_test(temp_dir=str(tmp_path / "dagster"),
                           overrides={"concurrency": {"pools": {"default_limit": 1}}}) as instance:
        yield instance


def test_a_second_step_waits_for_the_exchange_slot(pooled_instance: DagsterInstance) -> None:
    events: list[str] = []
    holding = threading.Event()

    def first() -> None:
        with exchange_slot(pooled_instance, exchange="binance", run_id="run-a", step_key="candles_1h", poll_s=0.02):
            events.append("a-start")
            holding.set()
            time.sleep(0.4)
            events.append("a-end")

    def second() -> None:
        holding.wait()
        with exchange_slot(pooled_instance, exchange="binance", run_id="run-b", step_key="candles_1h", poll_s=0.02):
            events.append("b-start")

    def other_exchange() -> None:
        holding.wait()
        with exchange_slot(pooled_instance, exchange="okx", run_id="run-c", step_key="candles_1h", poll_s=0.02):
            events.append("okx")

    threads = [threading.Thread(target=f) for f in (first, second, other_exchange)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert events.index("okx") < events.index("a-end") < events.index("b-start")
    info = pooled_instance.event_log_storage.get_concurrency_info(pool_name("binance"))
    assert info.slot_count == 1 and not info.claimed_slots


def test_a_failing_block_frees_its_slot(pooled_instance: DagsterInstance) -> None:
    with pytest.raises(RuntimeError), exchange_slot(pooled_instance, exchange="bybit", run_id="r", step_key="s"):
        raise RuntimeError("exchange down")
    assert not pooled_instance.event_log_storage.get_concurrency_info(pool_name("bybit")).claimed_slots


def test_asset_runs_use_and_release_the_pool(tmp_path: Path, pooled_instance: DagsterInstance) -> None:
    defs, _ = sim_definitions(tmp_path)
    assert defs.resolve_job_def("markets_job").execute_in_process(instance=pooled_instance).success
    assert defs.resolve_job_def("candles_1h_job").execute_in_process(
        instance=pooled_instance, partition_key="2024-03-11|sim").success
    info = pooled_instance.event_log_storage.get_concurrency_info(pool_name("sim"))
    assert info.slot_count == 1 and not info.claimed_slots and not info.pending_steps


def test_the_instance_template_sets_a_pool_limit() -> None:
    template = yaml.safe_load((Path(__file__).resolve().parents[2] / "deploy" / "dagster.local.yaml").read_text())
    assert template["concurrency"]["pools"]["default_limit"] == 1
