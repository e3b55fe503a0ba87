"""model_registry on SQLite and a real PostgreSQL 15: idempotent registration, one active version
per (name, segment) with the previous one retired atomically (also under concurrent promotions),
expiry, newest-first listing, millisecond instants."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from resources.warehouse.engine import make_engine
from resources.warehouse.models import ModelRecord, ModelRegistry, UnknownModelError
from resources.warehouse.store import Warehouse

T0 = datetime(2024, 6, 1, 12, tzinfo=UTC)


def _record(version: str, *, trained_hours: int = 0, segment: str = "majors", name: str = "xgb",
            **changes: object) -> ModelRecord:
    trained = T0 + timedelta(hours=trained_hours)
    fields: dict[str, object] = {
        "name": name, "segment": segment, "version": version,
        "window_start": trained - timedelta(days=90), "window_end": trained - timedelta(hours=1),
        "trained_at": trained, "expires_at": trained + timedelta(hours=12),
        "metrics": {"brier": 0.61, "baseline_brier": 0.64, "classes": ["down", "flat", "up"], "rows": 2000},
        "artifact_uri": f"file:///models/{name}/{segment}/{version}.zip",
    }
    return ModelRecord(**{**fields, **changes})  # type: ignore[arg-type]


@pytest.fixture
def registry(warehouse_url: str) -> ModelRegistry:
    return ModelRegistry(make_engine(warehouse_url))


def test_a_record_reads_back_equal_and_registration_is_idempotent(registry: ModelRegistry,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    record = _record("a1", trained_at=T0 + timedelta(microseconds=1_700))  # SQLite keeps milliseconds
    assert record.trained_at == T0 + timedelta(milliseconds=1)  # cut on construction, on both engines
    assert registry.register_model(record) is True
    assert registry.model("xgb", "majors", "a1") == record
    assert registry.models() == [record]
    assert registry.register_model(record) is False
    with caplog.at_level("WARNING", logger="resources.warehouse.models"):
        assert registry.register_model(replace(record, metrics={"brier": 0.1}, artifact_uri="s3://m/x")) is False
    assert "already registered with artifact file:///models/xgb/majors/a1.zip" in caplog.text
    assert registry.models() == [record]  # the first registration stands
    assert registry.model("xgb", "majors", "zz") is None
    with pytest.raises(TypeError):
        record.metrics["brier"] = 0.0  # type: ignore[index]  # read-only


def test_activating_a_version_retires_the_previous_one(registry: ModelRegistry) -> None:
    for i, version in enumerate(("v1", "v2", "v3")):
        registry.register_model(_record(version, trained_hours=i))
    registry.register_model(_record("h1", name="hmm", segment="majors"))
    registry.set_model_status("hmm", "majors", "h1", "active", "passed checks", at=T0)
    registry.set_model_status("xgb", "majors", "v1", "active", "passed checks", at=T0)
    registry.set_model_status("xgb", "majors", "v2", "rejected", "Brier worse than baseline", at=T0)
    registry.set_model_status("xgb", "majors", "v3", "active", "passed checks", at=T0 + timedelta(hours=2))
    statuses = {r.version: (r.status, r.status_reason) for r in registry.models("xgb", "majors")}
    assert statuses == {"v3": ("active", "passed checks"), "v2": ("rejected", "Brier worse than baseline"),
                        "v1": ("retired", "replaced by v3")}
    assert registry.model("hmm", "majors", "h1").status == "active"  # another name is untouched
    registry.set_model_status("xgb", "majors", "v3", "active", "re-run", at=T0)  # idempotent
    assert [r.version for r in registry.models("xgb") if r.status == "active"] == ["v3"]


def test_registering_an_active_record_goes_through_promotion(registry: ModelRegistry) -> None:
    registry.register_model(_record("v1", status="active"))
    registry.register_model(_record("v2", trained_hours=1, status="active", status_reason="first run"))
    assert [(r.version, r.status, r.status_reason) for r in registry.models()] == [
        ("v2", "active", "first run"), ("v1", "retired", "replaced by v2")]


def test_only_one_active_row_per_name_and_segment_even_in_raw_sql(registry: ModelRegistry) -> None:
    registry.register_model(_record("v1", status="active"))
    registry.register_model(_record("v2", trained_hours=1))
    with pytest.raises(IntegrityError), registry.engine.begin() as connection:
        connection.execute(text("UPDATE model_registry SET status = 'active' WHERE version = 'v2'"))


def test_usable_model_is_the_active_one_until_it_expires(registry: ModelRegistry) -> None:
    record = _record("v1", expires_at=T0 + timedelta(hours=6, microseconds=700))
    registry.register_model(record)
    registry.register_model(_record("v0", trained_hours=-12))
    assert registry.usable_model("xgb", "majors", T0) is None  # registered is not active
    registry.set_model_status("xgb", "majors", "v1", "active", "ok", at=T0)
    expiry = T0 + timedelta(hours=6)  # stored instant: the microseconds are cut on both engines
    assert registry.usable_model("xgb", "majors", expiry - timedelta(milliseconds=1)).version == "v1"
    assert registry.usable_model("xgb", "majors", expiry - timedelta(microseconds=1)).version == "v1"
    assert registry.usable_model("xgb", "majors", expiry) is None
    assert registry.usable_model("xgb", "majors", expiry + timedelta(microseconds=500)) is None
    assert registry.usable_model("xgb", "majors", T0 + timedelta(days=30)) is None
    assert registry.usable_model("xgb", "alts", T0) is None
    assert registry.model("xgb", "majors", "v1").usable_at(expiry - timedelta(microseconds=1))
    assert not registry.model("xgb", "majors", "v1").usable_at(expiry)


def test_models_are_listed_newest_first_and_filtered(registry: ModelRegistry) -> None:
    registry.register_model(_record("b", trained_hours=5))
    registry.register_model(_record("a", trained_hours=1))
    registry.register_model(_record("c", trained_hours=3, segment="alts"))
    registry.register_model(_record("r", trained_hours=4, name="hmm", segment="all"))
    assert [r.version for r in registry.models()] == ["b", "r", "c", "a"]
    assert [r.version for r in registry.models("xgb")] == ["b", "c", "a"]
    assert [r.version for r in registry.models(segment="majors")] == ["b", "a"]
    assert registry.models("xgb", "memes") == []


def test_bad_records_and_statuses_fail_clearly(registry: ModelRegistry) -> None:
    with pytest.raises(ValueError, match="aware UTC"):
        _record("v", trained_at=datetime(2024, 6, 1))
    with pytest.raises(ValueError, match=r"expires_at .* must be after trained_at"):
        _record("v", expires_at=T0 - timedelta(hours=1))
    with pytest.raises(ValueError, match="unknown model status 'live'"):
        _record("v", status="live")
    with pytest.raises(ValueError, match="JSON-serialisable"):
        _record("v", metrics={"curve": object()})
    with pytest.raises(ValueError, match="window_start"):
        _record("v", window_start=T0 + timedelta(days=1))
    registry.register_model(_record("v1"))
    with pytest.raises(UnknownModelError, match="no model xgb/majors version nope"):
        registry.set_model_status("xgb", "majors", "nope", "active", "x", at=T0)
    with pytest.raises(ValueError, match="unknown model status"):
        registry.set_model_status("xgb", "majors", "v1", "deployed", "x", at=T0)  # type: ignore[arg-type]
    assert registry.model("xgb", "majors", "v1").status == "candidate"


def test_the_warehouse_exposes_the_registry(warehouse: Warehouse) -> None:
    warehouse.model_registry().register_model(_record("v1"))
    assert [r.version for r in ModelRegistry(warehouse.engine).models()] == ["v1"]


def _waiting_on_a_lock(registry: ModelRegistry) -> bool:
    with registry.engine.connect() as connection:
        return bool(connection.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )).scalar())


def test_concurrent_promotions_leave_exactly_one_active_version(registry: ModelRegistry) -> None:
    """A promotes v1 and holds its transaction open; B promotes v2 meanwhile. B must wait for A
    (PostgreSQL: row locks; SQLite: the database write lock) and then retire v1."""
    registry.register_model(_record("v0", status="active"))
    registry.register_model(_record("v1", trained_hours=1))
    registry.register_model(_record("v2", trained_hours=2))
    failures: list[BaseException] = []

    def promote_v2() -> None:
        try:
            registry.set_model_status("xgb", "majors", "v2", "active", "B", at=T0)
        except BaseException as error:  # reported by the main thread
            failures.append(error)

    with registry.engine.begin() as connection:  # transaction A: promotes v1 by the same protocol
        if registry.postgres:
            connection.execute(text("SELECT version FROM model_registry WHERE name = 'xgb' AND segment = 'majors' "
                                    "FOR UPDATE"))
        connection.execute(text("UPDATE model_registry SET status = 'retired', status_reason = 'replaced by v1' "
                                "WHERE version = 'v0'"))
        connection.execute(text("UPDATE model_registry SET status = 'active', status_reason = 'A' "
                                "WHERE version = 'v1'"))
        b = threading.Thread(target=promote_v2)
        b.start()
        if registry.postgres:  # wait until B is blocked on A's locks (a condition, with a deadline)
            deadline = time.monotonic() + 30  # a duration, never the date
            while not _waiting_on_a_lock(registry):
                assert b.is_alive(), f"B finished without waiting for A: {failures}"
                assert time.monotonic() < deadline, "B never waited for A's locks"
                b.join(timeout=0.05)  # waits on B itself: returns at once if B ends
    b.join(timeout=60)
    assert not b.is_alive() and failures == []
    statuses = {r.version: (r.status, r.status_reason) for r in registry.models()}
    assert statuses == {"v2": ("active", "B"), "v1": ("retired", "replaced by v2"),
                        "v0": ("retired", "replaced by v1")}
