"""Launch jobs through the workspace's code location, as the UI launches them.

A run made with ``execute_in_process`` has no code-location origin, so Dagster's UI leaves it off
Overview (the timeline drops runs without a repository origin) and off the job's page (filtered on
the repository label). :class:`CodeLocationLauncher` starts a loopback ``dagster-webserver`` over
``workspace.yaml`` and launches each run with Dagster's public GraphQL client: the run is created
from the remote job, so it carries the origin of ``workspace.yaml``'s location, and it is executed
by Dagster's default run launcher in a process of its own.

The webserver sees the same storage as ``instance`` through an instance directory of its own
whose ``dagster.yaml`` is the instance's with one change: runs start at once (the default run
coordinator) instead of waiting in the queue for ``dagster-daemon``, which the demo does not run
(a daemon would also start the sensors and schedules).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from dagster import AssetKey, ConfigurableResource, DagsterInstance, Definitions

from orchestration.resource_config import NotRunConfigurableError, config_values

#: Run tags of a single-run backfill over a partition range (what the UI's backfill sets).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
WORKSPACE = Path(__file__).resolve().parents[1] / "workspace.yaml"
_LOCATIONS_QUERY = """
query { workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } ... on PythonError { message } } }
"""


@dataclass(frozen=True)
class LaunchedRun:
    run_id: str
    success: bool
    failures: tuple[str, ...] = ()


class LauncherError(RuntimeError):
    """The code location could not be served, or a run could not be launched or did not end."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def immediate_launch_config(instance_config: Mapping[str, Any], home: Path) -> dict[str, Any]:
    """``instance_config`` (a ``dagster.yaml``) for a second instance directory on the same storage
    whose runs start at once: the default run coordinator and launcher, the run queue dropped."""
    config = {key: value for key, value in instance_config.items()
              if key not in ("run_queue", "run_coordinator", "run_launcher")}
    separate = ("run_storage", "event_log_storage", "schedule_storage")
    if "storage" not in config and not any(key in config for key in separate):
        config["storage"] = {"sqlite": {"base_dir": str(home)}}  # Dagster's default, made explicit
    config.setdefault("local_artifact_storage", {"module": "dagster.core.storage.root", "class": "LocalArtifactStorage",
                                                 "config": {"base_dir": str(home)}})
    config["run_coordinator"] = {"module": "dagster.core.run_coordinator", "class": "DefaultRunCoordinator"}
    config["run_launcher"] = {"module": "dagster", "class": "DefaultRunLauncher"}
    return config


class CodeLocationLauncher:
    """Serve ``workspace`` on loopback for ``instance`` and launch runs through it (a context manager)."""

    def __init__(self, instance: DagsterInstance, *, log_path: Path, workspace: Path = WORKSPACE,
                 env: Mapping[str, str] | None = None, dagster_home: Path | None = None,
                 start_timeout_s: float = 180.0, run_timeout_s: float = 3600.0) -> None:
        if instance.is_ephemeral:
            raise LauncherError("launching through the code location needs a persistent instance (set DAGSTER_HOME)")
        self.instance = instance
        # the instance's own directory, not $DAGSTER_HOME: the two differ when a caller opens another
        # instance (a test's, or `make test` exporting the project's DAGSTER_HOME), and runs launched
        # on any other storage would never be seen to end
        self.dagster_home = Path(dagster_home or instance.root_directory)
        self.log_path, self.workspace, self.env = log_path, workspace, dict(env or {})
        self.start_timeout_s, self.run_timeout_s = start_timeout_s, run_timeout_s
        self.location_name = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._directory: Path | None = None
        self._port = 0

    def __enter__(self) -> CodeLocationLauncher:
        home = self.dagster_home
        source = home / "dagster.yaml"
        config = (yaml.safe_load(source.read_text()) if source.exists() else None) or {}
        self._directory = Path(tempfile.mkdtemp(prefix="signalworks-launcher-"))
        (self._directory / "dagster.yaml").write_text(yaml.safe_dump(immediate_launch_config(config, home)))
        self._port = _free_port()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "dagster_webserver", "-w", str(self.workspace), "-h", "127.0.0.1",
                 "-p", str(self._port)],
                cwd=self.workspace.parent, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, **self.env, "DAGSTER_HOME": str(self._directory)})
        try:
            self.location_name = self._wait_until_loaded()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def _wait_until_loaded(self) -> str:
        """Wait for the webserver and its one code location; the location's name."""
        deadline = time.monotonic() + self.start_timeout_s
        last = "no answer yet"
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise LauncherError(f"dagster-webserver exited with {self._process.returncode}; see {self.log_path}")
            try:
                reply = httpx.post(f"{self.url}/graphql", json={"query": _LOCATIONS_QUERY}, timeout=10).json()
            except (httpx.HTTPError, ValueError) as error:
                last = str(error)
                time.sleep(0.2)
                continue
            workspace = reply["data"]["workspaceOrError"]
            if workspace["__typename"] != "Workspace":
                raise LauncherError(f"the workspace did not load: {workspace.get('message')}")
            entries = workspace["locationEntries"]
            for entry in entries:
                failed = entry["locationOrLoadError"] or {}
                if failed.get("__typename") == "PythonError":
                    raise LauncherError(f"code location {entry['name']} failed to load: {failed['message']}")
            if entries and all(entry["loadStatus"] == "LOADED" for entry in entries):
                return ",".join(entry["name"] for entry in entries)
            last = f"locations {[(e['name'], e['loadStatus']) for e in entries]}"
            time.sleep(0.2)
        raise LauncherError(f"{self.workspace} not served within {self.start_timeout_s:.0f} s ({last}); "
                            f"see {self.log_path}")

    def launch(self, job_name: str, *, run_config: Mapping[str, Any] | None = None,
               tags: Mapping[str, str] | None = None,
               asset_selection: Sequence[AssetKey] | None = None) -> LaunchedRun:
        """Launch ``job_name`` through the code location and wait for its run to end."""
        from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

        client = DagsterGraphQLClient("127.0.0.1", port_number=self._port, timeout=120)
        try:
            run_id = client.submit_job_execution(job_name, run_config=dict(run_config or {}), tags=dict(tags or {}),
                                                 asset_selection=list(asset_selection) if asset_selection else None)
        except DagsterGraphQLClientError as error:
            raise LauncherError(f"could not launch {job_name}: {error}") from error
        return self._wait_for(run_id, client)

    def _wait_for(self, run_id: str, client: Any) -> LaunchedRun:
        deadline = time.monotonic() + self.run_timeout_s
        try:
            while True:
                run = self.instance.get_run_by_id(run_id)
                if run is not None and run.is_finished:
                    break
                if time.monotonic() > deadline:
                    raise LauncherError(f"run {run_id} did not end within {self.run_timeout_s:.0f} s; it is "
                                        f"{run.status.value if run else 'unknown'} (see {self.log_path})")
                time.sleep(0.2)
        except KeyboardInterrupt:
            client.terminate_run(run_id)
            raise
        failures = tuple(failure_text(entry.dagster_event) for entry in self.instance.all_logs(run_id)
                         if entry.dagster_event is not None and entry.dagster_event.is_failure)
        return LaunchedRun(run_id, run.is_success, failures)


#: A ``Failure``'s description is written for the user (one line per problem); at most this many
#: of its lines are kept.
FAILURE_LINES = 12


def failure_text(event: Any) -> str:
    """What went wrong: a ``Failure``'s description (its lines, up to :data:`FAILURE_LINES`), or
    the first line of the innermost error's message (a step's error wraps the user code's), or the
    event's own message."""
    data = event.event_specific_data
    user = getattr(data, "user_failure_data", None)
    error = getattr(data, "error", None)
    if user is not None and user.description:
        lines = user.description.strip().splitlines()[:FAILURE_LINES]
    elif error is not None:
        while error.cause is not None:
            error = error.cause
        lines = error.message.strip().splitlines()[:1]
    else:
        lines = (event.message or "").splitlines()[:1]
    where = event.step_key or "run"
    return f"{where}: " + ("\n".join(lines) if lines else event.event_type_value)


_active: ContextVar[CodeLocationLauncher | None] = ContextVar("signalworks_launcher", default=None)


@contextmanager
def code_location(instance: DagsterInstance, *, log_path: Path,
                  env: Mapping[str, str] | None = None) -> Iterator[CodeLocationLauncher | None]:
    """Serve the code location while the block runs, so that :func:`launch` goes through it; on an
    ephemeral instance (no ``DAGSTER_HOME``, nothing a UI could show) runs stay in process."""
    if instance.is_ephemeral:
        yield None
        return
    with CodeLocationLauncher(instance, log_path=log_path, env=env) as launcher:
        token = _active.set(launcher)
        try:
            yield launcher
        finally:
            _active.reset(token)


def resources_run_config(defs: Definitions) -> dict[str, Any]:
    """The configuration of ``defs``' resources as run config, so that a run launched through the
    code location uses the same settings (a frozen clock, a dry run, a stream's epoch ...) with the
    code location's resource classes."""
    config: dict[str, Any] = {}
    for key, resource in (defs.resources or {}).items():
        if not isinstance(resource, ConfigurableResource):
            raise LauncherError(f"resource {key} ({type(resource).__name__}) is not a ConfigurableResource: "
                                "it cannot be passed to a run launched through the code location")
        try:
            config[key] = {"config": config_values(resource, key)}
        except NotRunConfigurableError as error:
            raise LauncherError(str(error)) from error
    return {"resources": config} if config else {}


def launch(defs: Definitions, instance: DagsterInstance, job_name: str, *,
           run_config: Mapping[str, Any] | None = None, tags: Mapping[str, str] | None = None,
           asset_selection: Sequence[AssetKey] | None = None) -> LaunchedRun:
    """Run ``job_name`` and wait for it: through the code location opened by :func:`code_location`
    with ``defs``' resource configuration (``run_config``'s resources take precedence), or, outside
    one, in this process with ``defs``."""
    launcher = _active.get()
    if launcher is not None:
        carried = resources_run_config(defs)
        merged = {**carried, **(run_config or {})}
        if "resources" in carried and run_config and "resources" in run_config:
            merged["resources"] = {**carried["resources"], **run_config["resources"]}
        return launcher.launch(job_name, run_config=merged, tags=tags, asset_selection=asset_selection)
    result = defs.resolve_job_def(job_name).execute_in_process(
        instance=instance, raise_on_error=False, run_config=dict(run_config or {}), tags=dict(tags or {}),
        asset_selection=list(asset_selection) if asset_selection else None)
    failures = tuple(failure_text(event) for event in result.all_events if event.is_failure)
    return LaunchedRun(result.run_id, result.success, failures)
