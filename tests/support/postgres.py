"""A throwaway PostgreSQL 15 server for tests, started from the Debian binaries.

``pg_ctl`` refuses to run as root, so as root the server runs as the ``postgres`` user with a
data directory it owns. Authentication is ``trust`` on 127.0.0.1 only; the server is stopped
and its directory deleted when the context exits.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

PG_BIN = Path(os.environ.get("SIGNALWORKS_PG_BIN", "/usr/lib/postgresql/15/bin"))


class PostgresUnavailableError(RuntimeError):
    """The PostgreSQL binaries are not installed on this machine."""


def require_binaries() -> None:
    """Raise :class:`PostgresUnavailableError` (saying how to install them) without the binaries."""
    if not (PG_BIN / "pg_ctl").exists():
        raise PostgresUnavailableError(
            f"PostgreSQL binaries not found in {PG_BIN}: apt-get install postgresql-15 "
            "(or set SIGNALWORKS_PG_BIN)"
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def as_server_user(args: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


@contextlib.contextmanager
def throwaway_postgres(database: str = "signalworks") -> Iterator[str]:
    """Start a server, create ``database``, yield its SQLAlchemy URL (``postgresql+psycopg``)."""
    require_binaries()
    root = Path(tempfile.mkdtemp(prefix="signalworks-pg-"))
    data = root / "data"
    sockets = root / "sockets"
    data.mkdir()
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        shutil.chown(data, "postgres", "postgres")
        shutil.chown(sockets, "postgres", "postgres")
        root.chmod(0o755)
    port = free_port()
    log = root / "server.log"
    try:
        subprocess.run(
            as_server_user([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres",
                             "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8"]),
            check=True, capture_output=True, text=True,
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={sockets} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=100 -c shared_buffers=256MB -c max_wal_size=4GB"
        )
        subprocess.run(
            as_server_user([str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options,
                             "-l", str(log), "-w", "-t", "60", "start"]),
            check=True, capture_output=True, text=True,
        )
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres",
                                     autocommit=True) as conn:
                    conn.execute(f'CREATE DATABASE "{database}"')
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}"
    except subprocess.CalledProcessError as error:
        raise RuntimeError(
            f"could not start PostgreSQL: {error.stderr or error.stdout} (log: {log})"
        ) from error
    finally:
        subprocess.run(
            as_server_user([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
            capture_output=True, text=True,
        )
        shutil.rmtree(root, ignore_errors=True)
