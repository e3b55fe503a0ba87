"""Offline twin of an S3-compatible object store: a small threaded HTTP server on loopback.

It speaks the path-style subset :class:`~resources.models.store.ObjectModelStore` uses:

* ``PUT /{bucket}`` creates a bucket (200; idempotent).
* ``PUT /{bucket}/{key}`` stores the body. ``If-None-Match: *`` makes it create-only (412
  Precondition Failed when the key exists). When ``x-amz-meta-sha256`` is sent it must match the
  body (else 400 BadDigest) and is returned on reads; ``x-amz-meta-*`` headers are kept.
* ``GET``/``HEAD /{bucket}/{key}``: the object (``Content-Length``, ``ETag`` = quoted MD5,
  metadata headers), 404 NoSuchKey / NoSuchBucket otherwise.

Errors carry S3-style XML bodies. Objects live in memory, or on disk under ``root`` (one file
per object and a ``.meta.json`` beside it) so that tests can damage a stored object for real.
Run it standalone with ``python -m resources.models.object_store_server --root DIR --port 9000``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote, urlsplit

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
_KEY = re.compile(r"[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*")
META_SUFFIX = ".meta.json"


class ObjectStoreServer:
    """An S3-compatible twin serving on ``127.0.0.1`` from a daemon thread while it is open.

    Parameters
    ----------
    root
        Directory of the objects (``root/<bucket>/<key>``); None keeps them in memory.
    buckets
        Buckets that exist from the start.
    port
        0 picks a free port.
    """

    def __init__(self, root: Path | str | None = None, buckets: Iterable[str] = ("models",), port: int = 0) -> None:
        self.root = Path(root) if root is not None else None
        self._lock = threading.Lock()
        self._memory: dict[tuple[str, str], tuple[bytes, dict[str, str]]] = {}
        self._buckets: set[str] = set()
        self._failures: list[int] = []
        self.requests: list[tuple[str, str]] = []
        self._hold = threading.Event()
        self._hold.set()
        for bucket in buckets:
            self.create_bucket(bucket)
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> ObjectStoreServer:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._hold.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    # -- storage ------------------------------------------------------------------------------
    def create_bucket(self, bucket: str) -> None:
        if not _BUCKET.fullmatch(bucket):
            raise ValueError(f"invalid bucket name {bucket!r}")
        with self._lock:
            self._buckets.add(bucket)
            if self.root is not None:
                (self.root / bucket).mkdir(parents=True, exist_ok=True)

    def object_path(self, bucket: str, key: str) -> Path:
        """Where an object's bytes live on disk (on-disk servers only)."""
        if self.root is None:
            raise ValueError("this object store keeps its objects in memory")
        return self.root / bucket / key

    def _load(self, bucket: str, key: str) -> tuple[bytes, dict[str, str]] | None:
        if self.root is None:
            return self._memory.get((bucket, key))
        path = self.object_path(bucket, key)
        meta = path.with_name(path.name + META_SUFFIX)
        if not (path.is_file() and meta.is_file()):
            return None
        return path.read_bytes(), json.loads(meta.read_text())

    def _store(self, bucket: str, key: str, body: bytes, meta: dict[str, str]) -> None:
        if self.root is None:
            self._memory[(bucket, key)] = (body, meta)
            return
        path = self.object_path(bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        path.with_name(path.name + META_SUFFIX).write_text(json.dumps(meta, sort_keys=True))

    # -- fault injection for tests ---------------------------------------------------------------
    def fail_next(self, status: int, times: int = 1) -> None:
        """Answer the next ``times`` requests with ``status`` (e.g. 503) before serving normally."""
        with self._lock:
            self._failures.extend([status] * times)

    def hold(self) -> None:
        """Keep every request waiting (until :meth:`release`): a store that stopped answering."""
        self._hold.clear()

    def release(self) -> None:
        self._hold.set()

    def _next_failure(self) -> int | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None


def _error(code: str, message: str, resource: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message>'
            f"<Resource>{resource}</Resource></Error>").encode()


def _handler(store: ObjectStoreServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            return

        def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
                   content_length: int | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if body and "Content-Type" not in (headers or {}):
                self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body) if content_length is None else content_length))
            self.end_headers()
            if body and self.command != "HEAD":
                self.wfile.write(body)

        def _target(self) -> tuple[str, str] | None:
            """(bucket, key) of the request; key '' for the bucket itself. None after an error reply."""
            path = unquote(urlsplit(self.path).path)
            bucket, _, key = path.lstrip("/").partition("/")
            if not _BUCKET.fullmatch(bucket) or (key and not _KEY.fullmatch(key)) or ".." in key.split("/"):
                self._reply(400, _error("InvalidRequest", "bad bucket or key", path))
                return None
            return bucket, key

        def _prelude(self) -> tuple[str, str] | None:
            store.requests.append((self.command, self.path))
            body_length = int(self.headers.get("Content-Length") or 0)
            self._body = self.rfile.read(body_length) if body_length else b""
            store._hold.wait(timeout=60)
            failure = store._next_failure()
            if failure is not None:
                self._reply(failure, _error("InjectedFault", f"injected HTTP {failure}", self.path))
                return None
            return self._target()

        def do_PUT(self) -> None:
            target = self._prelude()
            if target is None:
                return
            bucket, key = target
            if not key:
                store.create_bucket(bucket)
                self._reply(200)
                return
            body = self._body
            sent = self.headers.get("x-amz-meta-sha256")
            if sent is not None and sent.lower() != hashlib.sha256(body).hexdigest():
                self._reply(400, _error("BadDigest", "x-amz-meta-sha256 does not match the body", self.path))
                return
            meta = {name.lower(): value for name, value in self.headers.items()
                    if name.lower().startswith("x-amz-meta-")}
            meta["etag"] = f'"{hashlib.md5(body).hexdigest()}"'  # S3's ETag, not a security use
            with store._lock:
                if bucket not in store._buckets:
                    self._reply(404, _error("NoSuchBucket", "the bucket does not exist", bucket))
                    return
                if self.headers.get("If-None-Match") == "*" and store._load(bucket, key) is not None:
                    self._reply(412, _error("PreconditionFailed", "the object already exists", self.path))
                    return
                store._store(bucket, key, body, meta)
            self._reply(200, headers={"ETag": meta["etag"]})

        def _read(self) -> None:
            target = self._prelude()
            if target is None:
                return
            bucket, key = target
            with store._lock:
                if bucket not in store._buckets:
                    self._reply(404, _error("NoSuchBucket", "the bucket does not exist", bucket))
                    return
                found = store._load(bucket, key) if key else None
            if found is None:
                self._reply(404, _error("NoSuchKey", "the object does not exist", self.path))
                return
            body, meta = found
            headers = {"Content-Type": "application/octet-stream", "ETag": meta["etag"],
                       **{name: value for name, value in meta.items() if name.startswith("x-amz-meta-")}}
            self._reply(200, body, headers)

        do_GET = _read  # noqa: N815
        do_HEAD = _read  # noqa: N815

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve an S3-compatible object store twin on loopback.")
    parser.add_argument("--root", help="directory of the objects (default: in memory)")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--bucket", action="append", default=None, help="bucket to create (repeatable)")
    args = parser.parse_args(argv)
    server = ObjectStoreServer(args.root, buckets=args.bucket or ["models"], port=args.port)
    print(f"object store twin on {server.endpoint}, buckets {', '.join(args.bucket or ['models'])}")
    try:
        server._thread.join()
    except KeyboardInterrupt:
        server.close()


if __name__ == "__main__":
    main()
