"""social_events_sensor on real SQLite and PostgreSQL warehouses: commit-order-safe progress and
the start without a cursor.

The clock that times how long a missing id is awaited is a fake one the tests move; writers are
real connections (and threads) on the same database, never a stand-in for the store.
"""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, SensorDefinition, SensorResult, build_sensor_context
from sqlalchemy import Engine, insert

from orchestration.definitions import build_definitions
from orchestration.jobs import validate_calls_job
from orchestration.settings import Settings
from resources.social_resources import SimDexScreenerResource
from resources.warehouse.engine import make_engine
from resources.warehouse.resource import WarehouseResource
from resources.warehouse.schema import social_events
from resources.warehouse.social import SocialStore, _row
from sensors.event_cursor import EventCursor, WaitPolicy
from sensors.social_events import build_social_events_sensor
from streaming.events import Event

SOL_MINT = "EKpQGSJtjMFqKZ9KQanSqYXRcF8fBopzLHYxdM65zcjm"
CALLED_AT = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
POLICY = WaitPolicy(grace_s=60, max_wait_s=86_400)


class FakeClock:
    def __init__(self) -> None:
        self.now = CALLED_AT.timestamp()

    def __call__(self) -> float:
        return self.now


def record(message_id: str, *, call: bool = True, channel: str = "alpha") -> dict:
    text = f"gem on solana {SOL_MINT} pump.fun/coin/{SOL_MINT}" if call else "gm, no calls today"
    return Event.from_message(source="replay", channel=channel, message_id=message_id, author="a", text=text,
                              ts=CALLED_AT).to_record()


class Ticker:
    """Evaluates the sensor like the daemon does: each tick with the cursor the previous one left."""

    def __init__(self, url: str, clock: FakeClock, cursor: str | None = None) -> None:
        self.sensor: SensorDefinition = build_social_events_sensor(validate_calls_job(), clock=clock, wait=POLICY)
        self.resources = {"warehouse": WarehouseResource(url=url)}
        self.cursor = cursor
        self.requested: list[int] = []
        self.run_keys: list[str] = []

    def tick(self) -> list[int]:
        """The event ids this tick requested."""
        with build_sensor_context(cursor=self.cursor, resources=self.resources) as context:
            result = self.sensor(context)
        assert isinstance(result, SensorResult)
        self.cursor = result.cursor
        ids: list[int] = []
        for request in result.run_requests or []:
            ids += request.run_config["ops"]["validate_calls_op"]["config"]["event_ids"]
            self.run_keys.append(request.run_key)
        self.requested += ids
        return ids

    def awaited(self) -> list[tuple[int, int]]:
        return EventCursor.decode(self.cursor).spans() if self.cursor else []


def test_an_id_committed_after_a_higher_one_is_requested_exactly_once(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    store = SocialStore(engine)
    clock = FakeClock()
    ticker = Ticker(postgres_url, clock)
    with engine.connect() as slow_writer:
        slow = slow_writer.begin()
        (late,) = store.insert(slow_writer, [record("slow")])  # takes its id now, commits much later
        (early,) = store.append([record("fast")])  # another writer, a higher id, committed at once
        assert late < early
        assert ticker.tick() == [early]
        assert ticker.awaited() == [(late, late)]
        clock.now += 3600  # far beyond the grace: the slow transaction is still open, so keep waiting
        assert ticker.tick() == []
        assert ticker.awaited() == [(late, late)]
        slow.commit()
    assert ticker.tick() == [late]
    clock.now += 3600
    for _ in range(3):
        assert ticker.tick() == []
    assert sorted(ticker.requested) == [late, early]
    assert ticker.cursor == str(early)  # nothing awaited any more
    assert len(set(ticker.run_keys)) == len(ticker.run_keys) == 2


def test_burned_and_rolled_back_ids_are_given_up_once_no_transaction_can_commit_them(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    store = SocialStore(engine)
    clock = FakeClock()
    ticker = Ticker(postgres_url, clock)
    with engine.connect() as older:  # a transaction that began before the gap appeared
        holding = older.begin()
        older.exec_driver_sql("SELECT pg_current_xact_id()")
        (first,) = store.append([record("1")])
        assert store.append([record("1")]) == []  # a re-delivery: ON CONFLICT burns a sequence value
        with engine.connect() as aborted:
            transaction = aborted.begin()
            store.insert(aborted, [record("2")])
            transaction.rollback()  # burns another
        (last,) = store.append([record("3")])
        assert last == first + 3
        assert ticker.tick() == [first, last]
        assert ticker.awaited() == [(first + 1, first + 2)]
        clock.now += 30
        assert ticker.tick() == [] and ticker.awaited() == [(first + 1, first + 2)]  # within the grace
        clock.now += 600
        # past the grace, but a transaction that might hold these ids is still open: keep waiting
        assert ticker.tick() == [] and ticker.awaited() == [(first + 1, first + 2)]
        holding.rollback()
    assert ticker.tick() == [] and ticker.awaited() == []
    assert ticker.cursor == str(last)

    assert store.append([record("3")]) == []  # burns the next value
    (after,) = store.append([record("4")])
    assert ticker.tick() == [after] and ticker.awaited() == [(after - 1, after - 1)]
    with engine.connect() as newer:  # began after the gap was read: it cannot hold that id
        holding = newer.begin()
        newer.exec_driver_sql("SELECT pg_current_xact_id()")
        clock.now += 61
        assert ticker.tick() == [] and ticker.awaited() == []
        holding.rollback()
    assert sorted(ticker.requested) == [first, last, after]


@pytest.mark.parametrize("writers", [2])
def test_concurrent_writers_every_committed_call_is_requested_exactly_once(warehouse_url: str, writers: int) -> None:
    engine = make_engine(warehouse_url)
    store = SocialStore(engine)
    clock = FakeClock()
    ticker = Ticker(warehouse_url, clock)
    committed: list[int] = []
    lock = threading.Lock()
    errors: list[BaseException] = []
    # On PostgreSQL every writer holds its ids uncommitted until all have taken theirs, so commits
    # land in either order (SQLite's writers take the database lock in turn: nothing to interleave)
    interleave = threading.Barrier(writers, timeout=30) if engine.dialect.name == "postgresql" else None

    def write(worker: int) -> None:
        rng = random.Random(worker)
        try:
            for batch in range(60):
                records = [record(f"w{worker}-{batch}-{i}", call=rng.random() < 0.8) for i in range(rng.randint(1, 3))]
                with engine.connect() as connection:
                    transaction = connection.begin()
                    ids = store.insert(connection, records)
                    if interleave is not None:
                        interleave.wait()
                    if rng.random() < 0.15:
                        transaction.rollback()
                        continue
                    transaction.commit()
                with lock:
                    committed.extend(i for i, r in zip(ids, records, strict=True) if r["tokens"])
        except BaseException as error:  # surfaced in the main thread
            errors.append(error)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        ticker.tick()
        clock.now += 1
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and not any(thread.is_alive() for thread in threads)
    for _ in range(3):  # past the grace, every gap settles (no transaction is open any more)
        clock.now += 61
        ticker.tick()
    assert ticker.awaited() == []
    assert sorted(ticker.requested) == sorted(committed)  # every call once: none skipped, none twice
    assert len(ticker.requested) == len(set(ticker.requested)) > 0


def test_an_event_that_appears_below_the_cursor_is_requested_once_on_sqlite(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    clock = FakeClock()
    ticker = Ticker(sqlite_url, clock)
    _insert_with_id(engine, 1, record("1"))
    _insert_with_id(engine, 3, record("3"))
    assert ticker.tick() == [1, 3]
    assert ticker.awaited() == [(2, 2)]
    _insert_with_id(engine, 2, record("2"))  # what a late commit looks like to the reader
    assert ticker.tick() == [2]
    clock.now += 120
    assert ticker.tick() == [] and ticker.cursor == "3"


def _insert_with_id(engine: Engine, event_id: int, event: dict) -> None:
    with engine.begin() as connection:
        connection.execute(insert(social_events).values(event_id=event_id, **_row(event, CALLED_AT)))


def _definitions(home: Path, url: str) -> Settings:
    (home / "sources.yaml").write_text(yaml.safe_dump({
        "sources": {"replay": {"window_s": 1.0, "channels": [{"id": "alpha", "weight": 1.0}]}},
        "publishers": [{"name": "everything", "kind": "console", "min_confidence": 0.0}],
        "validation_threshold": 0.3,
    }))
    return Settings(home=home, database_url=None if url.startswith("sqlite") else url,
                    social_config=home / "sources.yaml")


def test_without_a_cursor_the_sensor_starts_after_what_the_warehouse_validated(
        warehouse_url: str, tmp_path: Path) -> None:
    settings = _definitions(tmp_path, warehouse_url)
    url = settings.warehouse_url if warehouse_url.startswith("sqlite") else warehouse_url
    dexscreener = SimDexScreenerResource(cache_path=str(tmp_path / "cache" / "dex.sqlite"),
                                         frozen_clock=(CALLED_AT + timedelta(minutes=5)).isoformat())
    defs = build_definitions(settings, {"dexscreener": dexscreener, "warehouse": WarehouseResource(url=url)})
    store = SocialStore.from_url(url)
    handled = store.append([record("1"), record("2", call=False), record("3", channel="beta")])
    clock = FakeClock()
    first_instance = Ticker(url, clock)  # e.g. `make demo`
    assert first_instance.tick() == [handled[0], handled[2]]
    with DagsterInstance.ephemeral() as instance:
        run = defs.resolve_job_def("validate_calls_job").execute_in_process(
            run_config={"ops": {"validate_calls_op": {"config": {"event_ids": first_instance.requested}}}},
            instance=instance)
        assert run.success
    chatter = store.append([record("4", call=False)])

    fresh_instance = Ticker(url, clock)  # first start of `dagster dev`: no cursor
    assert fresh_instance.tick() == []  # nothing the demo handled is requested again
    assert fresh_instance.cursor == str(chatter[0])
    (new_call,) = store.append([record("5")])
    assert fresh_instance.tick() == [new_call]
    assert Ticker(url, clock, cursor="0").tick() == [handled[0], handled[2], new_call]  # an explicit cursor wins
