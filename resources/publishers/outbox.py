"""The signals outbox and the per-publisher trade blacklist.

Every signal (social or market) is written once to ``signals``; the publish op drains it. For each
(publisher, signal) the claim in ``publisher_trades``, the send and the ``signal_deliveries`` row
happen inside ONE database transaction:

1. insert the (signal, publisher) delivery row; if it exists, nothing to do (re-runs and racing
   runs are no-ops: a concurrent insert of the same key waits for our commit, then conflicts);
2. claim (publisher, base_token): insert, or take over a claim whose ``expires_at`` has passed.
   On PostgreSQL a concurrent transaction claiming the same pair blocks on the unique key until
   the first one commits, then finds the claim taken; on SQLite the write lock (``BEGIN
   IMMEDIATE``) serialises the same way;
3. send; if sending raises, the transaction rolls back and the claim is released for a retry;
4. record the delivery and commit.

So a (publisher, token) pair is never published twice, by racing runs or across restarts. The one
window left is a process killed after the chat accepted the message and before the commit: the
claim rolls back and a later run sends again. Telegram has no idempotency key to close it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from resources.warehouse.schema import publisher_trades, signal_deliveries, signals


@dataclass(frozen=True)
class OutboxSignal:
    signal_id: int
    kind: str
    origin: str
    base_token: str
    chain: str | None
    address: str | None
    symbol: str | None
    source: str | None
    channel: str | None
    direction: str | None
    confidence: float
    payload: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class Delivery:
    signal_id: int
    publisher: str
    status: str  # sent | review | skipped | expired | failed | already
    reason: str | None = None
    external_ref: str | None = None


class Outbox:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    def enqueue(self, *, kind: str, origin: str, base_token: str, confidence: float,
                payload: dict[str, Any], chain: str | None = None, address: str | None = None,
                symbol: str | None = None, source: str | None = None, channel: str | None = None,
                direction: str | None = None, now: datetime | None = None) -> int | None:
        """Add a pending signal; returns its id, or None when ``(kind, origin)`` is already queued."""
        moment = now or datetime.now(UTC)
        statement = (
            self._insert(signals)
            .values(kind=kind, origin=origin, base_token=base_token, chain=chain, address=address,
                    symbol=symbol, source=source, channel=channel, direction=direction,
                    confidence=float(confidence), payload=json.dumps(payload, sort_keys=True, default=str),
                    status="pending", created_at=moment, updated_at=moment)
            .on_conflict_do_nothing(index_elements=["kind", "origin"])
            .returning(signals.c.signal_id)
        )
        with self.engine.begin() as connection:
            value = connection.execute(statement).scalar()
        return None if value is None else int(value)

    def pending(self, *, limit: int = 500, kinds: Sequence[str] | None = None) -> list[OutboxSignal]:
        """Pending signals, highest confidence first; only of ``kinds`` when given."""
        query = select(signals).where(signals.c.status == "pending")
        if kinds is not None:
            query = query.where(signals.c.kind.in_(list(kinds)))
        query = query.order_by(signals.c.confidence.desc(), signals.c.signal_id).limit(limit)
        with self.engine.connect() as connection:
            return [_signal(row) for row in connection.execute(query).mappings().all()]

    def deliver(self, signal: OutboxSignal, publisher: str, send: Callable[[], str | None], *,
                blacklist: bool = True, expires_at: datetime | None = None, status: str = "sent",
                now: datetime | None = None) -> Delivery:
        """Claim, send and record in one transaction (see the module docstring)."""
        moment = now or datetime.now(UTC)
        with self.engine.begin() as connection:
            if not self._open_delivery(connection, signal, publisher, moment):
                return Delivery(signal.signal_id, publisher, "already", "delivered by an earlier or concurrent run")
            if blacklist:
                claim = (
                    self._insert(publisher_trades)
                    .values(publisher=publisher, base_token=signal.base_token, signal_id=signal.signal_id,
                            claimed_at=moment, expires_at=expires_at)
                    .on_conflict_do_update(
                        index_elements=["publisher", "base_token"],
                        set_={"signal_id": signal.signal_id, "claimed_at": moment, "expires_at": expires_at},
                        where=and_(publisher_trades.c.expires_at.is_not(None),
                                   publisher_trades.c.expires_at <= moment),
                    )
                    .returning(publisher_trades.c.signal_id)
                )
                if connection.execute(claim).scalar() is None:
                    holder = connection.execute(select(publisher_trades.c.signal_id).where(and_(
                        publisher_trades.c.publisher == publisher,
                        publisher_trades.c.base_token == signal.base_token))).scalar()
                    return self._close(connection, signal, publisher, "skipped",
                                       f"{signal.base_token} already published by signal {holder}", None)
            external_ref = send()
            return self._close(connection, signal, publisher, status, None, external_ref)

    def skip(self, signal: OutboxSignal, publisher: str, reason: str, *, now: datetime | None = None) -> Delivery:
        """Record that ``publisher``'s routing rules rejected ``signal``."""
        return self.record(signal, publisher, "skipped", reason, now=now)

    def record(self, signal: OutboxSignal, publisher: str, status: str, reason: str, *,
               now: datetime | None = None) -> Delivery:
        """Record that ``signal`` was not sent to ``publisher`` and why: ``skipped`` (routing),
        ``expired`` (older than MAX_SIGNAL_AGE at its turn) or ``failed`` (cannot be rendered).
        ``already`` when the pair has a delivery row (nothing changes then)."""
        if status not in ("skipped", "expired", "failed"):
            raise ValueError(f"record() takes skipped, expired or failed, not {status!r}")
        moment = now or datetime.now(UTC)
        with self.engine.begin() as connection:
            if not self._open_delivery(connection, signal, publisher, moment):
                return Delivery(signal.signal_id, publisher, "already", "delivered by an earlier or concurrent run")
            return self._close(connection, signal, publisher, status, reason, None)

    def close_signals(self, signal_ids: Sequence[int], *, now: datetime | None = None,
                      status: str = "done") -> None:
        """Mark signals ``done`` once every publisher has a delivery row for them (``expired``
        when every publisher that was due to send one found it too old)."""
        if not signal_ids:
            return
        if status not in ("done", "expired"):
            raise ValueError(f"a closed signal is done or expired, not {status!r}")
        with self.engine.begin() as connection:
            connection.execute(update(signals).where(signals.c.signal_id.in_(list(signal_ids)))
                               .values(status=status, updated_at=now or datetime.now(UTC)))

    def status_of(self, signal_id: int) -> str | None:
        """The outbox status of one signal (pending, done or expired); None when unknown."""
        with self.engine.connect() as connection:
            return connection.execute(select(signals.c.status).where(signals.c.signal_id == signal_id)).scalar()

    def deliveries(self, *, publisher: str | None = None) -> list[Delivery]:
        query = select(signal_deliveries).order_by(signal_deliveries.c.delivered_at, signal_deliveries.c.signal_id)
        if publisher is not None:
            query = query.where(signal_deliveries.c.publisher == publisher)
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [Delivery(int(r["signal_id"]), r["publisher"], r["status"], r["reason"], r["external_ref"])
                for r in rows]

    def claims(self, publisher: str) -> dict[str, int]:
        """base_token -> signal id of every live or expired claim of ``publisher``."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(publisher_trades.c.base_token, publisher_trades.c.signal_id)
                                      .where(publisher_trades.c.publisher == publisher)).all()
        return {row[0]: int(row[1]) for row in rows}

    def _open_delivery(self, connection: Any, signal: OutboxSignal, publisher: str, moment: datetime) -> bool:
        """Insert the (signal, publisher) delivery row as ``pending``; False when it exists.

        The primary key makes a concurrent transaction wait on this row until ours ends, so one
        (signal, publisher) is only ever handled by one run, blacklist or not.
        """
        statement = (
            self._insert(signal_deliveries)
            .values(signal_id=signal.signal_id, publisher=publisher, status="pending", delivered_at=moment)
            .on_conflict_do_nothing(index_elements=["signal_id", "publisher"])
            .returning(signal_deliveries.c.signal_id)
        )
        return connection.execute(statement).scalar() is not None

    @staticmethod
    def _close(connection: Any, signal: OutboxSignal, publisher: str, status: str, reason: str | None,
               external_ref: str | None) -> Delivery:
        connection.execute(
            update(signal_deliveries)
            .where(and_(signal_deliveries.c.signal_id == signal.signal_id, signal_deliveries.c.publisher == publisher))
            .values(status=status, reason=reason, external_ref=external_ref))
        return Delivery(signal.signal_id, publisher, status, reason, external_ref)


def _signal(row: Any) -> OutboxSignal:
    return OutboxSignal(
        signal_id=int(row["signal_id"]), kind=row["kind"], origin=row["origin"], base_token=row["base_token"],
        chain=row["chain"], address=row["address"], symbol=row["symbol"], source=row["source"],
        channel=row["channel"], direction=row["direction"], confidence=float(row["confidence"]),
        payload=json.loads(row["payload"]), created_at=row["created_at"],
    )


__all__ = ["Delivery", "Outbox", "OutboxSignal"]
