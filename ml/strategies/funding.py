"""Funding-rate alerts: extreme funding on perpetual swaps, as their own signal kind.

An alert is not a :class:`~ml.strategies.signal.MarketSignal`: extreme funding says that one side
of a perpetual is crowded and paying for it, not where to enter, stop or take profit, so it has
no entry, stop or targets to give (inventing them would be dishonest). :class:`FundingAlert`
carries what the observation says.

Rule, per ``(exchange, symbol)`` over its derivatives snapshots in time order (rows with a null
``funding_rate`` are skipped; they neither start nor end an episode):

* a snapshot is *extreme* when ``funding_rate >= threshold`` (side ``"longs_pay"``: longs pay
  shorts, the long side is crowded) or ``funding_rate <= -threshold`` (``"shorts_pay"``);
* an alert fires at the first extreme snapshot of an *episode*: the symbol's first snapshot, or
  one whose previous non-null snapshot was not extreme on the same side. A rate that stays extreme
  is one alert; a rate that falls back inside the threshold and leaves again is a new one; a flip
  from one extreme to the other is a new alert for the other side.

``funding_rate`` is the rate of one funding interval as a fraction (``0.0001`` = 0.01 %), as ccxt
reports it; the default threshold ``0.001`` (0.1 % per interval, ten times Binance's neutral
0.01 %) marks funding extreme. ``annualised_pct = funding_rate * (365 * 24 / interval_hours) * 100``
with ``interval_hours`` 8 by default.

No look-ahead: an alert at ``ts`` depends on the symbol's snapshots up to and including ``ts``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import polars as pl

from ml.marketdata.frames import DERIVATIVES_SCHEMA

FundingSide = Literal["longs_pay", "shorts_pay"]
STRATEGY = "funding"
_REQUIRED = ("exchange", "symbol", "ts", "funding_rate")
_OPTIONAL = ("next_funding_ts", "mark_price", "open_interest_value")


@dataclass(frozen=True)
class FundingAlert:
    """One extreme-funding episode's start on one perpetual."""

    strategy: str
    exchange: str
    symbol: str
    ts: datetime
    side: FundingSide
    funding_rate: float
    threshold: float
    annualised_pct: float
    next_funding_ts: datetime | None
    mark_price: float | None
    open_interest_value: float | None

    def __post_init__(self) -> None:
        where = f"{self.strategy} {self.exchange} {self.symbol} {self.ts}"
        if self.ts.tzinfo is None:
            raise ValueError(f"{where}: ts must be timezone-aware (UTC)")
        sign = 1.0 if self.side == "longs_pay" else -1.0
        if self.side not in ("longs_pay", "shorts_pay") or sign * self.funding_rate < self.threshold:
            raise ValueError(f"{where}: funding {self.funding_rate} is not extreme on side {self.side!r}")

    @property
    def key(self) -> tuple[str, str, str, FundingSide]:
        """(strategy, exchange, symbol, side), as :attr:`MarketSignal.key` with the side."""
        return (self.strategy, self.exchange, self.symbol, self.side)

    def to_record(self) -> dict[str, Any]:
        """A flat, JSON-able dict (times as ISO 8601)."""
        record = asdict(self)
        record["ts"] = self.ts.isoformat()
        record["next_funding_ts"] = None if self.next_funding_ts is None else self.next_funding_ts.isoformat()
        return record


def detect_funding_extremes(
    derivatives: pl.DataFrame,
    threshold: float = 0.001,
    *,
    interval_hours: float = 8.0,
) -> list[FundingAlert]:
    """Alerts for the start of every extreme-funding episode (see the module docstring).

    Parameters
    ----------
    derivatives : polars.DataFrame
        At least ``exchange, symbol, ts, funding_rate`` of
        :data:`~ml.marketdata.frames.DERIVATIVES_SCHEMA` (``ts`` UTC, the moment of the
        snapshot; rate as a fraction per funding interval); ``next_funding_ts``, ``mark_price``
        and ``open_interest_value`` are carried into the alert when present. Any symbols, any
        order; one row per ``(exchange, symbol, ts)``.
    threshold : float
        Absolute funding rate per interval from which funding is extreme (fraction, > 0).
    interval_hours : float
        Length of a funding interval, for ``annualised_pct`` only.

    Returns
    -------
    list of FundingAlert
        Sorted by ``(ts, exchange, symbol)``. Each symbol's alerts are those it gets alone.

    Raises
    ------
    ValueError
        On a non-positive threshold or interval, missing columns, null keys, non-finite rates or
        duplicate keys, naming the first bad row's symbol and time.
    """
    if not (math.isfinite(threshold) and threshold > 0) or not interval_hours > 0:
        raise ValueError(f"threshold ({threshold}) and interval_hours ({interval_hours}) must be positive")
    frame = _validated(derivatives)
    side = (pl.when(pl.col("funding_rate") >= threshold).then(pl.lit("longs_pay"))
            .when(pl.col("funding_rate") <= -threshold).then(pl.lit("shorts_pay")))
    starts = (
        frame.filter(pl.col("funding_rate").is_not_null())
        .sort("exchange", "symbol", "ts")
        .with_columns(side.alias("side"))
        .with_columns(pl.col("side").shift(1).over("exchange", "symbol").alias("previous"))
        .filter(pl.col("side").is_not_null() & pl.col("previous").ne_missing(pl.col("side")))
        .sort("ts", "exchange", "symbol")
    )
    per_year = 365.0 * 24.0 / interval_hours
    return [
        FundingAlert(
            strategy=STRATEGY, exchange=row["exchange"], symbol=row["symbol"], ts=row["ts"].astimezone(UTC),
            side=row["side"], funding_rate=row["funding_rate"], threshold=threshold,
            annualised_pct=row["funding_rate"] * per_year * 100.0,
            next_funding_ts=None if row["next_funding_ts"] is None else row["next_funding_ts"].astimezone(UTC),
            mark_price=row["mark_price"], open_interest_value=row["open_interest_value"],
        )
        for row in starts.iter_rows(named=True)
    ]


def _validated(derivatives: pl.DataFrame) -> pl.DataFrame:
    missing = [c for c in _REQUIRED if c not in derivatives.columns]
    if missing:
        raise ValueError(f"derivatives lack columns {missing}; expected DERIVATIVES_SCHEMA")
    frame = derivatives.select(
        *(pl.col(c).cast(DERIVATIVES_SCHEMA[c]) for c in _REQUIRED),
        *(pl.col(c).cast(DERIVATIVES_SCHEMA[c]) if c in derivatives.columns
          else pl.lit(None, DERIVATIVES_SCHEMA[c]).alias(c) for c in _OPTIONAL),
    )
    problems = [
        (pl.any_horizontal(pl.col("exchange", "symbol", "ts").is_null()), "has a null key"),
        (pl.col("funding_rate").is_not_null() & ~pl.col("funding_rate").is_finite(), "has a non-finite funding rate"),
        (pl.struct("exchange", "symbol", "ts").is_duplicated(), "is duplicated"),
    ]
    for condition, what in problems:
        bad = frame.filter(condition)
        if bad.height:
            row = bad.sort("exchange", "symbol", "ts", nulls_last=True).row(0, named=True)
            raise ValueError(f"derivatives: {row['exchange']} {row['symbol']} snapshot at {row['ts']} {what}"
                             f" ({bad.height} such rows)")
    return frame

