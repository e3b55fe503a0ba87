"""HTTP calls of :class:`~resources.models.store.ObjectModelStore` (S3-compatible, path-style).

Errors are translated here, where they enter: timeouts, transport errors and 5xx are transient
(retried with :class:`~resources.retry.RetryPolicy`), every other unexpected status is permanent.
PUT is safe to retry: ``If-None-Match: *`` turns a repeated upload into a 412 whose checksum
comparison makes it a no-op.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import quote

import httpx

from resources.exchanges.errors import RetriesExhaustedError, TransientError
from resources.models.store import (
    ArtifactConflictError,
    ArtifactCorruptError,
    ArtifactMissingError,
    ModelStoreError,
    ModelStoreUnavailableError,
    sha256_hex,
)
from resources.retry import RetryPolicy

if TYPE_CHECKING:
    from resources.models.store import ObjectModelStore

logger = logging.getLogger(__name__)

#: User metadata header carrying the hex SHA-256 of the object's bytes.
SHA256_HEADER = "x-amz-meta-sha256"
SOURCE = "model store"

T = TypeVar("T")


def _client(store: ObjectModelStore) -> httpx.Client:
    from resources.http_common import tls_context

    verify = tls_context() if store.endpoint.startswith("https") else True
    return httpx.Client(base_url=store.endpoint.rstrip("/"), timeout=store.timeout_s, verify=verify,
                        follow_redirects=False)


def _path(store: ObjectModelStore, key: str) -> str:
    return f"/{quote(store.bucket)}/{quote(key)}"


def _call(store: ObjectModelStore, what: str, fn: Callable[[], T]) -> T:
    policy = RetryPolicy(attempts=store.retry_attempts, base_delay=store.retry_base_delay_s)
    try:
        return policy.call(fn, what=what, log=logger)
    except RetriesExhaustedError as e:
        raise ModelStoreUnavailableError(
            f"{what}: the object store at {store.endpoint} did not answer after {store.retry_attempts} "
            f"attempts ({e.__cause__}); check that it is running and reachable") from e


def _send(http: httpx.Client, request: httpx.Request, what: str) -> httpx.Response:
    """Send; transport failures, timeouts and 5xx raise :class:`TransientError`."""
    try:
        response = http.send(request)
    except httpx.TimeoutException as e:
        raise TransientError(f"{what} timed out ({type(e).__name__})", source=SOURCE) from e
    except httpx.TransportError as e:
        raise TransientError(f"{what} failed: {type(e).__name__}: {e}", source=SOURCE) from e
    if response.status_code >= 500:
        raise TransientError(f"{what}: server error HTTP {response.status_code}: {response.text[:200]}",
                             source=SOURCE)
    return response


def _unexpected(what: str, response: httpx.Response) -> ModelStoreError:
    hint = {403: " (access denied: check the bucket's policy)",
            404: " (no such bucket? create it first)"}.get(response.status_code, "")
    return ModelStoreError(f"{what}: HTTP {response.status_code}{hint}: {response.text[:300]}")


def head_object(store: ObjectModelStore, uri: str, key: str) -> str | None:
    """The object's recorded SHA-256 (hex), or None when there is no such object."""
    what = f"HEAD {uri}"

    def attempt() -> str | None:
        with _client(store) as http:
            response = _send(http, http.build_request("HEAD", _path(store, key)), what)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise _unexpected(what, response)
        recorded = response.headers.get(SHA256_HEADER)
        if not recorded:
            raise ArtifactCorruptError(f"object {uri} has no {SHA256_HEADER} metadata: it was not put by a "
                                       "model store, its integrity cannot be checked")
        return recorded.lower()

    return _call(store, what, attempt)


def put_object(store: ObjectModelStore, uri: str, key: str, payload: bytes) -> None:
    """Create the object; an existing one with the same checksum is left as it is."""
    digest = sha256_hex(payload)
    what = f"PUT {uri}"

    def attempt() -> int:
        headers = {SHA256_HEADER: digest, "If-None-Match": "*", "Content-Type": "application/octet-stream"}
        with _client(store) as http:
            request = http.build_request("PUT", _path(store, key), content=payload, headers=headers)
            response = _send(http, request, what)
        if response.status_code in (200, 201, 204, 412):
            return response.status_code
        raise _unexpected(what, response)

    if _call(store, what, attempt) != 412:
        return
    recorded = head_object(store, uri, key)
    if recorded is None:  # deleted between the PUT and the HEAD: nothing to conflict with
        raise ModelStoreError(f"{what}: the store reported the object as existing, then as missing; retry the put")
    if recorded != digest:
        raise ArtifactConflictError(
            f"{uri} already holds a different artifact (sha256 {recorded[:12]}…, new bytes {digest[:12]}…): "
            "artifacts are immutable, store the new one under a new key")


def get_object(store: ObjectModelStore, uri: str, key: str) -> bytes:
    """The object's bytes after checking them against its recorded SHA-256."""
    what = f"GET {uri}"

    def attempt() -> httpx.Response:
        with _client(store) as http:
            response = _send(http, http.build_request("GET", _path(store, key)), what)
            response.read()
        return response

    response = _call(store, what, attempt)
    if response.status_code == 404:
        raise ArtifactMissingError(f"no artifact at {uri} (the object store answered 404: {response.text[:200]})")
    if response.status_code != 200:
        raise _unexpected(what, response)
    payload = response.content
    recorded = response.headers.get(SHA256_HEADER)
    if not recorded:
        raise ArtifactCorruptError(f"object {uri} has no {SHA256_HEADER} metadata: its integrity cannot be checked")
    actual = sha256_hex(payload)
    if actual != recorded.lower():
        raise ArtifactCorruptError(f"artifact {uri} is corrupt: sha256 {actual[:12]}… of {len(payload)} bytes "
                                   f"differs from {recorded[:12]}… recorded at put time")
    return payload
