"""The ``signal_outcomes`` rows of published signals, as of a clock time (pure).

One row per (signal, publisher) whose delivery was *sent*: every publisher publishes at its own
time, so each gets its own entry. ``published_at`` is that delivery's time (UTC).

* **Market signals** follow :mod:`ml.signals.outcomes` exactly: entry at the open of the first
  1m candle opening at or after publication, returns at +1..15 min from closed candles, and the
  trade (stop / first target / ``trade_time``) walked over the same candles. Only candles closed
  at ``now`` (``ts + 1 min <= now``) are read, so a figure appears once its candle has closed.
* **Social calls** have no candles: DexScreener answers the price *now* only. The price grid is
  the UTC minute: a snapshot taken at ``T`` belongs to minute ``floor(T)`` (at most one per
  signal and minute, the first taken). The entry is the first snapshot with a price whose minute
  is at or after publication (``M0``, the first whole minute at or after ``published_at``: the
  same rule as the entry candle) and at most ``max_entry_delay`` after it; the +h figure is the
  snapshot of minute ``entry + h``. A minute whose snapshot was not taken within it stays null:
  no price is carried. Calls are long (a buy call); the same net-return formula and costs apply.
* **Closed horizon.** The +h figure is due once ``base + h`` minutes have passed (market: its
  candle has closed; social: one more minute, the snapshot's minute, has passed), where ``base``
  is the entry minute, or ``M0`` while there is no entry. ``missing`` counts the due horizons
  without a figure (a gap in the candles, a missed snapshot, no entry at all).
* **Settled.** A row is settled, and no later run recomputes it, when every horizon has a figure
  and (market) the trade has ended; or when ``base + max(max(horizons), trade_time)`` minutes plus
  ``settle_grace`` have passed, after which nothing can still arrive (nulls stay null).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import polars as pl

from ml.evaluation.costs import DEFAULT_COSTS, TradingCosts
from ml.signals.outcomes import (
    HORIZONS,
    horizon_column,
    horizon_returns,
    net_return,
    trade_outcomes,
)

__all__ = ["MARKET_SETTLE_GRACE", "OUTCOME_COLUMNS", "market_outcomes", "market_trade_rows", "outcome_violations",
           "outcomes_long", "snapshot_outcomes", "snapshots_due"]

_US = pl.Datetime("us", "UTC")
ONE_MINUTE = timedelta(minutes=1)
#: Candles can reach the warehouse late (the 5-minute candle schedule, a restarted feed).
MARKET_SETTLE_GRACE = timedelta(hours=1)
#: Columns every function here returns besides the key (``signal_id``, ``publisher``).
OUTCOME_COLUMNS: tuple[str, ...] = ("entry_ts", "entry_price", *(horizon_column(h) for h in HORIZONS),
                                    "exit_reason", "exit_ts", "exit_price", "pnl", "missing", "settled")
_KEY = ("signal_id", "publisher")


def _first_minute(published_at: pl.Expr) -> pl.Expr:
    """The first whole UTC minute at or after ``published_at``."""
    floor = published_at.dt.truncate("1m")
    return pl.when(floor == published_at).then(floor).otherwise(floor + ONE_MINUTE)


def _check(frame: pl.DataFrame, columns: Sequence[str], name: str) -> pl.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks the columns {missing}; it has {frame.columns}")
    if frame.select(pl.struct(*_KEY).is_duplicated().any()).item():
        raise ValueError(f"{name} has duplicate (signal_id, publisher) rows")
    return frame.with_columns(pl.col("published_at").cast(_US))


def _finish(frame: pl.DataFrame, *, now: datetime, horizons: Sequence[int], due_lag: timedelta,
            last_minutes: pl.Expr, settle_grace: timedelta, trade_done: pl.Expr) -> pl.DataFrame:
    """Adds ``missing`` and ``settled`` (module doc) from ``base`` (entry minute or ``M0``)."""
    moment = pl.lit(now).cast(_US)
    due = [(pl.col("_base") + timedelta(minutes=int(h)) + due_lag <= moment) & pl.col(horizon_column(h)).is_null()
           for h in horizons]
    complete = pl.all_horizontal([pl.col(horizon_column(h)).is_not_null() for h in horizons]) & trade_done
    ends = pl.col("_base") + pl.duration(minutes=last_minutes) + due_lag + settle_grace
    return frame.with_columns(
        missing=pl.sum_horizontal([d.cast(pl.Int32) for d in due]).cast(pl.Int32),
        settled=complete | (ends <= moment),
    ).drop("_base")


def market_outcomes(
    published: pl.DataFrame,
    candles_1m: pl.DataFrame,
    *,
    now: datetime,
    horizons: Sequence[int] = HORIZONS,
    costs: TradingCosts = DEFAULT_COSTS,
    max_entry_delay: timedelta = timedelta(minutes=5),
    settle_grace: timedelta = MARKET_SETTLE_GRACE,
) -> pl.DataFrame:
    """Outcome rows of published market signals as of ``now`` (rules in the module doc).

    Parameters
    ----------
    published
        One row per (``signal_id``, ``publisher``): ``exchange``, ``symbol``, ``direction``,
        ``published_at`` (aware), ``stop``, ``target`` (the first target) and ``trade_time``
        (whole minutes >= 1, the strategy's maximum holding time).
    candles_1m
        1m candles of those markets (as in :func:`ml.signals.outcomes.horizon_returns`); those
        not closed at ``now`` are ignored.
    now
        The clock (aware UTC).

    Returns
    -------
    ``signal_id``, ``publisher`` and :data:`OUTCOME_COLUMNS`, in the order of ``published``.
    """
    frame = _check(published, (*_KEY, "exchange", "symbol", "direction", "published_at", "stop", "target",
                               "trade_time"), "published")
    if frame.filter(pl.col("trade_time").is_null() | (pl.col("trade_time") < 1)).height:
        raise ValueError("trade_time must be whole minutes >= 1 on every published market signal")
    closed = candles_1m.filter(pl.col("ts").cast(_US) + ONE_MINUTE <= pl.lit(now).cast(_US))
    keyed = frame.with_row_index("_row").with_columns(pl.col("_row").cast(pl.Int64))
    signals = keyed.select(pl.col("_row").alias("signal_id"), "exchange", "symbol", "direction", "published_at",
                           "stop", "target", "trade_time")
    returns = horizon_returns(signals.drop("stop", "target", "trade_time"), closed, horizons=horizons, costs=costs,
                              max_entry_delay=max_entry_delay)
    trades = pl.concat([
        trade_outcomes(group.drop("trade_time"), closed, trade_time=int(minutes), costs=costs,
                       max_entry_delay=max_entry_delay)
        for (minutes,), group in signals.group_by(["trade_time"], maintain_order=True)
    ], how="vertical_relaxed") if signals.height else None
    out = keyed.join(returns.select(pl.col("signal_id").alias("_row"), "entry_ts", "entry_price",
                                    *(horizon_column(h) for h in horizons)), on="_row", how="left")
    if trades is None:
        out = out.with_columns(exit_reason=pl.lit(None, pl.String), exit_ts=pl.lit(None, _US),
                               exit_price=pl.lit(None, pl.Float64), pnl=pl.lit(None, pl.Float64))
    else:
        out = out.join(trades.select(pl.col("signal_id").alias("_row"), "exit_reason",
                                     pl.col("exit_ts").cast(_US), "exit_price", "pnl"), on="_row", how="left")
    out = out.with_columns(_base=pl.coalesce(pl.col("entry_ts").cast(_US), _first_minute(pl.col("published_at"))))
    out = _finish(out, now=now, horizons=horizons, due_lag=timedelta(0),
                  last_minutes=pl.max_horizontal(pl.col("trade_time"), pl.lit(max(horizons))),
                  settle_grace=settle_grace, trade_done=pl.col("exit_reason") != "open")
    return _shape(out.sort("_row"), horizons)


def snapshot_outcomes(
    published: pl.DataFrame,
    snapshots: pl.DataFrame,
    *,
    now: datetime,
    horizons: Sequence[int] = HORIZONS,
    costs: TradingCosts = DEFAULT_COSTS,
    max_entry_delay: timedelta = timedelta(minutes=5),
) -> pl.DataFrame:
    """Outcome rows of published social calls from their minute snapshots (module doc).

    Parameters
    ----------
    published
        One row per (``signal_id``, ``publisher``) with ``published_at`` (aware).
    snapshots
        ``signal_id``, ``minute_ts`` (UTC minute the snapshot was taken in), ``price_usd``
        (null: no price then).
    now
        The clock (aware UTC).

    Returns
    -------
    ``signal_id``, ``publisher`` and :data:`OUTCOME_COLUMNS` (``exit_*`` and ``pnl`` null), in the
    order of ``published``. A horizon's figure depends only on the entry and that minute's snapshot.
    """
    frame = _check(published, (*_KEY, "published_at"), "published").with_row_index("_row")
    prices = snapshots.select(pl.col("signal_id").cast(frame.schema["signal_id"]), pl.col("minute_ts").cast(_US),
                              pl.col("price_usd").cast(pl.Float64))
    entries = prices.filter(pl.col("price_usd").is_not_null()).select(
        "signal_id", pl.col("minute_ts").alias("entry_ts"), pl.col("price_usd").alias("entry_price")).sort("entry_ts")
    out = (frame.with_columns(_m0=_first_minute(pl.col("published_at"))).sort("_m0")
           .join_asof(entries, left_on="_m0", right_on="entry_ts", by="signal_id", strategy="forward",
                      tolerance=max_entry_delay, check_sortedness=False))
    long = pl.lit("long")
    for horizon in horizons:
        out = (out.with_columns((pl.col("entry_ts") + timedelta(minutes=int(horizon))).alias("minute_ts"))
               .join(prices, on=["signal_id", "minute_ts"], how="left")
               .with_columns(net_return(long, pl.col("entry_price"), pl.col("price_usd"), costs)
                             .alias(horizon_column(int(horizon))))
               .drop("minute_ts", "price_usd"))
    out = out.with_columns(_base=pl.coalesce("entry_ts", "_m0"), exit_reason=pl.lit(None, pl.String),
                           exit_ts=pl.lit(None, _US), exit_price=pl.lit(None, pl.Float64),
                           pnl=pl.lit(None, pl.Float64))
    out = _finish(out, now=now, horizons=horizons, due_lag=ONE_MINUTE, last_minutes=pl.lit(max(horizons)),
                  settle_grace=timedelta(0), trade_done=pl.lit(True))
    return _shape(out.sort("_row"), horizons)


def snapshots_due(
    published: pl.DataFrame,
    snapshots: pl.DataFrame,
    *,
    now: datetime,
    horizons: Sequence[int] = HORIZONS,
    max_entry_delay: timedelta = timedelta(minutes=5),
) -> list:
    """Signal ids whose price must be snapshotted in the current minute ``floor(now)``.

    A (signal, publisher) row wants the minute when it has no entry yet and the minute lies in
    ``[M0, M0 + max_entry_delay]``, or when the minute is ``entry + h`` for a horizon ``h``; the
    signal is due when any of its rows wants the minute and no snapshot of that minute is stored.
    Sorted, each id once.
    """
    minute = pl.lit(now).cast(_US).dt.truncate("1m")
    entries = snapshot_outcomes(published, snapshots, now=now, horizons=horizons,
                                max_entry_delay=max_entry_delay).select(*_KEY, "entry_ts")
    rows = _check(published, (*_KEY, "published_at"), "published").join(entries, on=list(_KEY), how="left")
    offset = (minute - pl.col("entry_ts")).dt.total_minutes()
    m0 = _first_minute(pl.col("published_at"))
    wants = (pl.when(pl.col("entry_ts").is_null()).then((minute >= m0) & (minute <= m0 + max_entry_delay))
             .otherwise(offset.is_in([int(h) for h in horizons])))
    taken = set(snapshots.filter(pl.col("minute_ts").cast(_US) == minute.dt.truncate("1m"))
                .get_column("signal_id").to_list()) if snapshots.height else set()
    wanted = rows.filter(wants).get_column("signal_id").unique().to_list()
    return sorted(s for s in wanted if s not in taken)


def _shape(frame: pl.DataFrame, horizons: Sequence[int]) -> pl.DataFrame:
    absent = [pl.lit(None, pl.Float64).alias(horizon_column(h)) for h in HORIZONS if h not in horizons]
    return frame.with_columns(*absent).select(
        *_KEY, pl.col("entry_ts").cast(_US), "entry_price", *(horizon_column(h) for h in HORIZONS),
        "exit_reason", pl.col("exit_ts").cast(_US), "exit_price", "pnl", "missing", "settled")


def outcomes_long(outcomes: pl.DataFrame, horizons: Sequence[int] = HORIZONS) -> pl.DataFrame:
    """``signal_outcomes`` rows in the long form :func:`ml.signals.scorecards.scorecard` reads: one
    row per row and horizon, ``horizon_minutes`` and ``net_return`` (null while not known)."""
    keep = [c for c in ("signal_id", "strategy", "symbol", "source", "channel", "publisher", "kind")
            if c in outcomes.columns]
    return (outcomes.unpivot(index=keep, on=[horizon_column(h) for h in horizons], variable_name="_h",
                             value_name="net_return")
            .with_columns(horizon_minutes=pl.col("_h").str.extract(r"(\d+)").cast(pl.Int64))
            .drop("_h").sort("signal_id", "publisher", "horizon_minutes"))


def market_trade_rows(publications: pl.DataFrame) -> tuple[pl.DataFrame, dict[int, str]]:
    """Published market signals as the ``published`` frame of :func:`market_outcomes`.

    ``publications`` has ``signal_id``, ``publisher``, ``published_at`` and ``payload``: the JSON
    text of :meth:`ml.strategies.signal.MarketSignal.to_record`. ``trade_time`` is the signal's
    life from its trigger candle's close to ``expires_at`` in whole minutes (a strategy sets
    ``expires_at`` = that close + ``TRADE_TIME``); ``target`` is the first target. Returns the
    frame (with ``strategy``) and, per signal whose payload cannot be read, the reason (those
    signals are left out; the others go on).
    """
    import json

    from ml.marketdata.timeframes import timeframe_ms

    rows: list[dict] = []
    errors: dict[int, str] = {}
    for publication in publications.iter_rows(named=True):
        signal_id = int(publication["signal_id"])
        try:
            record = json.loads(publication["payload"])
            trigger = datetime.fromisoformat(record["trigger_ts"])
            closes = trigger + timedelta(milliseconds=timeframe_ms(str(record["timeframe"])))
            trade_time = round((datetime.fromisoformat(record["expires_at"]) - closes) / ONE_MINUTE)
            if trigger.tzinfo is None or trade_time < 1:
                raise ValueError(f"expires_at {record['expires_at']} is not a whole minute or more after the "
                                 f"trigger candle's close {closes.isoformat()} (or the times are naive)")
            if record["direction"] not in ("long", "short"):
                raise ValueError(f"direction {record['direction']!r} is neither long nor short")
            stop, target = float(record["stop"]), float(record["targets"][0])
            if (target - stop) * (1 if record["direction"] == "long" else -1) <= 0 or not stop > 0:
                raise ValueError(f"target {target} is not beyond the stop {stop} for a {record['direction']}")
            rows.append({"signal_id": signal_id, "publisher": publication["publisher"],
                         "published_at": publication["published_at"], "strategy": str(record["strategy"]),
                         "exchange": str(record["exchange"]), "symbol": str(record["symbol"]),
                         "direction": record["direction"], "stop": stop, "target": target,
                         "trade_time": int(trade_time)})
        except (KeyError, IndexError, TypeError, ValueError) as error:
            errors[signal_id] = f"unreadable market signal payload: {type(error).__name__}: {error}"
    schema = {"signal_id": pl.Int64, "publisher": pl.String, "published_at": _US, "strategy": pl.String,
              "exchange": pl.String, "symbol": pl.String, "direction": pl.String, "stop": pl.Float64,
              "target": pl.Float64, "trade_time": pl.Int64}
    return pl.DataFrame(rows, schema=schema, orient="row"), errors


def outcome_violations(outcomes: pl.DataFrame) -> pl.DataFrame:
    """Rows of ``signal_outcomes`` that break the rules of the module doc, with a ``violation``
    column: an entry before publication (look-ahead), an exit before the entry, or a return
    without an entry. Empty when every row is sound."""
    returns = [pl.col(horizon_column(h)).is_not_null() for h in HORIZONS]
    rules = {
        "entry before publication": pl.col("entry_ts") < pl.col("published_at"),
        "exit before entry": pl.col("exit_ts") < pl.col("entry_ts"),
        "return without entry": pl.col("entry_ts").is_null() & pl.any_horizontal(returns),
    }
    return pl.concat([outcomes.filter(rule.fill_null(False)).with_columns(violation=pl.lit(name))
                      for name, rule in rules.items()], how="vertical_relaxed")
