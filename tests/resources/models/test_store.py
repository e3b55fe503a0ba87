"""The model store contract, run on both implementations: local files and the S3-compatible
object store (a real HTTP client against the loopback twin, objects on disk so they can be damaged)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from dagster import asset, materialize

from resources.models.object_store_server import ObjectStoreServer
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

KEY = "xgb/majors/0123456789abcdef.zip"
PAYLOAD = bytes(range(256)) * 64 + b"model"


@dataclass
class Backend:
    """A store under test and the file holding the bytes of the artifact at a key."""

    store: ModelStore
    data_file: Callable[[str], Path]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ObjectStoreServer]:
    with ObjectStoreServer(tmp_path / "objects", buckets=["models"]) as twin:
        yield twin


def _object_store(server: ObjectStoreServer, **overrides: object) -> ObjectModelStore:
    config: dict[str, object] = {"endpoint": server.endpoint, "bucket": "models", "timeout_s": 5.0,
                                 "retry_attempts": 3, "retry_base_delay_s": 0.0}
    return ObjectModelStore(**{**config, **overrides})  # type: ignore[arg-type]


@pytest.fixture(params=["local", "object"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        root = tmp_path / "models"
        return Backend(LocalModelStore(root=str(root)), lambda key: root / key)
    twin: ObjectStoreServer = request.getfixturevalue("server")
    return Backend(_object_store(twin), lambda key: twin.object_path("models", key))


# -- the contract ------------------------------------------------------------------------------------


def test_put_returns_a_uri_that_gets_the_same_bytes(backend: Backend) -> None:
    store = backend.store
    uri = store.put(KEY, PAYLOAD)
    assert uri == store.uri_for(KEY)
    assert store.exists(uri)
    assert store.get(uri) == PAYLOAD
    assert not store.exists(store.uri_for("xgb/majors/other.zip"))
    empty = store.put("hmm/all/empty.zip", b"")
    assert store.get(empty) == b"" and empty != uri


def test_putting_identical_bytes_again_is_a_no_op(backend: Backend) -> None:
    store = backend.store
    first = store.put(KEY, PAYLOAD)
    before = backend.data_file(KEY).stat().st_mtime_ns
    assert store.put(KEY, bytes(PAYLOAD)) == first
    assert backend.data_file(KEY).stat().st_mtime_ns == before  # not rewritten
    assert store.get(first) == PAYLOAD


def test_different_bytes_under_an_existing_key_are_refused_and_the_original_kept(backend: Backend) -> None:
    store = backend.store
    uri = store.put(KEY, PAYLOAD)
    with pytest.raises(ArtifactConflictError, match="immutable") as error:
        store.put(KEY, PAYLOAD + b"!")
    assert uri in str(error.value)
    assert store.get(uri) == PAYLOAD


def test_a_missing_artifact_is_a_clear_error_naming_the_uri(backend: Backend) -> None:
    store = backend.store
    uri = store.uri_for("xgb/alts/never-put.zip")
    assert not store.exists(uri)
    with pytest.raises(ArtifactMissingError) as error:
        store.get(uri)
    assert uri in str(error.value)


def test_a_damaged_artifact_fails_its_checksum(backend: Backend) -> None:
    store = backend.store
    uri = store.put(KEY, PAYLOAD)
    damaged = bytearray(PAYLOAD)
    damaged[100] ^= 0x01
    backend.data_file(KEY).write_bytes(bytes(damaged))
    with pytest.raises(ArtifactCorruptError) as error:
        store.get(uri)
    assert uri in str(error.value)


def test_a_deleted_artifact_file_is_missing(backend: Backend) -> None:
    store = backend.store
    uri = store.put(KEY, PAYLOAD)
    backend.data_file(KEY).unlink()
    assert not store.exists(uri)
    with pytest.raises(ArtifactMissingError, match=re.escape(uri)):
        store.get(uri)


@pytest.mark.parametrize("key", ["", "/xgb/a.zip", "xgb/../a.zip", "xgb//a.zip", "xgb/a b.zip", "./a.zip",
                                 "a.zip.sha256", "xgb/ä.zip"])
def test_unsafe_keys_are_refused(backend: Backend, key: str) -> None:
    with pytest.raises(ValueError, match="invalid artifact key"):
        backend.store.put(key, PAYLOAD)


def test_a_uri_of_another_store_is_refused(backend: Backend, tmp_path: Path) -> None:
    foreign = [LocalModelStore(root=str(tmp_path / "elsewhere")).uri_for(KEY), f"s3://other-bucket/{KEY}",
               f"https://example.invalid/{KEY}"]
    for uri in foreign:
        with pytest.raises(ValueError, match=r"not|outside"):
            backend.store.get(uri)


def test_the_store_works_as_a_dagster_resource(backend: Backend) -> None:
    @asset
    def stored_model(model_store: ModelStore) -> str:
        return model_store.put(KEY, PAYLOAD)

    result = materialize([stored_model], resources={"model_store": backend.store})
    assert result.success
    assert backend.store.get(result.output_for_node("stored_model")) == PAYLOAD


def test_artifact_key_convention() -> None:
    assert artifact_key("xgb", "majors", "0123abcd") == "xgb/majors/0123abcd.zip"
    with pytest.raises(ValueError, match="invalid artifact key"):
        artifact_key("xgb", "../majors", "v1")


# -- local files -------------------------------------------------------------------------------------


def test_a_put_that_crashed_before_its_checksum_is_not_an_artifact(tmp_path: Path) -> None:
    store = LocalModelStore(root=str(tmp_path))
    (tmp_path / "xgb" / "majors").mkdir(parents=True)
    (tmp_path / KEY).write_bytes(b"half a mod")  # data written, sidecar (the commit mark) never was
    uri = store.uri_for(KEY)
    assert not store.exists(uri)
    with pytest.raises(ArtifactMissingError, match="no checksum recorded"):
        store.get(uri)
    assert store.put(KEY, PAYLOAD) == uri  # the next put completes it
    assert store.get(uri) == PAYLOAD
    assert (tmp_path / f"{KEY}.sha256").read_text().strip() == hashlib.sha256(PAYLOAD).hexdigest()
    assert sorted(p.name for p in (tmp_path / "xgb" / "majors").iterdir()) == [
        "0123456789abcdef.zip", "0123456789abcdef.zip.sha256"]  # no temporary files left


def test_the_default_root_is_the_data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNALWORKS_HOME", str(tmp_path / "home"))
    uri = LocalModelStore().put(KEY, PAYLOAD)
    assert (tmp_path / "home" / "models" / KEY).read_bytes() == PAYLOAD
    assert uri == (tmp_path / "home" / "models" / KEY).as_uri()


# -- the object store client against its twin --------------------------------------------------------


def test_the_twin_checks_the_sent_checksum_and_create_only_puts(server: ObjectStoreServer) -> None:
    url = f"{server.endpoint}/models/{KEY}"
    wrong = httpx.put(url, content=PAYLOAD, headers={"x-amz-meta-sha256": "0" * 64})
    assert wrong.status_code == 400 and b"BadDigest" in wrong.content
    assert httpx.head(url).status_code == 404
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    assert httpx.put(url, content=PAYLOAD, headers={"x-amz-meta-sha256": digest}).status_code == 200
    again = httpx.put(url, content=b"other", headers={"If-None-Match": "*"})
    assert again.status_code == 412
    got = httpx.get(url)
    assert got.content == PAYLOAD and got.headers["x-amz-meta-sha256"] == digest
    assert httpx.get(f"{server.endpoint}/nobucket/{KEY}").status_code == 404


def test_transient_server_errors_are_retried(server: ObjectStoreServer) -> None:
    store = _object_store(server, retry_attempts=3)
    server.fail_next(503, times=2)
    uri = store.put(KEY, PAYLOAD)
    assert [method for method, _ in server.requests] == ["PUT", "PUT", "PUT"]
    assert store.get(uri) == PAYLOAD


def test_a_store_that_keeps_failing_is_unavailable(server: ObjectStoreServer) -> None:
    store = _object_store(server, retry_attempts=2)
    server.fail_next(500, times=2)
    with pytest.raises(ModelStoreUnavailableError, match=f"s3://models/{KEY}") as error:
        store.put(KEY, PAYLOAD)
    assert "HTTP 500" in str(error.value)
    assert len(server.requests) == 2


def test_a_store_that_does_not_answer_times_out(server: ObjectStoreServer) -> None:
    store = _object_store(server, retry_attempts=1, timeout_s=0.3)
    server.hold()
    try:
        with pytest.raises(ModelStoreUnavailableError, match="timed out"):
            store.exists(store.uri_for(KEY))
    finally:
        server.release()


def test_a_closed_store_is_unavailable(tmp_path: Path) -> None:
    twin = ObjectStoreServer(tmp_path)
    store = _object_store(twin, retry_attempts=2)
    twin.close()
    with pytest.raises(ModelStoreUnavailableError, match="did not answer"):
        store.get(store.uri_for(KEY))


def test_client_errors_are_permanent_and_not_retried(server: ObjectStoreServer) -> None:
    store = _object_store(server, retry_attempts=3)
    server.fail_next(403)
    with pytest.raises(ModelStoreError, match=r"HTTP 403 \(access denied") as error:
        store.put(KEY, PAYLOAD)
    assert not isinstance(error.value, ModelStoreUnavailableError)
    assert len(server.requests) == 1
    with pytest.raises(ModelStoreError, match="NoSuchBucket"):
        _object_store(server, bucket="missing-bucket").put(KEY, PAYLOAD)


def test_an_in_memory_twin_serves_the_same_contract() -> None:
    with ObjectStoreServer(None, buckets=["models"]) as twin:
        store = _object_store(twin)
        uri = store.put(KEY, PAYLOAD)
        assert store.put(KEY, PAYLOAD) == uri and store.get(uri) == PAYLOAD
        with pytest.raises(ArtifactConflictError):
            store.put(KEY, b"other")


# -- configuration ---------------------------------------------------------------------------------


def test_settings_choose_the_model_store(tmp_path: Path) -> None:
    from orchestration.definitions import build_model_store, build_resources
    from orchestration.settings import settings_from_env

    local = build_model_store(settings_from_env({"SIGNALWORKS_HOME": str(tmp_path)}))
    assert isinstance(local, LocalModelStore) and local.root == str((tmp_path / "models").resolve())
    settings = settings_from_env({"SIGNALWORKS_HOME": str(tmp_path),
                                  "SIGNALWORKS_MODEL_STORE": "http://127.0.0.1:9000/models"})
    remote = build_resources(settings)["model_store"]
    assert isinstance(remote, ObjectModelStore)
    assert (remote.endpoint, remote.bucket) == ("http://127.0.0.1:9000", "models")
    for bad in ("s3://models", "http://127.0.0.1:9000", "http://host/bucket/key", "minio"):
        with pytest.raises(ValueError, match="SIGNALWORKS_MODEL_STORE"):
            settings_from_env({"SIGNALWORKS_MODEL_STORE": bad})
