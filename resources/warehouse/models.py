"""The model registry: which model versions were trained on which data, how they scored, where
their artifact is, and which one is in use.

A version is a hash of the model's parameters and data window (``ml.models.xgb.model_version``),
so registering it again (a re-materialisation on the same data) changes nothing. Status moves
between ``candidate`` (registered, not yet checked), ``active`` (in use), ``rejected`` (failed a
check) and ``retired`` (replaced by a newer active version). At most one version per
(name, segment) is active: activating one retires the previous in the same transaction, with
the (name, segment) rows locked first so that two concurrent promotions serialise (and a
partial unique index refuses a second active row whatever the code does).

Instants are UTC-aware and cut to whole milliseconds (what SQLite keeps), so a record reads back
equal to what was written on both engines and expiry compares alike on both.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal, get_args

from sqlalchemy import Connection, Engine, and_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from resources.warehouse.engine import get_engine
from resources.warehouse.schema import model_registry
from resources.warehouse.validations import stored_instant

logger = logging.getLogger(__name__)

ModelStatus = Literal["candidate", "active", "rejected", "retired"]
STATUSES: tuple[str, ...] = get_args(ModelStatus)

__all__ = ["STATUSES", "ModelRecord", "ModelRegistry", "ModelStatus", "UnknownModelError"]


class UnknownModelError(LookupError):
    """No such (name, segment, version) in the registry."""


def _instant(name: str, value: datetime) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError(f"{name} must be an aware UTC datetime, got {value!r}")
    return stored_instant(value.astimezone(UTC))


@dataclass(frozen=True)
class ModelRecord:
    """One registered model version.

    Times are converted to UTC and cut to whole milliseconds on construction. ``metrics`` is a
    JSON object (names to numbers, strings, lists ...), held read-only. ``window_start``/``window_end`` bound the
    training data (inclusive); the model must not be used at or after ``expires_at``.
    """

    name: str
    segment: str
    version: str
    window_start: datetime
    window_end: datetime
    trained_at: datetime
    expires_at: datetime
    artifact_uri: str
    metrics: Mapping[str, Any] = field(default_factory=dict)
    status: ModelStatus = "candidate"
    status_reason: str | None = None

    def __post_init__(self) -> None:
        for name in ("name", "segment", "version", "artifact_uri"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"model record {name} must be a non-empty string, got {getattr(self, name)!r}")
        for name in ("window_start", "window_end", "trained_at", "expires_at"):
            object.__setattr__(self, name, _instant(name, getattr(self, name)))
        if self.window_start > self.window_end:
            raise ValueError(f"window_start {self.window_start} is after window_end {self.window_end}")
        if self.expires_at <= self.trained_at:
            raise ValueError(f"expires_at {self.expires_at} must be after trained_at {self.trained_at}")
        if self.status not in STATUSES:
            raise ValueError(f"unknown model status {self.status!r}; expected one of {', '.join(STATUSES)}")
        if not isinstance(self.metrics, Mapping):
            raise ValueError(f"metrics must be a mapping, got {type(self.metrics).__name__}")
        _metrics_json(self.metrics)  # fail at construction, not at the write
        object.__setattr__(self, "metrics", MappingProxyType(dict(self.metrics)))

    @property
    def key(self) -> tuple[str, str, str]:
        return self.name, self.segment, self.version

    def usable_at(self, at: datetime) -> bool:
        """Active and not expired at ``at``."""
        return self.status == "active" and self.expires_at > _instant("at", at)


def _metrics_json(metrics: Mapping[str, Any]) -> str:
    try:
        return json.dumps(dict(metrics), sort_keys=True, allow_nan=True)
    except (TypeError, ValueError) as e:
        raise ValueError(f"metrics must be JSON-serialisable (numbers, strings, lists, dicts): {e}") from e


def _record(row: Mapping[str, Any]) -> ModelRecord:
    return ModelRecord(
        name=row["name"], segment=row["segment"], version=row["version"], window_start=row["window_start"],
        window_end=row["window_end"], trained_at=row["trained_at"], expires_at=row["expires_at"],
        artifact_uri=row["artifact_uri"], metrics=json.loads(row["metrics"]), status=row["status"],
        status_reason=row["status_reason"],
    )


class ModelRegistry:
    """Reads and idempotent writes of ``model_registry`` (SQLAlchemy Core, SQLite and PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self._insert = postgresql.insert if self.postgres else sqlite.insert

    @classmethod
    def from_url(cls, url: str) -> ModelRegistry:
        return cls(get_engine(url))

    def register_model(self, record: ModelRecord) -> bool:
        """Add ``record``; True when it was new.

        A version already registered keeps its first row: its status, metrics and artifact are
        not touched (a re-run of the same training registers nothing new). A record registered as
        ``active`` goes through :meth:`set_model_status`, so the previous active one is retired.
        """
        values = {
            "name": record.name, "segment": record.segment, "version": record.version,
            "window_start": record.window_start, "window_end": record.window_end,
            "trained_at": record.trained_at, "expires_at": record.expires_at,
            "metrics": _metrics_json(record.metrics), "artifact_uri": record.artifact_uri,
            "status": "candidate" if record.status == "active" else record.status,
            "status_reason": record.status_reason, "status_changed_at": record.trained_at,
        }
        with self.engine.begin() as connection:
            statement = (self._insert(model_registry).values(**values)
                         .on_conflict_do_nothing(index_elements=["name", "segment", "version"])
                         .returning(model_registry.c.version))
            inserted = connection.execute(statement).first() is not None
            if not inserted:
                stored = connection.execute(select(model_registry.c.artifact_uri).where(
                    model_registry.c.name == record.name, model_registry.c.segment == record.segment,
                    model_registry.c.version == record.version)).scalar()
                if stored != record.artifact_uri:
                    logger.warning("model %s/%s %s is already registered with artifact %s; keeping it (not %s)",
                                   record.name, record.segment, record.version, stored, record.artifact_uri)
            if inserted and record.status == "active":
                self._activate(connection, record.name, record.segment, record.version, record.status_reason,
                               record.trained_at)
        return inserted

    def set_model_status(self, name: str, segment: str, version: str, status: ModelStatus,
                         reason: str | None = None, *, at: datetime | None = None) -> None:
        """Set a version's status (and why), at ``at`` (default: now).

        Activating a version retires the active one of the same (name, segment) in the same
        transaction (reason ``replaced by <version>``). Raises :class:`UnknownModelError` for a
        version never registered and ``ValueError`` for an unknown status.
        """
        if status not in STATUSES:
            raise ValueError(f"unknown model status {status!r}; expected one of {', '.join(STATUSES)}")
        moment = _instant("at", at or datetime.now(UTC))
        with self.engine.begin() as connection:
            self._lock(connection, name, segment)
            key = and_(model_registry.c.name == name, model_registry.c.segment == segment,
                       model_registry.c.version == version)
            if connection.execute(select(model_registry.c.version).where(key)).first() is None:
                raise UnknownModelError(f"no model {name}/{segment} version {version} in the registry")
            if status == "active":
                self._activate(connection, name, segment, version, reason, moment)
                return
            connection.execute(update(model_registry).where(key).values(
                status=status, status_reason=reason, status_changed_at=moment))

    def _lock(self, connection: Connection, name: str, segment: str) -> None:
        """Lock every row of (name, segment) until the transaction ends (PostgreSQL; SQLite's
        ``BEGIN IMMEDIATE`` already holds the database's write lock)."""
        if self.postgres:
            connection.execute(select(model_registry.c.version).where(
                model_registry.c.name == name, model_registry.c.segment == segment).with_for_update())

    def _activate(self, connection: Connection, name: str, segment: str, version: str, reason: str | None,
                  moment: datetime) -> None:
        self._lock(connection, name, segment)
        connection.execute(update(model_registry).where(
            model_registry.c.name == name, model_registry.c.segment == segment,
            model_registry.c.status == "active", model_registry.c.version != version,
        ).values(status="retired", status_reason=f"replaced by {version}", status_changed_at=moment))
        connection.execute(update(model_registry).where(
            model_registry.c.name == name, model_registry.c.segment == segment, model_registry.c.version == version,
        ).values(status="active", status_reason=reason, status_changed_at=moment))

    def model(self, name: str, segment: str, version: str) -> ModelRecord | None:
        """One version, or None."""
        query = select(model_registry).where(model_registry.c.name == name, model_registry.c.segment == segment,
                                             model_registry.c.version == version)
        with self.engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        return None if row is None else _record(row)

    def models(self, name: str | None = None, segment: str | None = None) -> list[ModelRecord]:
        """Registered versions, newest ``trained_at`` first (ties by version), optionally filtered."""
        query = select(model_registry)
        if name is not None:
            query = query.where(model_registry.c.name == name)
        if segment is not None:
            query = query.where(model_registry.c.segment == segment)
        query = query.order_by(model_registry.c.trained_at.desc(), model_registry.c.name,
                               model_registry.c.segment, model_registry.c.version.desc())
        with self.engine.connect() as connection:
            return [_record(row) for row in connection.execute(query).mappings().all()]

    def usable_model(self, name: str, segment: str, at: datetime) -> ModelRecord | None:
        """The active version of (name, segment) if it has not expired at ``at``, else None.

        An expired model is never returned, even when it is still the active one: retraining
        must replace it (the expiry check says so).
        """
        moment = _instant("at", at)
        query = select(model_registry).where(
            model_registry.c.name == name, model_registry.c.segment == segment,
            model_registry.c.status == "active", model_registry.c.expires_at > moment)
        with self.engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        return None if row is None else _record(row)
