"""Reads and idempotent writes of ``signal_outcomes`` and ``signal_snapshots``.

``signal_outcomes`` holds one row per (signal, publisher) whose delivery was *sent* (a review or
skipped delivery published nothing, so it has no outcome). Rows are upserted on that key until
they are ``settled`` (rules in :mod:`ml.signals.outcome_rows`); a settled row is final, and
writing it again changes nothing. ``signal_snapshots`` keeps the first DexScreener price of a
social call per UTC minute.

The read API the scorecards and paper trading use is :func:`read_signal_outcomes`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import polars as pl
from sqlalchemy import Engine, and_, false, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from ml.signals.outcome_rows import OUTCOME_COLUMNS
from resources.warehouse.schema import signal_deliveries, signal_outcomes, signal_snapshots, signals

__all__ = ["OUTCOMES_SCHEMA", "PUBLICATIONS_SCHEMA", "SNAPSHOTS_SCHEMA", "read_signal_outcomes",
           "read_snapshots", "record_snapshots", "unsettled_publications", "upsert_outcomes"]

TS = pl.Datetime("ms", "UTC")
#: Columns of ``signal_outcomes`` as :func:`read_signal_outcomes` returns them (returns are
#: fractions, net of costs, direction-aware; ``return_<h>m`` null until known).
OUTCOMES_SCHEMA: dict[str, pl.DataType] = {
    "signal_id": pl.Int64(), "publisher": pl.String(), "kind": pl.String(), "strategy": pl.String(),
    "exchange": pl.String(), "symbol": pl.String(), "source": pl.String(), "channel": pl.String(),
    "direction": pl.String(), "published_at": TS, "entry_ts": TS, "entry_price": pl.Float64(),
    **{f"return_{h}m": pl.Float64() for h in (1, 2, 3, 5, 10, 15)},
    "exit_reason": pl.String(), "exit_ts": TS, "exit_price": pl.Float64(), "pnl": pl.Float64(),
    "missing": pl.Int32(), "settled": pl.Boolean(), "updated_at": TS,
}
#: A sent delivery and its signal, as :func:`unsettled_publications` returns it.
PUBLICATIONS_SCHEMA: dict[str, pl.DataType] = {
    "signal_id": pl.Int64(), "publisher": pl.String(), "kind": pl.String(), "published_at": TS,
    "base_token": pl.String(), "chain": pl.String(), "address": pl.String(), "symbol": pl.String(),
    "source": pl.String(), "channel": pl.String(), "direction": pl.String(), "payload": pl.String(),
}
SNAPSHOTS_SCHEMA: dict[str, pl.DataType] = {
    "signal_id": pl.Int64(), "minute_ts": TS, "fetched_at": TS, "price_usd": pl.Float64(),
    "liquidity_usd": pl.Float64(), "pair_address": pl.String(),
}
_DESCRIPTION = ("kind", "strategy", "exchange", "symbol", "source", "channel", "direction", "published_at")


def _engine(store: Any) -> Engine:
    """The engine of a :class:`~resources.warehouse.store.Warehouse` (or an engine itself)."""
    return store if isinstance(store, Engine) else store.engine


def _insert(engine: Engine) -> Any:
    return postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert


def _frame(rows: Sequence[Mapping[str, Any]], schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame([dict(r) for r in rows], schema={n: (pl.Datetime("us", "UTC") if t == TS else t)
                                                         for n, t in schema.items()}, orient="row").cast(dict(schema))


def _utc(value: Any) -> Any:
    return value if not isinstance(value, datetime) else value.astimezone(UTC)


def upsert_outcomes(store: Any, frame: pl.DataFrame, *, now: datetime) -> int:
    """Insert or update the rows of ``frame`` (key: ``signal_id``, ``publisher``) in one
    transaction; a stored row that is already settled is left as it is. ``frame`` holds the
    description columns (``kind`` ... ``published_at``) and :data:`OUTCOME_COLUMNS`. Returns
    the number of rows in ``frame``."""
    missing = [c for c in ("signal_id", "publisher", *_DESCRIPTION, *OUTCOME_COLUMNS) if c not in frame.columns]
    if missing:
        raise ValueError(f"outcome rows lack the columns {missing}")
    if not frame.height:
        return 0
    engine = _engine(store)
    rows = [{**{k: _utc(v) for k, v in row.items() if k in OUTCOMES_SCHEMA}, "updated_at": now}
            for row in frame.iter_rows(named=True)]
    statement = _insert(engine)(signal_outcomes)
    changing = {c: statement.excluded[c] for c in (*OUTCOME_COLUMNS, "updated_at")}
    statement = statement.on_conflict_do_update(index_elements=["signal_id", "publisher"], set_=changing,
                                                where=signal_outcomes.c.settled == false())
    with engine.begin() as connection:
        connection.execute(statement, rows)
    return frame.height


def read_signal_outcomes(store: Any, *, kind: str | None = None, published_from: datetime | None = None,
                         published_to: datetime | None = None, settled: bool | None = None,
                         channel: str | None = None) -> pl.DataFrame:
    """Stored outcomes with :data:`OUTCOMES_SCHEMA`, sorted by ``published_at``, ``signal_id``,
    ``publisher``; filtered by kind (``market``/``social``), ``published_from <= published_at <
    published_to``, settled or not, and social channel. Turn them into the scorecards' long form
    with :func:`ml.signals.outcome_rows.outcomes_long`."""
    table = signal_outcomes.c
    query = select(*(table[c] for c in OUTCOMES_SCHEMA)).order_by(table.published_at, table.signal_id,
                                                                   table.publisher)
    for column, value in (("kind", kind), ("settled", settled), ("channel", channel)):
        if value is not None:
            query = query.where(table[column] == value)
    if published_from is not None:
        query = query.where(table.published_at >= published_from)
    if published_to is not None:
        query = query.where(table.published_at < published_to)
    with _engine(store).connect() as connection:
        rows = connection.execute(query).mappings().all()
    return _frame(rows, OUTCOMES_SCHEMA)


def unsettled_publications(store: Any, *, since: datetime | None = None,
                           kinds: Collection[str] = ("market", "social")) -> pl.DataFrame:
    """Every *sent* delivery of a signal of ``kinds`` delivered at or after ``since`` whose outcome
    is not settled yet (stored or not), with its signal (:data:`PUBLICATIONS_SCHEMA`; the payload
    as its JSON text), sorted by delivery time, signal and publisher."""
    d, s, o = signal_deliveries.c, signals.c, signal_outcomes.c
    query = (
        select(s.signal_id, d.publisher, s.kind, d.delivered_at.label("published_at"), s.base_token, s.chain,
               s.address, s.symbol, s.source, s.channel, s.direction, s.payload)
        .select_from(signal_deliveries).join(signals, s.signal_id == d.signal_id)
        .outerjoin(signal_outcomes, and_(o.signal_id == d.signal_id, o.publisher == d.publisher))
        .where(d.status == "sent", s.kind.in_(list(kinds)), or_(o.settled.is_(None), o.settled == false()))
        .order_by(d.delivered_at, s.signal_id, d.publisher)
    )
    if since is not None:
        query = query.where(d.delivered_at >= since)
    with _engine(store).connect() as connection:
        rows = connection.execute(query).mappings().all()
    return _frame(rows, PUBLICATIONS_SCHEMA)


def record_snapshots(store: Any, frame: pl.DataFrame) -> int:
    """Store snapshots (:data:`SNAPSHOTS_SCHEMA` columns); a (signal, minute) already stored keeps
    its first snapshot. Returns how many were new."""
    if not frame.height:
        return 0
    engine = _engine(store)
    rows = [{k: _utc(v) for k, v in row.items() if k in SNAPSHOTS_SCHEMA} for row in frame.iter_rows(named=True)]
    statement = (_insert(engine)(signal_snapshots).on_conflict_do_nothing(index_elements=["signal_id", "minute_ts"])
                 .returning(signal_snapshots.c.signal_id))
    new = 0
    with engine.begin() as connection:
        for row in rows:
            new += connection.execute(statement, row).first() is not None
    return new


def read_snapshots(store: Any, signal_ids: Collection[int]) -> pl.DataFrame:
    """The stored snapshots of ``signal_ids`` (:data:`SNAPSHOTS_SCHEMA`), by signal and minute."""
    wanted = sorted({int(s) for s in signal_ids})
    rows: list[Mapping[str, Any]] = []
    with _engine(store).connect() as connection:
        for start in range(0, len(wanted), 400):
            query = (select(*(signal_snapshots.c[c] for c in SNAPSHOTS_SCHEMA))
                     .where(signal_snapshots.c.signal_id.in_(wanted[start:start + 400]))
                     .order_by(signal_snapshots.c.signal_id, signal_snapshots.c.minute_ts))
            rows.extend(connection.execute(query).mappings().all())
    return _frame(rows, SNAPSHOTS_SCHEMA)
