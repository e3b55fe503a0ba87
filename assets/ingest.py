"""Context-free ingestion: fetch through a client, write through the warehouse, report.

The Dagster assets only unpack partitions and call these functions, so they are tested against
the simulator and a real database without Dagster.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from ml.marketdata.frames import CANDLE_SCHEMA, empty_frame
from ml.marketdata.timeframes import day_bounds, floor_ms, from_ms, to_ms
from ml.marketdata.universe import rank_by_liquidity
from resources.exchanges.base import ExchangeClient
from resources.exchanges.errors import MarketDataError, PermanentError
from resources.warehouse.store import Warehouse

logger = logging.getLogger(__name__)


class NothingIngestedError(RuntimeError):
    """Every symbol failed (or there was nothing to fetch): the step must fail."""


@dataclass
class CandleIngestReport:
    exchange: str
    timeframe: str
    days: list[str] = field(default_factory=list)
    rows: int = 0
    symbols: int = 0
    fetched: set[str] = field(default_factory=set)
    failures: dict[str, str] = field(default_factory=dict)  # "symbol day" -> error
    first_ts: datetime | None = None
    last_ts: datetime | None = None

    @property
    def all_failed(self) -> bool:
        return self.symbols > 0 and not self.fetched


def ingest_candles(
    client: ExchangeClient,
    warehouse: Warehouse,
    *,
    timeframe: str,
    days: Iterable[str],
    symbols: Sequence[str],
) -> CandleIngestReport:
    """Fetch ``symbols`` for every UTC day in ``days`` and replace each day's slice.

    Streams one day at a time, so memory is bounded by one day of one exchange. A symbol's
    failure is recorded and never stops the others; a symbol that failed keeps whatever the
    warehouse held for it. A permanent error (e.g. delisted symbol) skips that symbol for the
    remaining days. Days that have not started yet are skipped.
    """
    report = CandleIngestReport(exchange=client.name, timeframe=timeframe, symbols=len(symbols))
    permanently_failed: set[str] = set()
    now = client.now()
    for day in sorted(days):
        start, end = day_bounds(day)
        if start >= now:
            continue
        report.days.append(day)
        frames: list[pl.DataFrame] = []
        fetched: list[str] = []
        for symbol in symbols:
            if symbol in permanently_failed:
                continue
            try:
                candles = client.fetch_ohlcv(symbol, timeframe, start, min(end, now))
            except MarketDataError as error:
                report.failures[f"{symbol} {day}"] = str(error)
                if isinstance(error, PermanentError):
                    permanently_failed.add(symbol)
                logger.warning("%s %s %s failed: %s", client.name, symbol, day, error)
                continue
            fetched.append(symbol)
            frames.append(
                candles.with_columns(
                    pl.lit(client.name).alias("exchange"),
                    pl.lit(symbol).alias("symbol"),
                    pl.lit(timeframe).alias("timeframe"),
                ).select(list(CANDLE_SCHEMA))
            )
        frame = pl.concat(frames) if frames else empty_frame(CANDLE_SCHEMA)
        if fetched:
            report.rows += warehouse.replace_candles(
                frame, exchange=client.name, timeframe=timeframe, start=start, end=end, symbols=fetched
            )
            report.fetched.update(fetched)
        if frame.height:
            first, last = frame.get_column("ts").min(), frame.get_column("ts").max()
            report.first_ts = first if report.first_ts is None else min(report.first_ts, first)
            report.last_ts = last if report.last_ts is None else max(report.last_ts, last)
    return report


def ingest_markets(client: ExchangeClient, warehouse: Warehouse) -> pl.DataFrame:
    """Load the exchange's universe, rank it by liquidity and replace the exchange's rows."""
    markets = client.load_markets()
    if markets.is_empty():
        raise NothingIngestedError(f"{client.name} returned no markets; keeping the previous universe")
    ranked = rank_by_liquidity(markets).with_columns(pl.lit(client.now()).cast(pl.Datetime("ms", "UTC")).alias("updated_at"))
    warehouse.replace_markets(ranked, exchange=client.name)
    return ranked


def ingest_derivatives(
    client: ExchangeClient, warehouse: Warehouse, *, symbols: Sequence[str]
) -> tuple[pl.DataFrame, dict[str, str]]:
    """Funding and open interest now for the exchange's perpetuals; one row per symbol and hour."""
    frame, failures = client.fetch_derivatives(list(symbols))
    hour = from_ms(floor_ms(to_ms(client.now()), "1h"))
    if frame.height:
        frame = frame.with_columns(pl.lit(hour).cast(pl.Datetime("ms", "UTC")).alias("ts"))
        warehouse.replace_derivatives(frame, exchange=client.name, ts=hour)
    return frame, failures
