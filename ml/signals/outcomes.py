"""How each published signal did: returns at fixed horizons and the trade it would have been (pure).

The rules (all times UTC; candles are 1m, ``ts`` is a candle's *open* time, and only closed
candles may be passed in):

* **Entry.** A signal published at ``published_at`` is entered at the *open* of the first 1m
  candle whose open time is at or after ``published_at``: a signal published at 12:00:00 exactly
  enters at the 12:00 candle's open, one published at 12:00:00.5 at the 12:01 candle's open. A
  candle that opened before publication is never used. The entry candle must open within
  ``max_entry_delay`` of publication; otherwise (a gap in the data, or no candle yet) the signal
  has no entry and every figure is null.
* **Horizon h minutes.** The exit is the *close* of the candle that opens ``h - 1`` minutes after
  the entry candle, so +1 min is the entry candle's own close and the holding time is exactly
  ``h`` minutes. When that candle is missing (not closed yet, or a gap) the figure is null; no
  price is ever carried forward.
* **Direction-aware net return** of one unit of notional bought (long) or sold (short) at the
  entry price ``p0`` and closed at ``p1``, with ``c = costs.per_unit_traded`` (fee plus slippage
  per side) charged on the notional of each side::

      long:  p1 / p0 - 1 - c * (1 + p1 / p0)
      short: 1 - p1 / p0 - c * (1 + p1 / p0)

  so a trade that goes nowhere loses ``2 c`` (0.3 % with the default costs).
* **No look-ahead.** The horizon-h figure reads the candles from the entry candle to the one
  ``h - 1`` minutes later and nothing else; a trade outcome reads only the candles up to its exit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import polars as pl
import polars.selectors as cs

from ml.evaluation.costs import DEFAULT_COSTS, TradingCosts

HORIZONS: tuple[int, ...] = (1, 2, 3, 5, 10, 15)
EXIT_REASONS: tuple[str, ...] = ("stop", "target", "time", "open")
_US = pl.Datetime("us", "UTC")
_MARKET = ("exchange", "symbol")
_PUBLISHED = ("signal_id", "exchange", "symbol", "direction", "published_at")
_CANDLES = ("exchange", "symbol", "ts", "open", "high", "low", "close")


def horizon_column(horizon: int) -> str:
    """Name of the net-return column for ``horizon`` minutes, e.g. ``return_5m``."""
    return f"return_{horizon}m"


def net_return(direction: pl.Expr, entry: pl.Expr, exit_: pl.Expr, costs: TradingCosts) -> pl.Expr:
    """Net return of one unit of notional from ``entry`` to ``exit_`` (formula in the module doc)."""
    ratio = exit_ / entry
    gross = pl.when(direction == "long").then(ratio - 1.0).otherwise(1.0 - ratio)
    return gross - costs.per_unit_traded * (1.0 + ratio)


def _require(frame: pl.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks the columns {missing}; it has {frame.columns}")


def _published(published: pl.DataFrame, extra: Sequence[str] = ()) -> pl.DataFrame:
    _require(published, (*_PUBLISHED, *extra), "published")
    when = published.schema["published_at"]
    if not isinstance(when, pl.Datetime) or when.time_zone is None:
        raise ValueError(f"published_at must be a timezone-aware datetime, got {when}")
    frame = published.select(*_PUBLISHED, *extra).with_columns(pl.col("published_at").cast(_US))
    bad = frame.filter(~pl.col("direction").is_in(["long", "short"]) | pl.col("published_at").is_null())
    if bad.height:
        raise ValueError(f"published has {bad.height} rows with a null time or a direction other than "
                         f"long/short, e.g. {bad.row(0, named=True)}")
    if frame["signal_id"].is_duplicated().any():
        raise ValueError("published has duplicate signal_id values")
    return frame


def _candles(candles_1m: pl.DataFrame) -> pl.DataFrame:
    _require(candles_1m, _CANDLES, "candles_1m")
    if "timeframe" in candles_1m.columns:
        others = candles_1m.filter(pl.col("timeframe") != "1m")
        if others.height:
            raise ValueError(f"candles_1m holds {others.height} candles of other timeframes, "
                             f"e.g. {others['timeframe'][0]!r}")
    frame = candles_1m.select(*_CANDLES).with_columns(pl.col("ts").cast(_US))
    if frame.select(pl.struct(*_MARKET, "ts").is_duplicated().any()).item():
        raise ValueError("candles_1m has duplicate (exchange, symbol, ts) rows")
    return frame.sort(*_MARKET, "ts")


def _with_entry(published: pl.DataFrame, candles: pl.DataFrame, max_entry_delay: timedelta) -> pl.DataFrame:
    """Adds ``entry_ts`` and ``entry_price``: the open of the first candle at or after publication."""
    entries = candles.select(*_MARKET, pl.col("ts").alias("entry_ts"), pl.col("open").alias("entry_price"))
    return (
        published.sort("published_at")
        .join_asof(entries.sort("entry_ts"), left_on="published_at", right_on="entry_ts", by=list(_MARKET),
                   strategy="forward", tolerance=max_entry_delay, check_sortedness=False)
    )


def horizon_returns(
    published: pl.DataFrame,
    candles_1m: pl.DataFrame,
    *,
    horizons: Sequence[int] = HORIZONS,
    costs: TradingCosts = DEFAULT_COSTS,
    max_entry_delay: timedelta = timedelta(minutes=5),
) -> pl.DataFrame:
    """Net direction-aware return of every published signal at each horizon (rules in the module doc).

    Parameters
    ----------
    published
        One row per signal: ``signal_id`` (unique), ``exchange``, ``symbol``, ``direction``
        (``"long"``/``"short"``), ``published_at`` (timezone-aware, any precision).
    candles_1m
        Closed 1m candles: ``exchange``, ``symbol``, ``ts`` (open time, UTC), ``open``, ``high``,
        ``low``, ``close``; an optional ``timeframe`` column must be ``"1m"`` throughout.
    horizons
        Holding times in whole minutes (>= 1).
    costs
        Fee and slippage per side, charged on both sides.
    max_entry_delay
        Latest open time of the entry candle after publication.

    Returns
    -------
    The ``published`` columns plus ``entry_ts``, ``entry_price`` and one Float64 column
    ``return_<h>m`` per horizon (fractions; null when the exit candle is not there), one row per
    signal, in the order of ``published``.
    """
    if not horizons or any(int(h) != h or h < 1 for h in horizons):
        raise ValueError(f"horizons must be whole minutes >= 1, got {tuple(horizons)}")
    signals = _published(published)
    candles = _candles(candles_1m)
    frame = _with_entry(signals.with_row_index("_row"), candles, max_entry_delay)
    closes = candles.select(*_MARKET, pl.col("ts").alias("_exit_ts"), pl.col("close").alias("_exit"))
    for horizon in horizons:
        frame = (
            frame.with_columns((pl.col("entry_ts") + timedelta(minutes=int(horizon) - 1)).alias("_exit_ts"))
            .join(closes, on=[*_MARKET, "_exit_ts"], how="left")
            .with_columns(net_return(pl.col("direction"), pl.col("entry_price"), pl.col("_exit"), costs)
                          .alias(horizon_column(int(horizon))))
            .drop("_exit_ts", "_exit")
        )
    return frame.sort("_row").drop("_row")


def trade_outcomes(
    signals: pl.DataFrame,
    candles_1m: pl.DataFrame,
    *,
    trade_time: int,
    costs: TradingCosts = DEFAULT_COSTS,
    max_entry_delay: timedelta = timedelta(minutes=5),
) -> pl.DataFrame:
    """The trade each market signal would have been: stop, first target or time, and its net PnL.

    The trade is entered like a horizon return (module doc). From the entry candle on, the 1m
    candles opening in ``[entry_ts, entry_ts + trade_time min)`` are walked in time order:

    * the **stop** is hit when a candle's low <= stop (long) or its high >= stop (short); the exit
      price is the stop, or the candle's open when the candle already opened beyond the stop (a
      gap fills at the worse price);
    * the **target** (the first, nearest one: it is always reached before or with farther ones)
      is hit when the high >= target (long) or the low <= target (short); the exit is the target;
    * when one candle touches both, the **stop** is assumed (its order inside the candle is
      unknown; assuming the loss is the conservative choice);
    * if neither is hit, the trade ends at the **time** limit at the close of the candle opening
      ``trade_time - 1`` minutes after the entry candle (the +``trade_time`` horizon);
    * if neither is hit and that last candle is not there (yet), the trade is **open** and its PnL
      null. A missing minute inside the window is walked over (its touch cannot be known); the
      number of missing minutes seen is reported in ``missing_candles``.

    Parameters
    ----------
    signals
        One row per signal: the ``published`` columns of :func:`horizon_returns` plus ``stop`` and
        ``target`` (the first target, ``MarketSignal.targets[0]``), prices in the quote currency.
    candles_1m
        Closed 1m candles as in :func:`horizon_returns`.
    trade_time
        Maximum holding time in minutes (the strategy's ``TRADE_TIME``).
    costs, max_entry_delay
        As in :func:`horizon_returns`.

    Returns
    -------
    The input columns plus ``entry_ts``, ``entry_price``, ``exit_ts`` (open time of the exit
    candle), ``exit_price``, ``exit_reason`` (``stop``/``target``/``time``/``open``), ``pnl`` (net
    return, formula in the module doc; null while open or without entry) and ``missing_candles``,
    in the order of ``signals``. A signal without an entry candle is ``open`` with null prices.
    Each outcome depends only on candles up to its exit candle.
    """
    if int(trade_time) != trade_time or trade_time < 1:
        raise ValueError(f"trade_time must be whole minutes >= 1, got {trade_time!r}")
    frame = _published(signals, ("stop", "target")).with_row_index("_row")
    sign = pl.when(pl.col("direction") == "long").then(1.0).otherwise(-1.0)
    wrong = frame.filter((sign * (pl.col("target") - pl.col("stop")) <= 0) | pl.col("stop").is_null()
                         | pl.col("target").is_null())
    if wrong.height:
        raise ValueError(f"{wrong.height} signals have a missing stop/target or a target not beyond the "
                         f"stop in their direction, e.g. {wrong.row(0, named=True)}")
    candles = _candles(candles_1m)
    frame = _with_entry(frame, candles, max_entry_delay)
    window = timedelta(minutes=int(trade_time))
    walked = (
        frame.filter(pl.col("entry_ts").is_not_null())
        .select("_row", *_MARKET, "direction", "stop", "target", "entry_ts")
        .join(candles, on=list(_MARKET), how="inner")
        .filter((pl.col("ts") >= pl.col("entry_ts")) & (pl.col("ts") < pl.col("entry_ts") + window))
        .with_columns(
            stop_hit=pl.when(pl.col("direction") == "long").then(pl.col("low") <= pl.col("stop"))
            .otherwise(pl.col("high") >= pl.col("stop")),
            target_hit=pl.when(pl.col("direction") == "long").then(pl.col("high") >= pl.col("target"))
            .otherwise(pl.col("low") <= pl.col("target")),
            stop_fill=pl.when(pl.col("direction") == "long").then(pl.min_horizontal("open", "stop"))
            .otherwise(pl.max_horizontal("open", "stop")),
        )
        .sort("_row", "ts")
    )
    hit = pl.col("stop_hit") | pl.col("target_hit")
    last_ts = pl.col("entry_ts").first() + (window - timedelta(minutes=1))
    summary = walked.group_by("_row").agg(
        pl.col("ts").filter(hit).first().alias("_hit_ts"),
        pl.col("stop_hit").filter(hit).first().alias("_by_stop"),
        pl.col("stop_fill").filter(hit).first().alias("_stop_fill"),
        pl.col("close").filter(pl.col("ts") == last_ts).first().alias("_last_close"),
    )
    no_hit = pl.col("_hit_ts").is_null()
    at_time = no_hit & pl.col("_last_close").is_not_null()
    reason = (pl.when(pl.col("entry_ts").is_null()).then(pl.lit("open"))
              .when(~no_hit & pl.col("_by_stop")).then(pl.lit("stop"))
              .when(~no_hit).then(pl.lit("target"))
              .when(at_time).then(pl.lit("time"))
              .otherwise(pl.lit("open")))
    exit_price = (pl.when(pl.col("exit_reason") == "stop").then(pl.col("_stop_fill"))
                  .when(pl.col("exit_reason") == "target").then(pl.col("target"))
                  .when(pl.col("exit_reason") == "time").then(pl.col("_last_close")))
    exit_ts = (pl.when(pl.col("exit_reason").is_in(["stop", "target"])).then(pl.col("_hit_ts"))
               .when(pl.col("exit_reason") == "time").then(pl.col("entry_ts") + (window - timedelta(minutes=1))))
    out = (
        frame.join(summary, on="_row", how="left")
        .join(walked.group_by("_row").agg(pl.col("ts").max().alias("_last_seen")), on="_row", how="left")
        .with_columns(exit_reason=reason)
        .with_columns(exit_price=exit_price, exit_ts=exit_ts)
        .with_columns(pnl=net_return(pl.col("direction"), pl.col("entry_price"), pl.col("exit_price"), costs),
                      _end=pl.coalesce("exit_ts", "_last_seen"))
    )
    # Minutes of the window up to the exit (or the last candle seen while open) that had no candle.
    seen = (walked.select("_row", "ts").join(out.select("_row", "_end"), on="_row")
            .filter(pl.col("ts") <= pl.col("_end")).group_by("_row").agg(pl.len().alias("_upto")))
    out = out.join(seen, on="_row", how="left").with_columns(
        missing_candles=pl.when(pl.col("_end").is_null()).then(pl.lit(0, pl.Int64))
        .otherwise((pl.col("_end") - pl.col("entry_ts")).dt.total_minutes() + 1 - pl.col("_upto"))
    )
    return out.sort("_row").drop(cs.starts_with("_"))
