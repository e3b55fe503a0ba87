"""A durable local JSONL spool for events the warehouse could not take (pure file I/O).

Layout: ``<path>`` holds one JSON record per line, appended only; ``<path>.offset`` holds the
byte offset up to which records have been flushed to the warehouse. The offset file is
replaced atomically (write a temporary file, fsync, rename, fsync the directory), so after a
crash a record is either still pending or flushed, never half of each. A record flushed
whose offset update was lost is flushed again, which the warehouse's unique key
(source, channel, message_id) turns into a no-op: exactly once.

Every :meth:`Spool.append` is a single ``write`` of whole lines followed by ``fsync``; a line
torn by a crash mid-write is dropped when the spool is next opened (it was never
acknowledged). When every record is flushed the file is truncated to zero. A process holds
an exclusive ``flock`` on the spool while it is open, so two listeners cannot share one.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def _encode(records: Sequence[Mapping[str, Any]]) -> bytes:
    return "".join(json.dumps(record, sort_keys=True, separators=(",", ":"), default=str) + "\n"
                   for record in records).encode("utf-8")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    os.fsync(fd)


def append_jsonl(path: Path, record: Mapping[str, Any]) -> None:
    """Append one JSON line to ``path`` durably (single write, then fsync)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        _write_all(fd, _encode([record]))
    finally:
        os.close(fd)


class SpoolLockedError(RuntimeError):
    """Another process has the spool open."""


class Spool:
    """An append-only, crash-safe JSONL queue with an atomically committed read offset.

    Parameters
    ----------
    path
        The spool file (created with its parent directories if missing).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.offset_path = self.path.with_name(self.path.name + ".offset")
        self.corrupt_path = self.path.with_name(self.path.name + ".corrupt")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            os.close(self._fd)
            raise SpoolLockedError(f"{self.path} is in use by another listener") from error
        self._offset = 0
        self._pending = 0
        self.dropped_torn = 0
        self._recover()

    # -- state ---------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Records appended and not yet committed as flushed."""
        return self._pending

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def _size(self) -> int:
        return os.fstat(self._fd).st_size

    def _recover(self) -> None:
        size = self._size()
        if self.offset_path.exists():
            try:
                self._offset = int(self.offset_path.read_text().strip() or 0)
            except ValueError:
                logger.error("unreadable spool offset in %s; re-flushing from the start (idempotent)", self.offset_path)
                self._offset = 0
        if self._offset > size:  # the file was compacted after a full flush
            self._offset = 0
        if size:
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                tail = handle.read()
            cut = tail.rfind(b"\n") + 1
            if cut < len(tail):
                self.dropped_torn = 1
                logger.warning(
                    "spool %s ends with a torn line (%d bytes, never acknowledged); dropping it",
                    self.path, len(tail) - cut,
                )
                os.ftruncate(self._fd, self._offset + cut)
                os.fsync(self._fd)
            self._pending = tail[:cut].count(b"\n")
        if self._pending:
            logger.info("spool %s has %d pending records", self.path, self._pending)

    # -- writing -------------------------------------------------------------------------

    def append(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Append ``records`` durably: one write of whole lines, then ``fsync``.

        When this returns the records survive a crash; if it raises, none was acknowledged
        (a partial write is dropped as a torn line on the next open).
        """
        if not records:
            return
        self._check_open()
        _write_all(self._fd, _encode(records))
        self._pending += len(records)

    # -- reading -------------------------------------------------------------------------

    def read_batch(self, limit: int) -> tuple[list[dict[str, Any]], int]:
        """Up to ``limit`` pending records in order and the offset that commits them.

        Nothing is removed until :meth:`commit` is called with the returned offset. A line
        that is not valid JSON (disk corruption) is copied to ``<path>.corrupt`` and skipped.
        """
        self._check_open()
        records: list[dict[str, Any]] = []
        end = self._offset
        with open(self.path, "rb") as handle:
            handle.seek(self._offset)
            while len(records) < limit:
                line = handle.readline()
                if not line.endswith(b"\n"):
                    break
                end += len(line)
                try:
                    records.append(json.loads(line))
                except ValueError:
                    logger.error("corrupt spool line at byte %d of %s; moved to %s",
                                 end - len(line), self.path, self.corrupt_path)
                    with open(self.corrupt_path, "ab") as corrupt:
                        corrupt.write(line)
        return records, end

    def commit(self, end: int) -> None:
        """Mark everything before byte ``end`` (from :meth:`read_batch`) as flushed, atomically."""
        self._check_open()
        if end <= self._offset:
            return
        with open(self.path, "rb") as handle:
            handle.seek(self._offset)
            flushed = handle.read(end - self._offset).count(b"\n")
        self._offset = end
        self._pending -= flushed
        if end >= self._size():
            os.ftruncate(self._fd, 0)  # everything flushed: compact
            os.fsync(self._fd)
            self._offset = 0
            self._pending = 0
        self._write_offset(self._offset)

    def drain(self, batch_size: int = 500) -> Iterator[list[dict[str, Any]]]:
        """Yield pending records in order, in batches, committing each batch when the next is asked.

        A batch is removed only once the consumer comes back for more (or exhausts the
        iterator), so ``for batch in spool.drain(): store.append(batch)`` never loses a batch
        whose append raised.
        """
        while True:
            records, end = self.read_batch(batch_size)
            if not records and end == self._offset:
                return
            if records:
                yield records
            self.commit(end)

    def _write_offset(self, offset: int) -> None:
        temporary = self.offset_path.with_name(self.offset_path.name + ".tmp")
        with open(temporary, "w") as handle:
            handle.write(str(offset))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.offset_path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    # -- lifecycle -----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._fd < 0:
            raise ValueError(f"spool {self.path} is closed")

    def close(self) -> None:
        """Release the lock and the file (idempotent)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
