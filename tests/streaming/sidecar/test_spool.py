"""Spool: durable whole-line appends, ordered drain, atomic removal, torn-line recovery, lock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streaming.spool import Spool, SpoolLockedError
from tests.streaming.sidecar.builders import make_event


def _records(start: int, stop: int) -> list[dict]:
    return [make_event(i).to_record() for i in range(start, stop)]


def test_drain_yields_in_order_and_removes_only_what_was_consumed(tmp_path: Path) -> None:
    path = tmp_path / "spool.jsonl"
    with Spool(path) as spool:
        spool.append(_records(0, 5))
        spool.append(_records(5, 12))
        assert spool.pending == 12
        seen: list[str] = []
        for batch in spool.drain(batch_size=5):
            if len(seen) == 5:
                break  # the consumer fails while handling the second batch: it stays pending
            seen += [r["message_id"] for r in batch]
        assert seen == [str(i) for i in range(5)]
        assert spool.pending == 7
    with Spool(path) as spool:  # the removal survived a reopen
        assert spool.pending == 7
        rest = [r["message_id"] for batch in spool.drain(batch_size=3) for r in batch]
        assert rest == [str(i) for i in range(5, 12)]
        assert spool.pending == 0
        assert path.stat().st_size == 0, "compacted once everything is flushed"
    with Spool(path) as spool:
        assert spool.pending == 0 and list(spool.drain()) == []


def test_a_torn_last_line_is_dropped_on_open(tmp_path: Path) -> None:
    path = tmp_path / "spool.jsonl"
    with Spool(path) as spool:
        spool.append(_records(0, 3))
    whole = path.read_bytes()
    torn = json.dumps(make_event(3).to_record()).encode()[:40]
    path.write_bytes(whole + torn)  # a crash in the middle of a write
    with Spool(path) as spool:
        assert spool.pending == 3 and spool.dropped_torn == 1
        assert path.read_bytes() == whole
        spool.append(_records(3, 4))
        ids = [r["message_id"] for batch in spool.drain() for r in batch]
    assert ids == ["0", "1", "2", "3"]


def test_every_line_on_disk_is_whole_json(tmp_path: Path) -> None:
    path = tmp_path / "spool.jsonl"
    with Spool(path) as spool:
        for i in range(20):
            spool.append(_records(i, i + 1))
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    assert [json.loads(line)["message_id"] for line in raw.splitlines()] == [str(i) for i in range(20)]


def test_offset_beyond_a_compacted_file_restarts_at_zero(tmp_path: Path) -> None:
    path = tmp_path / "spool.jsonl"
    with Spool(path) as spool:
        spool.append(_records(0, 2))
        _records_read, end = spool.read_batch(10)
        spool.commit(end)
    # a crash after the truncate and before the offset file was rewritten
    (tmp_path / "spool.jsonl.offset").write_text("999")
    with Spool(path) as spool:
        assert spool.pending == 0
        spool.append(_records(2, 3))
        assert [r["message_id"] for b in spool.drain() for r in b] == ["2"]


def test_a_spool_is_used_by_one_process_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "spool.jsonl"
    with Spool(path), pytest.raises(SpoolLockedError):
        Spool(path)
    Spool(path).close()  # released on close
