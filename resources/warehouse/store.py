"""The warehouse: idempotent slice writes and polars reads over SQLite or PostgreSQL.

Every write replaces a precisely-defined slice inside one transaction (delete the slice, insert the
new rows), so re-running it is idempotent and a crash mid-write leaves the previous slice intact.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import polars as pl
from sqlalchemy import Engine, text

from ml.marketdata.frames import CANDLE_SCHEMA, COINGECKO_SCHEMA, DERIVATIVES_SCHEMA, TS
from resources.warehouse import bulk, candles
from resources.warehouse.candles import sorted_last_wins
from resources.warehouse.engine import get_engine
from resources.warehouse.schema import PARTITIONED_TABLES

if TYPE_CHECKING:
    from resources.warehouse.models import ModelRegistry

logger = logging.getLogger(__name__)

__all__ = ["Slice", "Warehouse", "sorted_last_wins"]

# Per-series MIN/MAX in a correlated subquery: one index lookup per series on (series_id, ts)
# instead of scanning every bar of the exchange and timeframe.
_LATEST_SQL = ("SELECT MAX((SELECT MAX(b.ts) FROM candle_bars b WHERE b.series_id = s.series_id)) "
               "FROM candle_series s WHERE s.exchange = :e AND s.timeframe = :tf")
_FIRSTS_SQL = ("SELECT s.symbol, (SELECT MIN(b.ts) FROM candle_bars b WHERE b.series_id = s.series_id) "
               "FROM candle_series s WHERE s.exchange = :e AND s.timeframe = :tf")

_SERIES_SCHEMA: dict[str, pl.DataType] = {"series_id": pl.Int32(), "exchange": pl.String(), "symbol": pl.String()}
MARKETS_SCHEMA: dict[str, pl.DataType] = {
    "exchange": pl.String(),
    "symbol": pl.String(),
    "base": pl.String(),
    "quote": pl.String(),
    "settle": pl.String(),
    "market_type": pl.String(),
    "is_spot": pl.Boolean(),
    "contract": pl.Boolean(),
    "active": pl.Boolean(),
    "quote_volume_24h": pl.Float64(),
    "liquidity_rank": pl.Int64(),
    "updated_at": TS,
}
DECLARATIONS_SCHEMA: dict[str, pl.DataType] = {
    "exchange": pl.String(),
    "symbol": pl.String(),
    "timeframes": pl.String(),
    "reason": pl.String(),
    "created_at": TS,
}
COINGECKO_TABLE_SCHEMA: dict[str, pl.DataType] = {
    **COINGECKO_SCHEMA,
    "days_since_ath": pl.Float64(),
    "within_5pct_of_ath": pl.Boolean(),
    "within_10pct_of_ath": pl.Boolean(),
    "within_15pct_of_ath": pl.Boolean(),
    "within_90pct_of_ath": pl.Boolean(),
}


@dataclass(frozen=True)
class Slice:
    """A set of rows a write replaces: equality filters, ``IN`` filters and a ``ts`` range."""

    equals: dict[str, Any]
    within: dict[str, Sequence[Any]] | None = None
    ts_column: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    def where(self, postgres: bool) -> tuple[str, dict[str, Any]]:
        clauses: list[str] = []
        params: dict[str, Any] = {}
        for i, (column, value) in enumerate(self.equals.items()):
            clauses.append(f'"{column}" = :e{i}')
            params[f"e{i}"] = _bind(value, postgres)
        for i, (column, values) in enumerate((self.within or {}).items()):
            names = [f"w{i}_{j}" for j in range(len(values))]
            if not names:
                clauses.append("1 = 0")
                continue
            clauses.append(f'"{column}" IN ({", ".join(":" + n for n in names)})')
            params.update({n: _bind(v, postgres) for n, v in zip(names, values, strict=True)})
        if self.ts_column is not None:
            if self.start is not None:
                clauses.append(f'"{self.ts_column}" >= :start')
                params["start"] = _bind(self.start, postgres)
            if self.end is not None:
                clauses.append(f'"{self.ts_column}" < :end')
                params["end"] = _bind(self.end, postgres)
        return " AND ".join(clauses) or "1 = 1", params


def _bind(value: Any, postgres: bool) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the warehouse stores UTC instants")
        return value if postgres else int(value.timestamp() * 1000)
    return value


class Warehouse:
    """Typed access to the warehouse tables behind one SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = bulk.is_postgres(engine)

    @classmethod
    def from_url(cls, url: str) -> Warehouse:
        return cls(get_engine(url))

    @property
    def description(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    # -- generic slice replacement ---------------------------------------------------------
    def replace_slice(self, table: str, frame: pl.DataFrame, where: Slice,
                      schema: dict[str, pl.DataType]) -> int:
        """Delete the rows matching ``where`` and insert ``frame``, in one transaction."""
        frame = frame.select([pl.col(c).cast(t) for c, t in schema.items()])
        self._check_inside(frame, where)
        if self.postgres:
            return self._replace_postgres(table, frame, where)
        return self._replace_sqlite(table, frame, where)

    @staticmethod
    def _check_inside(frame: pl.DataFrame, where: Slice) -> None:
        for column, value in where.equals.items():
            outside = frame.filter(pl.col(column) != value).height
            if outside:
                raise ValueError(f"{outside} rows have {column} != {value!r}: outside the slice being replaced")
        for column, values in (where.within or {}).items():
            outside = frame.filter(~pl.col(column).is_in(list(values))).height
            if outside:
                raise ValueError(f"{outside} rows have {column} outside the slice being replaced")
        if where.ts_column is not None and frame.height:
            ts = frame.get_column(where.ts_column)
            if (where.start is not None and ts.min() < where.start) or (
                where.end is not None and ts.max() >= where.end
            ):
                raise ValueError(
                    f"rows with {where.ts_column} outside [{where.start}, {where.end}): "
                    "refusing to write outside the slice being replaced"
                )

    def _replace_sqlite(self, table: str, frame: pl.DataFrame, where: Slice) -> int:
        clause, params = where.where(postgres=False)
        with self.engine.begin() as connection:
            connection.execute(text(f'DELETE FROM "{table}" WHERE {clause}'), params)
            raw = connection.connection.driver_connection
            return bulk.sqlite_insert(raw, table, frame)

    def _replace_postgres(self, table: str, frame: pl.DataFrame, where: Slice) -> int:
        clause, params = where.where(postgres=True)
        if table in PARTITIONED_TABLES and frame.height:
            bulk.ensure_month_partitions(self.engine, table, frame.get_column("ts").min(),
                                         frame.get_column("ts").max())
        with bulk.adbc_connection(self.engine) as connection, connection.cursor() as cursor:
            sql, values = _to_positional(f'DELETE FROM "{table}" WHERE {clause}', params)
            cursor.execute(sql, values)
            if frame.height:
                bulk.ingest(cursor, table, frame)
            connection.commit()
        return frame.height

    def read(self, table: str, schema: dict[str, pl.DataType], where: Slice,
             order_by: Sequence[str] = ()) -> pl.DataFrame:
        """Rows of ``table`` matching ``where`` as a polars frame with ``schema``."""
        columns = ", ".join(f'"{c}"' for c in schema)
        order = f" ORDER BY {', '.join(chr(34) + c + chr(34) for c in order_by)}" if order_by else ""
        clause, params = where.where(postgres=self.postgres)
        sql = f'SELECT {columns} FROM "{table}" WHERE {clause}{order}'
        if self.postgres:
            positional, values = _to_positional(sql, params)
            with bulk.adbc_connection(self.engine) as connection, connection.cursor() as cursor:
                cursor.execute(positional, values)
                table_data = cursor.fetch_arrow_table()
            frame = bulk.arrow_to_polars(table_data, schema)
            if frame.is_empty() and not frame.columns:
                return pl.DataFrame(schema=schema)
            return frame.select(list(schema))
        positional, values = _to_positional(sql, params, style="?")
        with self.engine.connect() as connection:
            raw = connection.connection.driver_connection
            return bulk.sqlite_read(raw, positional, values, schema)

    # -- candles ---------------------------------------------------------------------------
    def replace_candles(self, frame: pl.DataFrame, *, exchange: str, timeframe: str,
                        start: datetime, end: datetime, symbols: Sequence[str]) -> int:
        """Replace the candles of ``symbols`` on ``exchange`` × ``timeframe`` in ``[start, end)``.

        Symbols not listed are left untouched (a symbol that failed to fetch keeps its old rows).
        One transaction; bars already stored with the same values are not rewritten
        (:mod:`resources.warehouse.candles`).
        """
        frame = frame.select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()])
        listed = tuple(sorted(set(symbols)))
        self._check_inside(frame, Slice({"exchange": exchange, "timeframe": timeframe}, {"symbol": listed},
                                        "ts", start, end))
        span = (frame.get_column("ts").min(), frame.get_column("ts").max()) if frame.height else None
        with candles.bar_session(self.engine, span) as session:
            return candles.replace_slice(session, frame, candles.CandleSlice(exchange, timeframe, listed, start, end))

    def read_candles(self, *, timeframe: str, exchange: str | None = None,
                     symbols: Sequence[str] | None = None, start: datetime | None = None,
                     end: datetime | None = None) -> pl.DataFrame:
        """Candles sorted by (exchange, symbol, ts), ``ts`` as ``Datetime("ms","UTC")``.

        Reads the series first, then their bars by integer series id in key order, and joins
        the names on once per series: the same rows as ``SELECT ... FROM candles ORDER BY
        exchange, symbol, ts``, without three strings per row through the driver (a 2963-bar
        look-back of 150 symbols is ~450k rows).
        """
        equals: dict[str, Any] = {"timeframe": timeframe}
        if exchange is not None:
            equals["exchange"] = exchange
        series = self.read("candle_series", _SERIES_SCHEMA,
                           Slice(equals, {"symbol": list(symbols)} if symbols is not None else None),
                           order_by=("exchange", "symbol"))
        if series.is_empty():
            return pl.DataFrame(schema=CANDLE_SCHEMA)
        bars = self.read("candle_bars", candles.BAR_SCHEMA,
                         Slice({}, {"series_id": series.get_column("series_id").to_list()}, "ts", start, end),
                         order_by=("series_id", "ts"))
        return (
            bars.join(series.with_row_index("_rank"), on="series_id", how="inner")
            .sort("_rank", "ts")
            .select([pl.lit(timeframe).alias("timeframe") if c == "timeframe" else pl.col(c)
                     for c in CANDLE_SCHEMA])
            .select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()])
        )

    def delete_candles_before(self, *, timeframe: str, before: datetime) -> int:
        """Delete every ``timeframe`` candle older than ``before``; returns the number deleted."""
        with self.engine.begin() as connection:
            result = connection.execute(
                text("DELETE FROM candle_bars WHERE ts < :before AND series_id IN "
                     "(SELECT series_id FROM candle_series WHERE timeframe = :tf)"),
                {"tf": timeframe, "before": _bind(before, self.postgres)},
            )
            return int(result.rowcount or 0)

    # -- indicators ------------------------------------------------------------------------
    def replace_indicators(self, frame: pl.DataFrame, *, exchange: str, timeframe: str, start: datetime,
                           end: datetime, symbols: Sequence[str]) -> int:
        """Replace the indicator rows of ``symbols`` with ``start <= ts < end`` (one transaction)."""
        from ml.indicators.params import IndicatorParams
        from ml.indicators.schema import indicator_columns

        where = Slice({"exchange": exchange, "timeframe": timeframe}, {"symbol": sorted(set(symbols))}, "ts", start, end)
        return self.replace_slice("indicators", frame, where, indicator_columns(IndicatorParams()))

    def read_indicators(self, *, timeframe: str, exchange: str | None = None, symbols: Sequence[str] | None = None,
                        start: datetime | None = None, end: datetime | None = None) -> pl.DataFrame:
        from ml.indicators.params import IndicatorParams
        from ml.indicators.schema import indicator_columns

        equals: dict[str, Any] = {"timeframe": timeframe}
        if exchange is not None:
            equals["exchange"] = exchange
        where = Slice(equals, {"symbol": list(symbols)} if symbols is not None else None, "ts", start, end)
        return self.read("indicators", indicator_columns(IndicatorParams()), where,
                         order_by=("exchange", "symbol", "ts"))

    # -- markets ---------------------------------------------------------------------------
    def replace_markets(self, frame: pl.DataFrame, *, exchange: str) -> int:
        return self.replace_slice("markets", frame, Slice({"exchange": exchange}), MARKETS_SCHEMA)

    def read_markets(self, exchange: str | None = None) -> pl.DataFrame:
        where = Slice({"exchange": exchange} if exchange else {})
        return self.read("markets", MARKETS_SCHEMA, where, order_by=("exchange", "symbol"))

    def read_declarations(self, exchange: str | None = None) -> pl.DataFrame:
        where = Slice({"exchange": exchange} if exchange else {})
        return self.read("market_declarations", DECLARATIONS_SCHEMA, where, order_by=("exchange", "symbol"))

    def declare_markets(self, frame: pl.DataFrame) -> int:
        """Force-track ``(exchange, symbol)`` pairs (replacing earlier declarations of those pairs)."""
        total = 0
        for (exchange,), group in frame.group_by(["exchange"]):
            where = Slice({"exchange": exchange}, {"symbol": group.get_column("symbol").to_list()})
            total += self.replace_slice("market_declarations", group, where, DECLARATIONS_SCHEMA)
        return total

    # -- CoinGecko -------------------------------------------------------------------------
    def replace_coingecko_snapshot(self, frame: pl.DataFrame, *, snapshot_ts: datetime) -> int:
        return self.replace_slice("coingecko_markets", frame, Slice({"snapshot_ts": snapshot_ts}),
                                  COINGECKO_TABLE_SCHEMA)

    def read_coingecko(self, snapshot_ts: datetime | None = None) -> pl.DataFrame:
        where = Slice({"snapshot_ts": snapshot_ts} if snapshot_ts else {})
        return self.read("coingecko_markets", COINGECKO_TABLE_SCHEMA, where,
                         order_by=("snapshot_ts", "market_cap_rank"))

    # -- derivatives -----------------------------------------------------------------------
    def replace_derivatives(self, frame: pl.DataFrame, *, exchange: str, ts: datetime) -> int:
        symbols = frame.get_column("symbol").to_list()
        where = Slice({"exchange": exchange, "ts": ts}, {"symbol": symbols})
        return self.replace_slice("derivatives", frame, where, DERIVATIVES_SCHEMA)

    def read_derivatives(self, exchange: str | None = None) -> pl.DataFrame:
        where = Slice({"exchange": exchange} if exchange else {})
        return self.read("derivatives", DERIVATIVES_SCHEMA, where, order_by=("exchange", "symbol", "ts"))

    def candle_symbols(self, *, exchange: str, timeframes: Sequence[str] | None = None) -> list[str]:
        """Symbols with a candle series on ``exchange`` (in any of ``timeframes``; default: any), sorted."""
        within = {"timeframe": list(timeframes)} if timeframes is not None else None
        series = self.read("candle_series", {"symbol": pl.String()}, Slice({"exchange": exchange}, within))
        return sorted(series.get_column("symbol").unique().to_list())

    def latest_candle_ts(self, *, exchange: str, timeframe: str) -> datetime | None:
        """Open time of the newest stored candle for ``exchange`` x ``timeframe`` (None if none)."""
        value = self.scalar(_LATEST_SQL, e=exchange, tf=timeframe)
        return None if value is None else _as_utc(value)

    def first_candle_ts(self, *, exchange: str, timeframe: str) -> dict[str, datetime]:
        """Open time of each symbol's oldest stored candle on ``exchange`` x ``timeframe``."""
        with self.engine.connect() as connection:
            rows = connection.execute(text(_FIRSTS_SQL), {"e": exchange, "tf": timeframe}).all()
        return {symbol: _as_utc(value) for symbol, value in rows if value is not None}

    def model_registry(self) -> ModelRegistry:
        """The ``model_registry`` table on this warehouse's engine."""
        from resources.warehouse.models import ModelRegistry

        return ModelRegistry(self.engine)

    def scalar(self, sql: str, **params: Any) -> Any:
        """One value from a read-only query (for checks and summaries)."""
        with self.engine.connect() as connection:
            return connection.execute(text(sql), params).scalar()


def _as_utc(value: Any) -> datetime:
    """A ``ts`` value as read by SQLAlchemy's raw SQL: timestamptz or epoch milliseconds."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


def _to_positional(sql: str, params: dict[str, Any], style: str = "$") -> tuple[str, list[Any]]:
    """Rewrite ``:name`` parameters to ``$1``/``?`` placeholders for the DBAPI drivers."""
    import re

    values: list[Any] = []

    def replace(match: re.Match[str]) -> str:
        values.append(params[match.group(1)])
        return f"${len(values)}" if style == "$" else "?"

    return re.sub(r":([a-z]\w*)", replace, sql), values

