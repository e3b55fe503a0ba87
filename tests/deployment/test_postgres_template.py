"""``deploy/dagster.postgres.yaml`` copied unchanged, configured from ``DAGSTER_PG_*`` only: it
reaches a server on any port and stores runs and their events with the versions installed (the
run-event notification is what a bare ``postgresql://`` broke under SQLAlchemy 2.1)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, job, op
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.postgres


@op
def noop() -> None:
    pass


@job
def probe() -> None:
    noop()


def test_the_template_runs_on_postgres_from_the_environment_alone(
        tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    url = make_url(postgres_url)
    assert url.port != 5432  # the throwaway server listens elsewhere: the port must come from the environment
    for variable, value in {"DAGSTER_PG_HOST": url.host, "DAGSTER_PG_PORT": url.port, "DAGSTER_PG_USER": url.username,
                            "DAGSTER_PG_PASSWORD": url.password or "", "DAGSTER_PG_DB": url.database}.items():
        monkeypatch.setenv(variable, str(value))
    shutil.copy(ROOT / "deploy" / "dagster.postgres.yaml", tmp_path / "dagster.yaml")
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        created = instance.create_run_for_job(probe)
        instance.report_engine_event("probe event", created)  # INSERT + NOTIFY run_events
        instance.report_run_failed(created)
        stored = instance.get_run_by_id(created.run_id)
        assert stored is not None and stored.status == DagsterRunStatus.FAILURE
        engine_events = instance.all_logs(created.run_id, of_type=DagsterEventType.ENGINE_EVENT)
        assert [entry.message for entry in engine_events] == ["probe event"]
