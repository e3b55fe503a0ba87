"""Model artifacts: the model store resource (local files or an S3-compatible object store)."""

from resources.models.store import (
    ArtifactConflictError,
    ArtifactCorruptError,
    ArtifactMissingError,
    LocalModelStore,
    ModelStore,
    ModelStoreError,
    ModelStoreUnavailableError,
    ObjectModelStore,
    artifact_key,
)

__all__ = [
    "ArtifactConflictError",
    "ArtifactCorruptError",
    "ArtifactMissingError",
    "LocalModelStore",
    "ModelStore",
    "ModelStoreError",
    "ModelStoreUnavailableError",
    "ObjectModelStore",
    "artifact_key",
]
