"""A throwaway PostgreSQL 15 server that a test can stop and start again mid-test.

Modelled on :mod:`tests.support.postgres`: the Debian binaries, run as the ``postgres`` user
when the tests run as root, ``trust`` authentication on 127.0.0.1. The data directory and
port stay the same across :meth:`ControlledPostgres.stop` / :meth:`ControlledPostgres.start`,
so the URL stays valid and committed data survives (``fsync`` stays on: a fast shutdown is a
clean checkpoint anyway).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.support.postgres import PG_BIN, as_server_user, free_port, require_binaries


class ControlledPostgres:
    """One server in a private directory; :meth:`stop` and :meth:`start` keep data and port."""

    def __init__(self, database: str = "signalworks") -> None:
        require_binaries()
        self.database = database
        self.root = Path(tempfile.mkdtemp(prefix="signalworks-pgctl-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sockets"
        self.log = self.root / "pg.log"
        self.port = free_port()
        self.running = False
        self.data.mkdir()
        self.sockets.mkdir()
        if os.geteuid() == 0:
            for path in (self.root, self.data, self.sockets):
                shutil.chown(path, "postgres", "postgres")
            self.root.chmod(0o755)
        self._run([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                   "--encoding=UTF8", "--locale=C.UTF-8"])

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the test database (``postgresql+psycopg``)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{self.database}"

    def _run(self, args: list[str]) -> None:
        try:
            subprocess.run(as_server_user(args), check=True, capture_output=True, text=True)
        except subprocess.CalledProcessError as error:
            raise RuntimeError(f"{args[0]} failed: {error.stderr or error.stdout} (log: {self.log})") from error

    def start(self) -> None:
        """Start (or restart) the server and wait until it accepts connections."""
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.sockets} "
            "-c synchronous_commit=on -c max_connections=50 -c shared_buffers=32MB"
        )
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.log),
                   "-w", "-t", "60", "start"])
        self.running = True
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                                     autocommit=True) as conn:
                    exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone()
                    if not exists:
                        conn.execute(f'CREATE DATABASE "{self.database}"')
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def create_database(self, name: str) -> str:
        """Create database ``name`` on the running server; returns its SQLAlchemy URL."""
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m <mode>`` (``fast`` disconnects every client and checkpoints)."""
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])
        self.running = False

    def destroy(self) -> None:
        """Stop the server if it runs and delete its directory."""
        if self.running:
            with contextlib.suppress(RuntimeError):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def controlled_postgres(database: str = "signalworks") -> Iterator[ControlledPostgres]:
    """A started :class:`ControlledPostgres`, destroyed on exit."""
    server = ControlledPostgres(database)
    try:
        server.start()
        yield server
    finally:
        server.destroy()
