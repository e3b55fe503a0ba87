"""Warehouse access for the social path: the sidecar appends events, sensors read them by id."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from resources.warehouse.engine import get_engine
from resources.warehouse.schema import social_events, validations


@dataclass(frozen=True)
class StoredEvent:
    """One row of ``social_events``."""

    event_id: int
    source: str
    channel: str
    message_id: str
    author: str | None
    text: str
    ts: datetime
    received_at: datetime
    md5: str
    tokens: list[dict[str, Any]]
    attachments: list[str]
    raw: dict[str, Any]


class SocialStore:
    """Idempotent appends and id-ordered reads of ``social_events``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)

    @classmethod
    def from_url(cls, url: str) -> SocialStore:
        return cls(get_engine(url))

    def append(self, records: Sequence[Mapping[str, Any]], *, received_at: datetime | None = None) -> list[int]:
        """Insert events (``Event.to_record()`` dicts) in order, in one transaction.

        An event whose (source, channel, message_id) is already stored is skipped, so replaying
        a spool or a reconnect's backlog never duplicates. Returns the ids of the rows inserted.
        """
        with self.engine.begin() as connection:
            return self.insert(connection, records, received_at=received_at)

    def insert(self, connection: Connection, records: Sequence[Mapping[str, Any]], *,
               received_at: datetime | None = None) -> list[int]:
        """:meth:`append` inside the caller's transaction on ``connection`` (committed by the caller).

        On PostgreSQL each row takes its id from a sequence when it is inserted, not when it
        commits: until this transaction commits, readers may already see higher ids.
        """
        received = received_at or datetime.now(UTC)
        inserted: list[int] = []
        for record in records:
            statement = (
                self._insert(social_events)
                .values(**_row(record, received))
                .on_conflict_do_nothing(index_elements=["source", "channel", "message_id"])
                .returning(social_events.c.event_id)
            )
            event_id = connection.execute(statement).scalar()
            if event_id is not None:
                inserted.append(int(event_id))
        return inserted

    def after(self, event_id: int, *, limit: int = 1000) -> list[StoredEvent]:
        """Events with id greater than ``event_id``, oldest first."""
        query = (select(social_events).where(social_events.c.event_id > event_id)
                 .order_by(social_events.c.event_id).limit(limit))
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [_stored(row) for row in rows]

    def by_ids(self, ids: Sequence[int]) -> list[StoredEvent]:
        if not ids:
            return []
        query = select(social_events).where(social_events.c.event_id.in_(list(ids))).order_by(social_events.c.event_id)
        with self.engine.connect() as connection:
            return [_stored(row) for row in connection.execute(query).mappings().all()]

    def max_event_id(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.coalesce(func.max(social_events.c.event_id), 0))).scalar() or 0)

    def count(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(social_events)).scalar() or 0)


def _row(record: Mapping[str, Any], received_at: datetime) -> dict[str, Any]:
    ts = record["ts"]
    if isinstance(ts, str):
        ts = datetime.fromisoformat(ts)
    if ts.tzinfo is None:
        raise ValueError(f"event {record.get('message_id')!r} has a naive timestamp")
    return {
        "source": record["source"],
        "channel": str(record["channel"]),
        "message_id": str(record["message_id"]),
        "author": record.get("author"),
        "text": record.get("text") or "",
        "ts": ts,
        "received_at": received_at,
        "md5": record["content_md5"],
        "tokens": json.dumps(list(record.get("tokens") or []), sort_keys=True),
        "attachments": json.dumps(list(record.get("attachments") or [])),
        "raw": json.dumps(dict(record.get("raw") or {}), sort_keys=True, default=str),
    }


def _stored(row: Mapping[str, Any]) -> StoredEvent:
    return StoredEvent(
        event_id=int(row["event_id"]), source=row["source"], channel=row["channel"],
        message_id=row["message_id"], author=row["author"], text=row["text"], ts=row["ts"],
        received_at=row["received_at"], md5=row["md5"], tokens=json.loads(row["tokens"]),
        attachments=json.loads(row["attachments"]), raw=json.loads(row["raw"]),
    )


def events_between(store: SocialStore, start: datetime, end: datetime) -> list[StoredEvent]:
    """Events whose message time is in ``[start, end]``, oldest first (context and wave windows)."""
    query = (select(social_events).where(social_events.c.ts >= start, social_events.c.ts <= end)
             .order_by(social_events.c.ts, social_events.c.event_id))
    with store.engine.connect() as connection:
        return [_stored(row) for row in connection.execute(query).mappings().all()]


# -- reads of social_events_sensor (sensors/social_events.py) ------------------------------------

#: Awaited id ranges per query: keeps the OR chain far below SQLite's expression depth limit.
_SPANS_PER_QUERY = 200


@dataclass(frozen=True)
class SnapshotBounds:
    """PostgreSQL snapshot of a read: every transaction id below ``xmin`` had ended when the
    read was taken, and every transaction running then had an id below ``xmax``."""

    xmin: int
    xmax: int


@dataclass(frozen=True)
class SensorRead:
    """What one sensor tick sees, all from one snapshot.

    ``new``: events with an id above the cursor's, oldest first, at most ``limit``.
    ``late``: events whose id lies in one of the awaited spans (ids below the cursor's that were
    missing when a higher id was read), oldest first.
    ``bounds``: the snapshot's bounds on PostgreSQL; ``None`` on SQLite, whose single writer
    commits ids in the order it assigns them.
    """

    new: list[StoredEvent]
    late: list[StoredEvent]
    bounds: SnapshotBounds | None


def read_for_sensor(engine: Engine, *, after: int, awaited: Sequence[tuple[int, int]],
                    limit: int) -> SensorRead:
    """New events after ``after`` and the events that appeared inside ``awaited`` (inclusive
    ``(first, last)`` id spans), read in one REPEATABLE READ transaction on PostgreSQL so the
    rows and the snapshot bounds describe the same instant."""
    connection_options = ({"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {})
    with engine.connect().execution_options(**connection_options) as connection:
        bounds = _snapshot_bounds(connection)
        new_query = (select(social_events).where(social_events.c.event_id > after)
                     .order_by(social_events.c.event_id).limit(limit))
        new = [_stored(row) for row in connection.execute(new_query).mappings().all()]
        late: list[StoredEvent] = []
        for start in range(0, len(awaited), _SPANS_PER_QUERY):
            spans = awaited[start:start + _SPANS_PER_QUERY]
            late_query = select(social_events).where(or_(*(
                and_(social_events.c.event_id >= first, social_events.c.event_id <= last) for first, last in spans)))
            late += [_stored(row) for row in connection.execute(late_query).mappings().all()]
        connection.rollback()  # read only
    return SensorRead(new=new, late=sorted(late, key=lambda e: e.event_id), bounds=bounds)


def _snapshot_bounds(connection: Connection) -> SnapshotBounds | None:
    if connection.dialect.name != "postgresql":
        return None
    xmin, xmax = connection.exec_driver_sql(
        "SELECT pg_snapshot_xmin(s)::text, pg_snapshot_xmax(s)::text FROM pg_current_snapshot() AS s").one()
    return SnapshotBounds(xmin=int(xmin), xmax=int(xmax))


def last_validated_event_id(engine: Engine) -> int:
    """The highest ``social_events`` id with a row in ``validations`` (0 when none): where the
    sensor starts when it has no cursor, so a fresh Dagster instance never re-requests
    validation of events the warehouse already validated."""
    with engine.connect() as connection:
        return int(connection.execute(select(func.coalesce(func.max(validations.c.event_id), 0))).scalar() or 0)
