"""The model store: immutable, checksummed model artifacts behind one Dagster resource interface.

``ModelStore`` is the interface; two interchangeable implementations honour one contract:

* :class:`LocalModelStore`: files under a root directory (the data home's ``models/`` by
  default), URIs ``file:///abs/path/<key>``.
* :class:`ObjectModelStore`: an S3-compatible object store over HTTP, path-style
  (``PUT``/``GET``/``HEAD`` ``/{bucket}/{key}``), URIs ``s3://<bucket>/<key>``. Its offline twin is
  :mod:`resources.models.object_store_server`.

The contract (``tests/resources/models/test_store.py`` runs the same suite on both):

* ``put(key, payload) -> uri``. Keys are relative paths such as ``xgb/majors/<version>.zip``.
  An artifact is immutable: putting the same key again with identical bytes is a no-op that
  returns the same URI; different bytes raise :class:`ArtifactConflictError`.
* ``get(uri) -> bytes`` verifies the SHA-256 recorded at put time: a missing artifact raises
  :class:`ArtifactMissingError`, one whose bytes changed :class:`ArtifactCorruptError`, both
  naming the URI.
* ``exists(uri) -> bool``: the artifact was completely written (its checksum is recorded).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

from dagster import ConfigurableResource
from pydantic import Field

from resources.atomic_file import atomic_write_bytes

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
    "default_local_root",
    "sha256_hex",
    "validate_key",
]

#: A key: slash-separated segments of letters, digits, ``.``, ``_``, ``-`` (no empty, ``.`` or ``..``).
_KEY = re.compile(r"[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*")
#: Suffix of the checksum sidecar of a local artifact (keys may not end with it).
CHECKSUM_SUFFIX = ".sha256"


class ModelStoreError(Exception):
    """Base class of every model store error; the message names the artifact."""


class ArtifactConflictError(ModelStoreError):
    """A key already holds different bytes: artifacts are immutable, use a new key (version)."""


class ArtifactMissingError(ModelStoreError):
    """No complete artifact at the URI."""


class ArtifactCorruptError(ModelStoreError):
    """The stored bytes do not match the SHA-256 recorded when they were put."""


class ModelStoreUnavailableError(ModelStoreError):
    """The object store did not answer (network, timeout, 5xx) after every retry: try again later."""


def sha256_hex(payload: bytes) -> str:
    """Lower-case hex SHA-256 of ``payload``."""
    return hashlib.sha256(payload).hexdigest()


def validate_key(key: str) -> str:
    """``key`` if it is a safe relative artifact key, else a ``ValueError`` saying why."""
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ValueError(f"invalid artifact key {key!r}: use slash-separated segments of letters, digits, "
                         "'.', '_' and '-', e.g. 'xgb/majors/3f2a9c.zip' (no leading slash, no spaces)")
    if any(part in (".", "..") for part in key.split("/")):
        raise ValueError(f"invalid artifact key {key!r}: '.' and '..' segments are not allowed")
    if key.endswith(CHECKSUM_SUFFIX):
        raise ValueError(f"invalid artifact key {key!r}: keys may not end with {CHECKSUM_SUFFIX}")
    return key


def artifact_key(name: str, segment: str, version: str, suffix: str = ".zip") -> str:
    """The conventional key of a model artifact: ``<name>/<segment>/<version><suffix>``."""
    return validate_key(f"{name}/{segment}/{version}{suffix}")


def default_local_root() -> str:
    """``$SIGNALWORKS_HOME/models`` (``./.signalworks/models`` when the variable is unset), absolute."""
    home = os.environ.get("SIGNALWORKS_HOME", "").strip() or "./.signalworks"
    return str((Path(home) / "models").resolve())


class ModelStore(ConfigurableResource):
    """Interface of the model store: configure :class:`LocalModelStore` or :class:`ObjectModelStore`."""

    def put(self, key: str, payload: bytes) -> str:
        """Store ``payload`` under ``key`` (immutable) and return the artifact's URI."""
        raise TypeError("ModelStore is an interface: configure LocalModelStore or ObjectModelStore")

    def get(self, uri: str) -> bytes:
        """The artifact's bytes, verified against the checksum recorded at put time."""
        raise TypeError("ModelStore is an interface: configure LocalModelStore or ObjectModelStore")

    def exists(self, uri: str) -> bool:
        """Whether a complete artifact is stored at ``uri``."""
        raise TypeError("ModelStore is an interface: configure LocalModelStore or ObjectModelStore")

    def uri_for(self, key: str) -> str:
        """The URI ``put(key, ...)`` returns (whether or not the artifact exists yet)."""
        raise TypeError("ModelStore is an interface: configure LocalModelStore or ObjectModelStore")


# -- local files ------------------------------------------------------------------------------------


class LocalModelStore(ModelStore):
    """Artifacts as files under ``root``, each with a ``<file>.sha256`` sidecar.

    Writes go to a temporary file in the same directory, are flushed to disk and then renamed
    over the final name (``os.replace``), so a reader never sees half a file. The sidecar is
    written last and is the commit mark: a file without one (a crashed put) is not an artifact
    and is overwritten by the next put. Puts are serialised by an advisory lock on
    ``root/.put.lock``, so two processes putting the same key cannot both win.
    """

    root: str | None = Field(default=None, description="directory of the artifacts; default "
                             "$SIGNALWORKS_HOME/models")

    @property
    def root_path(self) -> Path:
        return Path(self.root or default_local_root()).resolve()

    def uri_for(self, key: str) -> str:
        return (self.root_path / validate_key(key)).as_uri()

    def put(self, key: str, payload: bytes) -> str:
        path = self.root_path / validate_key(key)
        uri = path.as_uri()
        digest = sha256_hex(bytes(payload))
        sidecar = _sidecar(path)
        with self._put_lock():
            if sidecar.exists():
                recorded = _read_checksum(sidecar, uri)
                if recorded != digest:
                    raise ArtifactConflictError(
                        f"{uri} already holds a different artifact (sha256 {recorded[:12]}…, new bytes "
                        f"{digest[:12]}…): artifacts are immutable, store the new one under a new key")
                if path.exists() and sha256_hex(path.read_bytes()) == digest:
                    return uri
                # the same bytes were promised but the file is gone or damaged: restore it
            atomic_write_bytes(path, bytes(payload))
            atomic_write_bytes(sidecar, (digest + "\n").encode())
        return uri

    def get(self, uri: str) -> bytes:
        path = self._path_of(uri)
        sidecar = _sidecar(path)
        if not sidecar.exists():
            raise ArtifactMissingError(f"no artifact at {uri} (no checksum recorded: never put, or the put "
                                       "did not complete)")
        recorded = _read_checksum(sidecar, uri)
        try:
            payload = path.read_bytes()
        except FileNotFoundError as e:
            raise ArtifactMissingError(f"artifact file {uri} is missing although its checksum is recorded") from e
        actual = sha256_hex(payload)
        if actual != recorded:
            raise ArtifactCorruptError(f"artifact {uri} is corrupt: sha256 {actual[:12]}… of {len(payload)} bytes "
                                       f"differs from {recorded[:12]}… recorded at put time")
        return payload

    def exists(self, uri: str) -> bool:
        path = self._path_of(uri)
        return path.is_file() and _sidecar(path).is_file()

    def _path_of(self, uri: str) -> Path:
        parts = urlsplit(uri)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
            raise ValueError(f"{uri!r} is not a file:// URI of a local model store")
        path = Path(unquote(parts.path))
        root = self.root_path
        if not path.is_relative_to(root):
            raise ValueError(f"{uri} is outside this model store (root {root})")
        validate_key(path.relative_to(root).as_posix())
        return path

    @contextlib.contextmanager
    def _put_lock(self) -> Iterator[None]:
        root = self.root_path
        root.mkdir(parents=True, exist_ok=True)
        with open(root / ".put.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + CHECKSUM_SUFFIX)


def _read_checksum(sidecar: Path, uri: str) -> str:
    recorded = sidecar.read_text().strip()
    if not re.fullmatch(r"[0-9a-f]{64}", recorded):
        raise ArtifactCorruptError(f"checksum record of {uri} is damaged ({sidecar} does not hold a sha256)")
    return recorded


# -- S3-compatible object store over HTTP -----------------------------------------------------------


class ObjectModelStore(ModelStore):
    """An S3-compatible object store, path-style: ``{endpoint}/{bucket}/{key}``.

    * ``put`` sends ``If-None-Match: *`` (create only) and the payload's SHA-256 in
      ``x-amz-meta-sha256``. A 412 means the key exists: the stored object's checksum (``HEAD``)
      decides between a no-op (same bytes) and :class:`ArtifactConflictError`.
    * ``get`` recomputes the SHA-256 of the body and compares it with the object's
      ``x-amz-meta-sha256``.
    * Network failures, timeouts and 5xx are retried (exponential backoff with jitter) and then
      raise :class:`ModelStoreUnavailableError`; other 4xx raise :class:`ModelStoreError` with the
      server's message. Requests are not signed: the bucket must accept the client unauthenticated
      (the offline twin, or a bucket policy of a private S3-compatible server).
    """

    endpoint: str = Field(description="base URL of the object store, e.g. http://127.0.0.1:9000")
    bucket: str = Field(description="bucket holding the artifacts")
    timeout_s: float = Field(default=30.0, gt=0, description="per-request timeout, seconds")
    retry_attempts: int = Field(default=3, ge=1, description="attempts per request on transient failures")
    retry_base_delay_s: float = Field(default=0.5, ge=0, description="first retry's maximum delay, seconds")

    def uri_for(self, key: str) -> str:
        return f"s3://{self._bucket()}/{validate_key(key)}"

    def put(self, key: str, payload: bytes) -> str:
        from resources.models.object_client import put_object

        uri = self.uri_for(key)
        put_object(self, uri, key, bytes(payload))
        return uri

    def get(self, uri: str) -> bytes:
        from resources.models.object_client import get_object

        return get_object(self, uri, self._key_of(uri))

    def exists(self, uri: str) -> bool:
        from resources.models.object_client import head_object

        return head_object(self, uri, self._key_of(uri)) is not None

    def _bucket(self) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", self.bucket):
            raise ValueError(f"invalid bucket name {self.bucket!r}: 3-63 lower-case letters, digits, '.' and '-'")
        return self.bucket

    def _key_of(self, uri: str) -> str:
        parts = urlsplit(uri)
        if parts.scheme != "s3":
            raise ValueError(f"{uri!r} is not an s3:// URI of an object model store")
        if parts.netloc != self._bucket():
            raise ValueError(f"{uri} is in bucket {parts.netloc!r}, not this store's bucket {self.bucket!r}")
        return validate_key(parts.path.lstrip("/"))
