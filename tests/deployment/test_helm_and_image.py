"""The multi-machine deployment files: ``deploy/helm-values.yaml`` (Dagster's official Helm chart)
and ``deploy/Dockerfile`` (the code location's image). Neither Kubernetes nor a container build
runs here, so they are checked as far as this machine can: the instance the chart would render
from the values loads as a real Dagster instance on PostgreSQL with the template's queue, pools and
run monitoring, and the image's entry point loads the definitions.

The chart's instance rendering is mirrored from its templates (``configmap-instance.yaml`` and
``helpers/instance/_postgresql.tpl``, ``_concurrency.tpl``) for the keys these values use.
"""

from __future__ import annotations

import importlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import DagsterInstance, Definitions
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
VALUES = yaml.safe_load((ROOT / "deploy" / "helm-values.yaml").read_text())
TEMPLATE = yaml.safe_load((ROOT / "deploy" / "dagster.postgres.yaml").read_text())
DOCKERFILE = (ROOT / "deploy" / "Dockerfile").read_text()


def postgres_config(values: dict[str, Any]) -> dict[str, Any]:
    """``dagsterYaml.postgresql.config``: the password always from DAGSTER_PG_PASSWORD."""
    pg = values["postgresql"]
    config = {"username": pg["postgresqlUsername"], "password": {"env": "DAGSTER_PG_PASSWORD"},
              "hostname": pg["postgresqlHost"], "db_name": pg["postgresqlDatabase"],
              "port": pg["service"]["port"], "params": pg.get("postgresqlParams", {})}
    if pg.get("postgresqlScheme"):
        config["scheme"] = pg["postgresqlScheme"]
    return {"postgres_db": config}


def rendered_instance(values: dict[str, Any]) -> dict[str, Any]:
    """The ``dagster.yaml`` the chart renders from ``values``, less the run launcher (the
    K8sRunLauncher needs dagster-k8s and a cluster: it is checked on its own below)."""
    storage = postgres_config(values)
    instance: dict[str, Any] = {
        "schedule_storage": {"module": "dagster_postgres.schedule_storage", "class": "PostgresScheduleStorage",
                             "config": storage},
        "run_storage": {"module": "dagster_postgres.run_storage", "class": "PostgresRunStorage", "config": storage},
        "event_log_storage": {"module": "dagster_postgres.event_log", "class": "PostgresEventLogStorage",
                              "config": storage},
        "telemetry": {"enabled": values["telemetry"]["enabled"]},
    }
    daemon = values["dagsterDaemon"]
    assert not daemon["runCoordinator"]["enabled"], "run_queue below would conflict with a run_coordinator block"
    monitoring = daemon["runMonitoring"]
    if monitoring["enabled"]:
        instance["run_monitoring"] = {
            "enabled": True, "start_timeout_seconds": monitoring["startTimeoutSeconds"],
            "cancel_timeout_seconds": monitoring["cancelTimeoutSeconds"],
            "poll_interval_seconds": monitoring["pollIntervalSeconds"],
            "free_slots_after_run_end_seconds": monitoring["freeSlotsAfterRunEndSeconds"]}
    concurrency = values["concurrency"]
    if concurrency["enabled"]:
        runs = concurrency["runs"]
        instance["concurrency"] = {
            "pools": {"default_limit": concurrency["pools"]["defaultLimit"]},
            "runs": {"max_concurrent_runs": runs["maxConcurrentRuns"],
                     "tag_concurrency_limits": [{k: v for k, v in limit.items()}
                                                for limit in runs["tagConcurrencyLimits"]]}}
    duplicated = set(instance) & set(values.get("additionalInstanceConfig") or {})
    assert not duplicated, f"additionalInstanceConfig repeats keys the chart renders: {duplicated}"
    instance.update(values.get("additionalInstanceConfig") or {})
    return instance


def test_the_values_select_user_code_deployments_and_the_k8s_run_launcher() -> None:
    [deployment] = VALUES["dagster-user-deployments"]["deployments"]
    assert VALUES["dagster-user-deployments"]["enabled"]
    assert VALUES["runLauncher"]["type"] == "K8sRunLauncher"
    assert deployment["includeConfigInLaunchedRuns"]["enabled"]  # runs get the warehouse URL secret
    assert deployment["dagsterApiGrpcArgs"] == image_command()[image_command().index("-m"):]
    assert not VALUES["postgresql"]["enabled"] and VALUES["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"
    assert re.search(r'dagster-k8s>=0\.29,<0\.30', DOCKERFILE), "the image must install dagster-k8s for the launcher"


def test_the_chart_instance_has_the_templates_queue_pools_and_monitoring() -> None:
    instance = rendered_instance(VALUES)
    assert instance["concurrency"] == TEMPLATE["concurrency"]
    assert instance["run_queue"] == TEMPLATE["run_queue"]
    template_monitoring = TEMPLATE["run_monitoring"]
    assert {k: instance["run_monitoring"][k] for k in template_monitoring} == template_monitoring
    assert instance["telemetry"] == TEMPLATE["telemetry"]


@pytest.mark.postgres
def test_the_chart_instance_loads_as_a_dagster_instance_on_postgres(
        tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    url = make_url(postgres_url)
    values = json.loads(json.dumps(VALUES))
    values["postgresql"].update(postgresqlHost=url.host, postgresqlUsername=url.username,
                                postgresqlDatabase=url.database, service={"port": url.port})
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", url.password or "")
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(rendered_instance(values)))
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert instance.run_coordinator.dequeue_interval_seconds == 1  # type: ignore[attr-defined]
        queue = instance.get_concurrency_config().run_queue_config
        assert queue is not None and queue.max_concurrent_runs == 24
        assert queue.max_user_code_failure_retries == 12 and queue.user_code_failure_retry_delay == 10
        assert instance.global_op_concurrency_default_limit == 1
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] == 60
        assert instance.get_runs() == []  # the storage answers (psycopg2, as the scheme says)


def image_command() -> list[str]:
    [cmd] = re.findall(r"^CMD (\[.*\])$", DOCKERFILE, flags=re.MULTILINE)
    return list(json.loads(cmd))


def test_the_images_entry_point_loads_the_definitions() -> None:
    command = image_command()
    assert command[:3] == ["dagster", "api", "grpc"]
    module, attribute = command[command.index("-m") + 1], command[command.index("-a") + 1]
    definitions = getattr(importlib.import_module(module), attribute)
    assert isinstance(definitions, Definitions)
    jobs = {job.name for job in definitions.get_repository_def().get_all_jobs()}
    assert {"markets_job", "candles_1h_job"} <= jobs


def test_the_image_holds_every_package_the_project_installs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {pattern.rstrip("*") for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = set(re.findall(r"^COPY (\S+) \./\1$", DOCKERFILE, flags=re.MULTILINE))
    assert packages <= copied, f"not copied into the image: {packages - copied}"
    assert "config" in copied  # SIGNALWORKS_SOCIAL_CONFIG's default, config/sources.yaml
    ignore = (ROOT / "deploy" / "Dockerfile.dockerignore").read_text()
    assert all(f"!{name}/**" in ignore for name in copied)
