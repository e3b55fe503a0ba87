"""What the Dagster UI would show, read from a real instance without a webserver.

The UI's per-partition check bar comes from GraphQL ``partitionStatuses``, which Dagster builds
from the event log's asset check state; :func:`check_statuses` reads that same state.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from dagster import AssetCheckKey, DagsterInstance, PartitionsDefinition

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def ui_instance(directory: Path) -> DagsterInstance:
    """A persistent SQLite instance configured as ``make demo`` and ``make ui`` configure theirs."""
    home = directory / "dagster"
    home.mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "deploy" / "dagster.local.yaml", home / "dagster.yaml")
    return DagsterInstance.local_temp(str(home))


def check_statuses(instance: DagsterInstance, key: AssetCheckKey,
                   partitions_def: PartitionsDefinition) -> dict[str, str]:
    """Partition -> status of ``key`` (SUCCEEDED, FAILED, SKIPPED, IN_PROGRESS, EXECUTION_FAILED);
    partitions the check never evaluated are absent."""
    state = instance.event_log_storage.get_asset_check_state([(key, partitions_def)])[key]
    return {str(partition): status.value for status, subset in state.subsets.items()
            for partition in subset.subset_value.get_partition_keys()}
