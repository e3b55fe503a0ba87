"""Warehouse access for call validation: ``validations`` and ``tokens`` rows, and what became of
each validated call (outbox signal and deliveries).

Instants are compared at the precision the warehouse keeps: SQLite stores milliseconds, so an
instant held in memory is cut to the millisecond (:func:`stored_instant`) before it is compared
with one read back from the warehouse.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from ml.social.reputation import REPUTATION_HORIZON_MINUTES, CallOutcome, call_outcomes
from resources.warehouse.schema import (
    signal_deliveries,
    signal_outcomes,
    signals,
    social_events,
    tokens,
    validations,
)

#: The finest instant every warehouse keeps (SQLite: integer milliseconds; PostgreSQL: microseconds).
STORED_RESOLUTION = timedelta(milliseconds=1)


def stored_instant(moment: datetime) -> datetime:
    """``moment`` cut to :data:`STORED_RESOLUTION`: what reading it back from the warehouse gives."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class CallRecord:
    """A validated call with its event's key and what the outbox did with it.

    ``deliveries`` maps publisher -> delivery status (``sent``, ``review``, ``skipped``,
    ``already``) and reason; empty when no signal was queued (rejected) or none delivered yet.
    """

    key: tuple[str, str, str]  # source, channel, message_id of the event
    row: Mapping[str, Any]
    factors: Mapping[str, Any]
    deliveries: Mapping[str, tuple[str, str | None]]


class ValidationStore:
    """Reads and idempotent writes of ``validations`` and ``tokens``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    def is_validated(self, event_id: int, chain: str, address: str) -> bool:
        query = select(validations.c.validation_id).where(
            validations.c.event_id == event_id, validations.c.chain == chain, validations.c.address == address)
        with self.engine.connect() as connection:
            return connection.execute(query).first() is not None

    def record(self, row: Mapping[str, Any]) -> None:
        """Insert one ``validations`` row; a call already validated (same event, chain, address)
        keeps its first row."""
        with self.engine.begin() as connection:
            connection.execute(self._insert(validations).values(**row).on_conflict_do_nothing(
                index_elements=["event_id", "chain", "address"]))

    def channel_outcomes(self, channel: str, before: datetime) -> list[CallOutcome]:
        """Realised outcomes of ``channel``'s published calls known before ``before``: the net
        return at +15 min of each social signal in ``signal_outcomes``, one per call
        (:func:`ml.social.reputation.call_outcomes`). The column type cuts the bound instant like
        the stored ones, so both engines agree."""
        o = signal_outcomes.c
        horizon = timedelta(minutes=REPUTATION_HORIZON_MINUTES + 1)
        ret = o[f"return_{REPUTATION_HORIZON_MINUTES}m"]
        query = select(o.signal_id, o.publisher, o.channel, o.published_at, o.entry_ts, ret).where(
            o.kind == "social", o.channel == channel, ret.is_not(None), o.entry_ts < before - horizon)
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [c for c in call_outcomes(rows) if c.ts < before]

    def remember_token(self, *, chain: str, address: str, base_token: str, symbol: str | None,
                       first_seen: datetime) -> None:
        """Add the token to ``tokens`` unless it is known."""
        with self.engine.begin() as connection:
            connection.execute(self._insert(tokens).values(
                chain=chain, address=address, base_token=base_token, symbol=symbol, first_seen=first_seen,
            ).on_conflict_do_nothing(index_elements=["chain", "address"]))

    def calls_of_events(self, keys: Collection[tuple[str, str, str]]) -> list[CallRecord]:
        """Every validated call of the events with these (source, channel, message_id) keys, in
        event then validation order, with its signal's deliveries."""
        wanted = list(dict.fromkeys(keys))
        key = tuple_(social_events.c.source, social_events.c.channel, social_events.c.message_id)
        records: list[CallRecord] = []
        with self.engine.connect() as connection:
            for start in range(0, len(wanted), 400):
                query = (select(validations, social_events.c.message_id)
                         .join(social_events, social_events.c.event_id == validations.c.event_id)
                         .where(key.in_(wanted[start:start + 400])))
                for row in connection.execute(query).mappings().all():
                    records.append(CallRecord((row["source"], row["channel"], row["message_id"]), dict(row),
                                              json.loads(row["factors"]), {}))
            origins = {f"call:{r.row['event_id']}:{r.row['chain']}:{r.row['address']}": r for r in records}
            deliveries: dict[str, dict[str, tuple[str, str | None]]] = {origin: {} for origin in origins}
            names = list(origins)
            for start in range(0, len(names), 400):
                query = (select(signals.c.origin, signal_deliveries.c.publisher, signal_deliveries.c.status,
                                signal_deliveries.c.reason)
                         .join(signal_deliveries, signal_deliveries.c.signal_id == signals.c.signal_id)
                         .where(signals.c.kind == "social", signals.c.origin.in_(names[start:start + 400])))
                for origin, publisher, status, reason in connection.execute(query).all():
                    deliveries[origin][publisher] = (status, reason)
        records = [CallRecord(r.key, r.row, r.factors, deliveries[origin]) for origin, r in origins.items()]
        return sorted(records, key=lambda r: (r.row["event_id"], r.row["validation_id"]))
