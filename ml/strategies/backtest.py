"""A strategy over stored candles: the live strategy functions, their signals' outcomes, and trades.

The signals come from the very function the live path calls, :func:`ml.strategies.scan.scan_markets`
(which runs :func:`ml.strategies.bos.detect_bos` and :func:`ml.strategies.ema_cross.detect_ema_cross`),
on the whole range at once; the outcomes from the
functions the live ``signal_outcomes`` use (:func:`ml.signals.outcomes.horizon_returns`,
:func:`ml.signals.outcomes.trade_outcomes`). Definitions (all times UTC, ``T`` = the strategy's
candle timeframe, ``ts`` = a candle's open time):

Publication
    A signal is published at its trigger candle's close, ``trigger_ts + T`` (the live path cannot
    know it earlier), so its entry is the open of the next candle.
Horizons
    ``HORIZON_CANDLES`` = +1, 2, 3, 5, 10 and 15 candles of ``T``, i.e. ``h * T`` minutes of
    holding time; each outcome column is named after its minutes (``return_<h*T>m``).

    * With **1m candles** for the symbol (``minute_candles``), the outcome is computed exactly as
      live: entry at the open of the first 1m candle at or after publication, exit at the close of
      the 1m candle ``h*T - 1`` minutes after it. For ``T = 1m`` this is the live definition.
    * Without 1m candles, the same functions run on the strategy's own candles on a clock where
      one candle lasts one minute (times are divided by ``T`` and multiplied back afterwards):
      entry at the next candle's open, exit at the close of the ``h``-th candle. Stops and
      targets are then judged on ``T`` candles (a candle touching both counts as the stop).
Trade
    Stop = the signal's stop, target = its first target, held at most until the signal's expiry
    (``expires_at - publication``: ``TRADE_TIME`` for BOS, ``expiry_minutes`` for the EMA
    scalper), rounded up to whole candles on the scaled clock. Fees and slippage per side on
    both sides (:func:`ml.signals.outcomes.net_return`).
Taken trades
    Every signal has an outcome (as live, where every published signal gets one). The account
    takes a signal only when no earlier taken trade of the same (exchange, symbol) is still open
    at its entry (one position per market); trades that never close inside the data are not taken.
Period returns
    Each market is an equal sleeve ``1 / n_markets`` of the account; a taken trade commits the
    signal's ``size`` (allocation x leverage) of its sleeve, and its net return is booked in the
    period containing its exit (the exit candle's close). ``period_return[p] = sum(size * pnl) /
    n_markets`` over the trades exiting in ``p``: the realised, non-compounding PnL of the period.

No look-ahead: signals are those of the live functions (each proved free of look-ahead by its own
tests); an outcome reads candles from its entry to its exit only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
import polars as pl

from ml.evaluation.costs import DEFAULT_COSTS, TradingCosts
from ml.marketdata.frames import CANDLE_SCHEMA, TS
from ml.marketdata.timeframes import MINUTE_MS, timeframe_ms
from ml.signals.outcomes import horizon_column, horizon_returns, trade_outcomes
from ml.strategies.signal import MarketSignal

StrategyName = Literal["bos", "ema_cross"]
STRATEGIES: tuple[StrategyName, ...] = ("bos", "ema_cross")
HORIZON_CANDLES: tuple[int, ...] = (1, 2, 3, 5, 10, 15)
_MARKET = ("exchange", "symbol")


def strategy_config(strategy: StrategyName, overrides: Mapping[str, Any] | None = None, *,
                    timeframe: str | None = None) -> Any:
    """The strategy's validated config: seed defaults, then ``overrides``; for BOS ``interval`` is
    set to ``timeframe`` when given (the seed system runs on 1m, the 2024 data is 5m/1h)."""
    from ml.strategies.bos import BosConfig
    from ml.strategies.ema_cross import EmaCrossConfig

    values = dict(overrides or {})
    if strategy == "bos":
        if timeframe is not None:
            values.setdefault("interval", timeframe)
        return BosConfig(**values)
    if strategy == "ema_cross":
        return EmaCrossConfig(**values)
    raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")


def run_strategy(strategy: StrategyName, config: Any, candles: pl.DataFrame,
                 confirm_candles: pl.DataFrame | None = None) -> list[MarketSignal]:
    """The signals live would have stored had these candles arrived one by one: the live path's own
    scan (:func:`ml.strategies.scan.scan_markets`) over the whole range, no ``since`` and nothing
    kept before it. BOS reads ``candles`` (of ``config.interval``); the EMA scalper reads 15m
    ``candles`` and the 1h ``confirm_candles``. Raises ``ValueError`` naming every market whose
    candles the strategy rejects."""
    from ml.strategies.scan import scan_markets

    empty = candles.clear()
    if strategy == "bos":
        result = scan_markets(candles_1m=candles, candles_15m=empty, candles_1h=empty, bos=config)
    else:
        if confirm_candles is None:
            raise ValueError("the EMA scalper needs its 1h confirmation candles")
        result = scan_markets(candles_1m=empty, candles_15m=candles, candles_1h=confirm_candles, ema_cross=config)
    if result.errors:
        raise ValueError("; ".join(f"{market}: {error}" for market, error in sorted(result.errors.items())))
    return result.signals


def aggregate_candles(candles: pl.DataFrame, timeframe: str) -> pl.DataFrame:
    """``timeframe`` candles from finer ones of one timeframe by the live rule
    (:func:`ml.marketdata.resample.resample`, as ``candles_subhour`` and ``candles_mtf``): epoch-aligned
    buckets, open = first open, high = max, low = min, close = last close, volume = sum, and only
    complete buckets (every finer candle present) become candles."""
    from ml.marketdata.resample import resample

    if candles.is_empty():
        return pl.DataFrame(schema=CANDLE_SCHEMA)
    sources = candles.get_column("timeframe").unique().to_list()
    if len(sources) != 1:
        raise ValueError(f"aggregate one timeframe at a time, got {sources}")
    source_ms, target_ms = timeframe_ms(sources[0]), timeframe_ms(timeframe)
    if target_ms % source_ms or target_ms <= source_ms:
        raise ValueError(f"{timeframe} candles cannot be built from {sources[0]} candles")
    closed_by = candles.get_column("ts").max() + timedelta(milliseconds=source_ms)  # type: ignore[operator]
    complete, _ = resample(candles, timeframe, now=closed_by, source=sources[0])
    return complete


@dataclass(frozen=True)
class OutcomeClock:
    """How outcomes are measured: on 1m candles (``scale_ms`` 60 000) or on the strategy's own
    candles with one candle counted as one minute (``scale_ms`` = the candle's length)."""

    timeframe: str
    scale_ms: int

    @property
    def step_minutes(self) -> int:
        return timeframe_ms(self.timeframe) // MINUTE_MS

    def horizon_minutes(self, candles: int) -> int:
        return candles * self.step_minutes


def _scaled(column: str, scale_ms: int) -> pl.Expr:
    ms = pl.col(column).dt.epoch("ms")
    return ((ms // scale_ms) * MINUTE_MS + ms % scale_ms).cast(TS).alias(column)


def _unscaled(column: str, scale_ms: int) -> pl.Expr:
    ms = pl.col(column).dt.epoch("ms")
    return ((ms // MINUTE_MS) * scale_ms + ms % MINUTE_MS).cast(TS).alias(column)


def signal_outcomes(signals: Sequence[MarketSignal], candles: pl.DataFrame, *,
                    minute_candles: pl.DataFrame | None = None,
                    horizons: Sequence[int] = HORIZON_CANDLES,
                    costs: TradingCosts = DEFAULT_COSTS) -> tuple[pl.DataFrame, OutcomeClock]:
    """Every signal's horizon returns and its trade (rules in the module docstring).

    Parameters
    ----------
    signals
        One strategy's signals, all of one timeframe ``T``.
    candles
        The strategy's ``T`` candles (CANDLE_SCHEMA), used when ``minute_candles`` is None.
    minute_candles
        1m candles of the signals' markets over the range, or None.
    horizons
        Holding times in candles of ``T``.
    costs
        Fee and slippage per side.

    Returns
    -------
    (frame, clock): one row per signal in trigger order: ``signal_id`` (its index), ``exchange``,
    ``symbol``, ``direction``, ``trigger_ts``, ``published_at``, ``entry``, ``stop``, ``target``,
    ``size``, ``confidence``, ``risk_level``, ``entry_ts``, ``entry_price``, ``return_<h*T>m`` per
    horizon, ``exit_ts`` (open of the exit candle), ``exit_close_ts`` (its close), ``exit_price``,
    ``exit_reason``, ``pnl`` (net), ``missing_candles``.
    """
    timeframes = {s.timeframe for s in signals}
    if len(timeframes) > 1:
        raise ValueError(f"signals of one timeframe at a time, got {sorted(timeframes)}")
    timeframe = timeframes.pop() if timeframes else str(candles["timeframe"][0]) if candles.height else "1m"
    step = timedelta(milliseconds=timeframe_ms(timeframe))
    clock = OutcomeClock(timeframe, MINUTE_MS if minute_candles is not None else timeframe_ms(timeframe))
    published = pl.DataFrame(
        {"signal_id": list(range(len(signals))), "exchange": [s.exchange for s in signals],
         "symbol": [s.symbol for s in signals], "direction": [s.direction for s in signals],
         "trigger_ts": [s.trigger_ts for s in signals], "published_at": [s.trigger_ts + step for s in signals],
         "entry": [s.entry for s in signals], "stop": [s.stop for s in signals],
         "target": [s.targets[0] for s in signals], "size": [s.size for s in signals],
         "confidence": [s.confidence for s in signals], "risk_level": [s.risk_level for s in signals]},
        schema={"signal_id": pl.Int64, "exchange": pl.String, "symbol": pl.String, "direction": pl.String,
                "trigger_ts": TS, "published_at": TS, "entry": pl.Float64, "stop": pl.Float64,
                "target": pl.Float64, "size": pl.Float64, "confidence": pl.Float64, "risk_level": pl.String})
    holds = {s.expires_at - (s.trigger_ts + step) for s in signals}
    if len(holds) > 1:
        raise ValueError(f"signals of one strategy config share one holding time, got {sorted(holds)}")
    hold_ms = int(holds.pop() / timedelta(milliseconds=1)) if holds else timeframe_ms(timeframe)
    source = minute_candles if minute_candles is not None else candles
    scale = clock.scale_ms
    bars = source.select(*_MARKET, _scaled("ts", scale), "open", "high", "low", "close")
    asked = published.with_columns(_scaled("published_at", scale))
    minutes = [h * (clock.step_minutes if scale == MINUTE_MS else 1) for h in horizons]
    trade_minutes = math.ceil(hold_ms / scale)
    reach = timedelta(minutes=5 + max(trade_minutes, *minutes))
    bars = _near(bars, asked, reach)
    returns = horizon_returns(asked, bars, horizons=minutes, costs=costs,
                              max_entry_delay=timedelta(minutes=5))
    trades = trade_outcomes(asked, bars, trade_time=trade_minutes, costs=costs, max_entry_delay=timedelta(minutes=5))
    names = {horizon_column(m): horizon_column(clock.horizon_minutes(h)) for m, h in zip(minutes, horizons, strict=True)}
    frame = published.join(
        returns.select("signal_id", _unscaled("entry_ts", scale), "entry_price", *names).rename(names),
        on="signal_id").join(
        trades.select("signal_id", _unscaled("exit_ts", scale), "exit_price", "exit_reason", "pnl",
                      "missing_candles"), on="signal_id")
    exit_step = timedelta(minutes=1) if scale == MINUTE_MS else step
    return frame.with_columns((pl.col("exit_ts") + exit_step).alias("exit_close_ts")).sort("signal_id"), clock


def _near(bars: pl.DataFrame, asked: pl.DataFrame, reach: timedelta) -> pl.DataFrame:
    """The candles opening within ``reach`` after some signal's publication in their market: all
    an outcome reads, so the outcome functions' per-signal joins stay small on long ranges."""
    if asked.is_empty():
        return bars.clear()
    moments = asked.select(*_MARKET, pl.col("published_at").alias("_from")).unique().sort("_from")
    return (bars.sort("ts").join_asof(moments, left_on="ts", right_on="_from", by=list(_MARKET),
                                      strategy="backward", tolerance=reach, check_sortedness=False)
            .filter(pl.col("_from").is_not_null()).drop("_from"))


def taken_trades(outcomes: pl.DataFrame) -> pl.DataFrame:
    """The outcomes the account takes: closed trades, one open position per market (module doc)."""
    closed = outcomes.filter(pl.col("pnl").is_not_null()).sort(*_MARKET, "entry_ts", "signal_id")
    keep = np.zeros(closed.height, dtype=bool)
    markets = closed.select(pl.concat_str(*_MARKET, separator="\x00")).to_series().to_list()
    entries = closed.get_column("entry_ts").to_list()
    exits = closed.get_column("exit_close_ts").to_list()
    free_from: dict[str, datetime] = {}
    for row, (market, entry, exit_close) in enumerate(zip(markets, entries, exits, strict=True)):
        if market not in free_from or entry >= free_from[market]:
            keep[row] = True
            free_from[market] = exit_close
    return closed.filter(pl.Series(keep)).sort("exit_close_ts", "signal_id")


def period_starts(start: datetime, end: datetime, period: timedelta) -> pl.Series:
    """Open times of the periods ``[start + k * period, ...)`` covering ``[start, end)``."""
    count = max(1, math.ceil((end - start) / period))
    return pl.Series("ts", [start + k * period for k in range(count)], dtype=TS)


def period_returns(trades: pl.DataFrame, starts: pl.Series, period: timedelta, markets: int) -> np.ndarray:
    """Realised net return of the account per period (module doc), zeros where nothing closed."""
    if markets < 1:
        raise ValueError("at least one market")
    first_ms = int(starts.dt.epoch("ms")[0])
    index = (trades.get_column("exit_close_ts").dt.epoch("ms") - first_ms) // int(period / timedelta(milliseconds=1))
    inside = (index >= 0) & (index < starts.len())
    weights = (trades.get_column("size") * trades.get_column("pnl")).filter(inside).to_numpy()
    return np.bincount(index.filter(inside).to_numpy(), weights=weights, minlength=starts.len()) / markets


def horizon_table(outcomes: pl.DataFrame, clock: OutcomeClock,
                  horizons: Sequence[int] = HORIZON_CANDLES) -> pl.DataFrame:
    """Per horizon: candles, minutes, signals measured, win rate, mean (= expectancy per signal),
    median and t-statistic of the net returns (fractions)."""
    rows = []
    for candles in horizons:
        minutes = clock.horizon_minutes(candles)
        values = outcomes.get_column(horizon_column(minutes)).drop_nulls().to_numpy()
        spread = float(np.std(values, ddof=1)) if values.size > 1 else math.nan
        rows.append({"candles": candles, "minutes": minutes, "signals": int(values.size),
                     "win_rate": float(np.mean(values > 0)) if values.size else math.nan,
                     "mean": float(np.mean(values)) if values.size else math.nan,
                     "median": float(np.median(values)) if values.size else math.nan,
                     "t_stat": float(np.mean(values) / spread * math.sqrt(values.size))
                     if values.size > 1 and spread > 0 else math.nan})
    return pl.DataFrame(rows)


def random_entry_signals(signals: Sequence[MarketSignal], candles: pl.DataFrame, *, seed: int) -> list[MarketSignal]:
    """The baseline without information: as many signals per market and direction as ``signals``,
    on trigger candles drawn uniformly (without replacement, ``seed``) from that market's candles,
    each with the stop and first-target distances (fractions of the entry) and holding time of a
    real signal of that market, at the drawn candle's close."""
    from dataclasses import replace

    rng = np.random.default_rng(seed)
    by_market: dict[tuple[str, str], list[MarketSignal]] = {}
    for signal in signals:
        by_market.setdefault((signal.exchange, signal.symbol), []).append(signal)
    drawn: list[MarketSignal] = []
    for (exchange, symbol), own in sorted(by_market.items()):
        rows = candles.filter((pl.col("exchange") == exchange) & (pl.col("symbol") == symbol)).sort("ts")
        picks = np.sort(rng.choice(rows.height, size=min(len(own), rows.height), replace=False))
        for signal, pick in zip(own, picks, strict=False):
            close = float(rows["close"][int(pick)])
            ratio = close / signal.entry
            trigger = rows["ts"][int(pick)]
            drawn.append(replace(signal, trigger_ts=trigger, entry=close, stop=signal.stop * ratio,
                                 targets=tuple(t * ratio for t in signal.targets),
                                 expires_at=trigger + (signal.expires_at - signal.trigger_ts), factors={}))
    return sorted(drawn, key=lambda s: (s.trigger_ts, s.key))
