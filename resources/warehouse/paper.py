"""Paper accounts in the warehouse: the market signals each publisher sent, and the account tables.

``paper_positions`` holds one row per (publisher, signal): rejected, open or closed;
``paper_equity`` the account's marks (a mark repeating the previous one is not stored). A
publisher's rows are rewritten from a point in time on (:meth:`PaperLedger.replace_from`) in one
transaction, so a run that fails half-way leaves the previous rows whole.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy import Engine, and_, delete, insert, select

from ml.strategies.signal import MarketSignal
from resources.warehouse.schema import paper_equity, paper_positions, signal_deliveries, signals
from resources.warehouse.store import Slice, Warehouse

logger = logging.getLogger(__name__)

_TS = pl.Datetime("us", "UTC")
POSITIONS_SCHEMA: dict[str, pl.DataType] = {
    "publisher": pl.String(), "signal_id": pl.Int64(), "strategy": pl.String(), "exchange": pl.String(),
    "symbol": pl.String(), "direction": pl.String(), "trigger_ts": _TS, "decided_at": _TS,
    "status": pl.String(), "reason": pl.String(), "entry_ts": _TS, "entry_price": pl.Float64(),
    "exit_ts": _TS, "exit_price": pl.Float64(), "quantity": pl.Float64(), "notional": pl.Float64(),
    "costs": pl.Float64(), "pnl": pl.Float64(), "net_return": pl.Float64(), "config_version": pl.String(),
}
EQUITY_TABLE_SCHEMA: dict[str, pl.DataType] = {
    "publisher": pl.String(), "ts": _TS, "equity": pl.Float64(), "cash": pl.Float64(),
    "open_positions": pl.Int64(), "config_version": pl.String(),
}
POSITION_STATUSES = ("rejected", "open", "closed")


@dataclass(frozen=True)
class PublishedSignal:
    """A market signal as one publisher sent it."""

    signal_id: int
    publisher: str
    delivered_at: datetime
    signal: MarketSignal


def market_signal_from_record(record: Mapping[str, Any]) -> MarketSignal:
    """The :class:`MarketSignal` whose :meth:`~MarketSignal.to_record` gave ``record``.

    Raises
    ------
    ValueError
        A field is missing or invalid (the message names it).
    """
    try:
        return MarketSignal(
            strategy=str(record["strategy"]), exchange=str(record["exchange"]), symbol=str(record["symbol"]),
            timeframe=str(record["timeframe"]), direction=record["direction"],
            trigger_ts=datetime.fromisoformat(str(record["trigger_ts"])), entry=float(record["entry"]),
            stop=float(record["stop"]), targets=tuple(float(t) for t in record["targets"]),
            confidence=float(record["confidence"]), risk_level=record["risk_level"], size=float(record["size"]),
            expires_at=datetime.fromisoformat(str(record["expires_at"])), factors=dict(record.get("factors") or {}),
        )
    except KeyError as error:
        raise ValueError(f"market signal payload lacks {error.args[0]!r}") from error
    except (TypeError, AttributeError) as error:
        raise ValueError(f"market signal payload is malformed: {error}") from error


def published_market_signals(engine: Engine) -> tuple[list[PublishedSignal], dict[int, str]]:
    """Every market signal with a ``sent`` delivery, one entry per (signal, publisher), by signal id;
    and the signals whose payload is not a market signal (id -> why), which are left out."""
    query = (
        select(signals.c.signal_id, signals.c.payload, signal_deliveries.c.publisher, signal_deliveries.c.delivered_at)
        .join(signal_deliveries, signal_deliveries.c.signal_id == signals.c.signal_id)
        .where(and_(signals.c.kind == "market", signal_deliveries.c.status == "sent"))
        .order_by(signals.c.signal_id, signal_deliveries.c.publisher)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    published: list[PublishedSignal] = []
    bad: dict[int, str] = {}
    for signal_id, payload, publisher, delivered_at in rows:
        try:
            signal = market_signal_from_record(json.loads(payload))
        except ValueError as error:  # json.JSONDecodeError is a ValueError too
            bad[int(signal_id)] = str(error)
            continue
        published.append(PublishedSignal(int(signal_id), publisher, delivered_at, signal))
    return published, bad


class PaperLedger:
    """The ``paper_positions`` and ``paper_equity`` tables."""

    def __init__(self, store: Warehouse) -> None:
        self.store = store

    def positions(self, publisher: str | None = None) -> pl.DataFrame:
        """Stored positions (one publisher's, or all), by publisher, decision time and signal id."""
        where = Slice({"publisher": publisher} if publisher is not None else {})
        return self.store.read("paper_positions", POSITIONS_SCHEMA, where,
                               order_by=("publisher", "decided_at", "signal_id"))

    def equity(self, publisher: str | None = None) -> pl.DataFrame:
        """Stored equity marks (one publisher's, or all), by publisher and time."""
        where = Slice({"publisher": publisher} if publisher is not None else {})
        return self.store.read("paper_equity", EQUITY_TABLE_SCHEMA, where, order_by=("publisher", "ts"))

    def replace_from(self, publisher: str, since: datetime | None, positions: pl.DataFrame,
                     marks: pl.DataFrame) -> None:
        """Replace ``publisher``'s positions decided at or after ``since`` and its marks after
        ``since`` (everything when ``since`` is None) with ``positions`` and ``marks``, in one
        transaction.

        Raises
        ------
        ValueError
            A row belongs to another publisher or lies before ``since``.
        """
        for name, frame, column in (("positions", positions, "decided_at"), ("marks", marks, "ts")):
            if frame.height and (frame["publisher"] != publisher).any():
                raise ValueError(f"{name} hold rows of another publisher than {publisher!r}")
            if since is not None and frame.height and frame[column].min() < since:  # type: ignore[operator]
                raise ValueError(f"{name} hold rows before {since}: outside the part being replaced")
        drop_positions = delete(paper_positions).where(paper_positions.c.publisher == publisher)
        drop_marks = delete(paper_equity).where(paper_equity.c.publisher == publisher)
        if since is not None:
            drop_positions = drop_positions.where(paper_positions.c.decided_at >= since)
            drop_marks = drop_marks.where(paper_equity.c.ts > since)
        with self.store.engine.begin() as connection:
            connection.execute(drop_positions)
            connection.execute(drop_marks)
            if positions.height:
                connection.execute(insert(paper_positions), _rows(positions, POSITIONS_SCHEMA))
            if marks.height:
                connection.execute(insert(paper_equity), _rows(marks, EQUITY_TABLE_SCHEMA))


def _rows(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> list[dict[str, Any]]:
    return frame.select([pl.col(c).cast(t) for c, t in schema.items()]).to_dicts()
