"""Walk-forward of a rule-based strategy over a parameter grid, with the model backtest's statistics.

A strategy has no weights to fit; what a backtest can overfit is its parameters. So (all times UTC):

* Every **trial** of the grid (:class:`StrategyGrid`; defaults :data:`DEFAULT_GRIDS`) runs the live
  strategy function over the whole range once (signals are free of look-ahead, so running once
  equals running window by window after warm-up), its signals get their outcomes and the account
  takes its trades (:mod:`ml.strategies.backtest`), giving one realised net return per period
  (``period``, default one day).
* **Walk-forward**: windows of :func:`ml.features.splits.walk_forward_windows` over ``[start,
  end)`` (rolling or anchored, ``train_length`` then ``test_length``, test windows back to back).
  In each window the trial with the highest in-sample Sharpe (per period; zero dispersion counts as
  0; ties go to the earlier trial) is chosen on the training periods and its returns in the test
  periods are the out-of-sample series. A trade is booked where it exits, so selection reads only
  trades closed before the test window opens. No embargo: nothing is fitted to labels.
* **Baselines** on the same test periods and costs: buy-and-hold (equal weight, close to close,
  entered afresh each window), always flat, and **random entries**: the seed configuration's
  signals moved to uniformly drawn candles of the same market (same count, direction, stop and
  target distances and holding time; ``seed``), the information-free twin of the strategy.
* **Selection**: PBO by CSCV (:func:`ml.evaluation.overfitting.probability_of_backtest_overfitting`)
  on the ``periods x trials`` matrix of the whole range, and the deflated Sharpe ratio of the
  out-of-sample series given the number of trials and the variance of their per-period Sharpes.
* **Verdict**: "edge after fees" only when the deflated Sharpe is at least
  :data:`ml.evaluation.verdict.SIGNIFICANCE_LEVEL` and the Sharpe beats random entries and
  buy-and-hold; otherwise the failed checks are named.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from ml.evaluation.costs import DEFAULT_COSTS, TradingCosts, trade_returns
from ml.evaluation.grid import _cscv_blocks, _per_period_sharpes
from ml.evaluation.metrics import OverfitAssessment, PerformanceSummary, assess_overfit, summarise
from ml.evaluation.overfitting import (
    deflated_sharpe_ratio,
    expected_maximum_sharpe,
    probability_of_backtest_overfitting,
    sharpe_ratio_moments,
)
from ml.evaluation.verdict import SIGNIFICANCE_LEVEL, Verdict, jsonable
from ml.features.splits import Mode, walk_forward_windows
from ml.strategies.backtest import (
    HORIZON_CANDLES,
    OutcomeClock,
    StrategyName,
    horizon_table,
    period_returns,
    period_starts,
    random_entry_signals,
    run_strategy,
    signal_outcomes,
    strategy_config,
    taken_trades,
)

SCHEMA_VERSION = 1
Overrides = Mapping[str, Any]


@dataclass(frozen=True)
class StrategyGrid:
    """Axes of parameter overrides; the trials are every combination (one override dict per value)."""

    axes: tuple[tuple[str, tuple[Overrides, ...]], ...]

    def trials(self) -> list[dict[str, Any]]:
        values = [axis for _, axis in self.axes]
        return [{k: v for part in combo for k, v in part.items()} for combo in itertools.product(*values)]


def _axis(name: str, values: Sequence[Any]) -> tuple[str, tuple[Overrides, ...]]:
    return name, tuple({name: v} for v in values)


#: BOS: strength threshold x volume multiplier; EMA scalper: EMA periods x RSI bands. The seed
#: values are the middle of each axis.
DEFAULT_GRIDS: dict[str, StrategyGrid] = {
    "bos": StrategyGrid((_axis("bos_strength_threshold", (1.003, 1.006, 1.012)),
                         _axis("min_volume_multiplier", (1.0, 1.3, 2.0)))),
    "ema_cross": StrategyGrid((
        ("ema_periods", ({"fast_ema": 5, "slow_ema": 13}, {"fast_ema": 9, "slow_ema": 21},
                         {"fast_ema": 12, "slow_ema": 26})),
        ("rsi_band", ({"rsi_long_min": 50.0, "rsi_short_max": 50.0}, {"rsi_long_min": 55.0, "rsi_short_max": 45.0},
                      {"rsi_long_min": 60.0, "rsi_short_max": 40.0})))),
}


@dataclass(frozen=True)
class StrategyBacktestConfig:
    """Walk-forward settings; ``overrides`` change the seed parameters of every trial."""

    mode: Mode = "rolling"
    train_length: timedelta = timedelta(days=84)
    test_length: timedelta = timedelta(days=28)
    period: timedelta = timedelta(days=1)
    costs: TradingCosts = DEFAULT_COSTS
    seed: int = 0
    horizons: tuple[int, ...] = HORIZON_CANDLES
    overrides: Mapping[str, Any] = field(default_factory=dict)

    @property
    def periods_per_year(self) -> float:
        return timedelta(days=365) / self.period


@dataclass(frozen=True)
class TrialResult:
    overrides: dict[str, Any]
    signals: int
    taken: pl.DataFrame
    returns: np.ndarray


@dataclass(frozen=True)
class StrategyBacktest:
    """Result of :func:`strategy_backtest`; :meth:`to_dict` is the report layout. ``portfolio``:
    one row per test period (``ts``, ``window``, ``strategy``, ``buy_and_hold``, ``always_flat``,
    ``random_entries``); ``outcomes``: every seed-configuration signal with its outcomes."""

    segment: str  # the strategy's name, under the model report's key
    symbols: tuple[str, ...]
    timeframe: str
    config: StrategyBacktestConfig
    parameters: dict[str, Any]
    clock: OutcomeClock
    trials: tuple[TrialResult, ...]
    seed_trial: int
    outcomes: pl.DataFrame
    windows: pl.DataFrame
    portfolio: pl.DataFrame
    out_of_sample: PerformanceSummary
    seed_out_of_sample: PerformanceSummary
    in_sample_sharpe: float
    overfit: OverfitAssessment
    baselines: dict[str, PerformanceSummary]
    trial_sharpe_variance: float
    deflated_sharpe: float
    pbo: float | None
    cscv_blocks: int | None
    cscv_combinations: int | None

    @property
    def verdict(self) -> Verdict:
        sharpe = self.out_of_sample.sharpe

        def beats(name: str) -> bool:
            other = self.baselines[name].sharpe
            return math.isfinite(sharpe) and sharpe > (0.0 if math.isnan(other) else other)

        checks = {"deflated_sharpe_significant": bool(self.deflated_sharpe >= SIGNIFICANCE_LEVEL),
                  "beats_random_entries": beats("random_entries"), "beats_buy_and_hold": beats("buy_and_hold")}
        trials = len(self.trials)
        if all(checks.values()):
            return Verdict(True, f"edge after fees: deflated Sharpe {self.deflated_sharpe:.3f} >= "
                           f"{SIGNIFICANCE_LEVEL} over {trials} trial(s), Sharpe {sharpe:.2f} beats random entries "
                           "and buy-and-hold", checks)
        failed = []
        if not checks["deflated_sharpe_significant"]:
            failed.append(f"deflated Sharpe {self.deflated_sharpe:.3f} is below {SIGNIFICANCE_LEVEL} over "
                          f"{trials} trial(s)")
        for name, label in (("random_entries", "random entries"), ("buy_and_hold", "buy-and-hold")):
            if not checks[f"beats_{name}"]:
                failed.append(f"Sharpe {sharpe:.2f} does not beat {label} ({self.baselines[name].sharpe:.2f})")
        return Verdict(False, "no edge after fees: " + "; ".join(failed), checks)

    def trade_summary(self) -> dict[str, Any]:
        """The seed configuration's signals over the whole range: exits, taken trades, PnL."""
        closed = self.outcomes.filter(pl.col("pnl").is_not_null())
        taken = self.trials[self.seed_trial].taken
        pnl = taken.get_column("pnl").to_numpy()
        spread = float(np.std(pnl, ddof=1)) if pnl.size > 1 else math.nan
        return {
            "signals": self.outcomes.height,
            "long": int((self.outcomes["direction"] == "long").sum()),
            "short": int((self.outcomes["direction"] == "short").sum()),
            "exit_reasons": {r: int((self.outcomes["exit_reason"] == r).sum())
                             for r in ("stop", "target", "time", "open")},
            "signal_pnl_mean": float(closed["pnl"].mean()) if closed.height else math.nan,  # type: ignore[arg-type]
            "signal_win_rate": float((closed["pnl"] > 0).mean()) if closed.height else math.nan,  # type: ignore[arg-type]
            "taken_trades": int(pnl.size),
            "taken_win_rate": float(np.mean(pnl > 0)) if pnl.size else math.nan,
            "expectancy": float(np.mean(pnl)) if pnl.size else math.nan,
            "median": float(np.median(pnl)) if pnl.size else math.nan,
            "t_stat": float(np.mean(pnl) / spread * math.sqrt(pnl.size)) if pnl.size > 1 and spread > 0 else math.nan,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: the model report's keys (config, costs, windows, overall, baselines, selection,
        verdict, grid) plus ``strategy``, ``parameters``, ``outcome_clock``, ``trades``, ``horizons``
        and ``seed`` (the seed configuration on the same test periods)."""
        verdict = self.verdict
        best = int(np.argmax(_per_period_sharpes(np.column_stack([t.returns for t in self.trials]))))
        return jsonable({
            "schema_version": SCHEMA_VERSION, "strategy": self.segment, "symbols": list(self.symbols),
            "timeframe": self.timeframe, "parameters": self.parameters,
            "outcome_clock": {"candles": "1m" if self.clock.scale_ms == 60_000 else self.timeframe,
                              "horizon_candles": list(self.config.horizons),
                              "horizon_minutes": [self.clock.horizon_minutes(h) for h in self.config.horizons]},
            "config": {"mode": self.config.mode, "train_days": self.config.train_length / timedelta(days=1),
                       "test_days": self.config.test_length / timedelta(days=1),
                       "period_hours": self.config.period / timedelta(hours=1),
                       "periods_per_year": self.config.periods_per_year, "seed": self.config.seed},
            "costs": asdict(self.config.costs),
            "windows": self.windows.to_dicts(),
            "overall": {**asdict(self.out_of_sample), "in_sample_sharpe": self.in_sample_sharpe,
                        "overfit_ratio": self.overfit.ratio, "overfit": self.overfit.overfit},
            "baselines": {name: asdict(summary) for name, summary in self.baselines.items()},
            "seed": {"trial": self.seed_trial, **asdict(self.seed_out_of_sample)},
            "selection": {"trials": len(self.trials), "trial_sharpe_variance": self.trial_sharpe_variance,
                          "deflated_sharpe": self.deflated_sharpe, "pbo": self.pbo,
                          "significance_level": SIGNIFICANCE_LEVEL},
            "verdict": {"edge_after_fees": verdict.edge, "text": verdict.text, "checks": verdict.checks},
            "grid": {"trials": [{"parameters": t.overrides, "signals": t.signals, "taken_trades": t.taken.height,
                                 "sharpe": _annual_sharpe(t.returns, self.config.periods_per_year)}
                                for t in self.trials],
                     "pbo": self.pbo, "cscv_blocks": self.cscv_blocks, "cscv_combinations": self.cscv_combinations,
                     "best_trial": best, "trial_sharpe_variance": self.trial_sharpe_variance,
                     "expected_maximum_sharpe": expected_maximum_sharpe(len(self.trials), self.trial_sharpe_variance),
                     "best_deflated_sharpe": _deflated(self.trials[best].returns, len(self.trials),
                                                       self.trial_sharpe_variance)},
            "trades": self.trade_summary(),
            "horizons": horizon_table(self.outcomes, self.clock, self.config.horizons).to_dicts(),
        })


def _annual_sharpe(returns: np.ndarray, periods_per_year: float) -> float:
    spread = float(np.std(returns, ddof=1)) if returns.size > 1 else 0.0
    return float(np.mean(returns)) / spread * math.sqrt(periods_per_year) if spread > 0 else math.nan


def _deflated(returns: np.ndarray, trials: int, variance: float) -> float:
    try:
        sharpe, skewness, kurtosis, periods = sharpe_ratio_moments(returns)
    except ValueError:  # never traded, or too few periods: nothing to deflate, nothing claimed
        return math.nan
    return deflated_sharpe_ratio(sharpe, periods=periods, trials=trials, sharpe_variance=variance,
                                 skewness=skewness, kurtosis=kurtosis)


def _trial(strategy: StrategyName, overrides: dict[str, Any], candles: pl.DataFrame, confirm: pl.DataFrame | None,
           minute: pl.DataFrame | None, timeframe: str, starts: pl.Series, config: StrategyBacktestConfig,
           markets: int) -> tuple[TrialResult, pl.DataFrame, OutcomeClock, list[Any]]:
    settings = strategy_config(strategy, overrides, timeframe=timeframe)
    signals = run_strategy(strategy, settings, candles, confirm)
    outcomes, clock = signal_outcomes(signals, candles, minute_candles=minute, horizons=config.horizons,
                                      costs=config.costs)
    taken = taken_trades(outcomes)
    returns = period_returns(taken, starts, config.period, markets)
    return TrialResult(overrides, len(signals), taken, returns), outcomes, clock, signals


def _buy_and_hold(candles: pl.DataFrame, starts: pl.Series, period: timedelta) -> np.ndarray:
    """``periods x markets`` close-to-close returns (the previous period's last close, or the
    first open, to this period's last close; 0 for a period without candles)."""
    first_ms = int(starts.dt.epoch("ms")[0])
    indexed = candles.sort("ts").with_columns(
        ((pl.col("ts").dt.epoch("ms") - first_ms) // int(period / timedelta(milliseconds=1))).alias("p"))
    columns = []
    for _, rows in sorted(indexed.group_by("exchange", "symbol"), key=lambda kv: kv[0]):  # type: ignore[arg-type, return-value]
        last = rows.group_by("p").agg(pl.col("close").last()).sort("p")
        closes = np.full(starts.len(), np.nan)
        inside = last.filter((pl.col("p") >= 0) & (pl.col("p") < starts.len()))
        closes[inside["p"].to_numpy()] = inside["close"].to_numpy()
        filled = pl.Series(closes).fill_nan(None).forward_fill().to_numpy().astype(np.float64)
        previous = np.r_[float(rows["open"][0]), filled[:-1]]
        moves = np.nan_to_num(filled / previous - 1.0, nan=0.0)
        columns.append(moves)
    return np.column_stack(columns)


def strategy_backtest(strategy: StrategyName, candles: pl.DataFrame, *, start: datetime, end: datetime,
                      confirm_candles: pl.DataFrame | None = None, minute_candles: pl.DataFrame | None = None,
                      config: StrategyBacktestConfig | None = None,
                      grid: StrategyGrid | None = None) -> StrategyBacktest:
    """Walk-forward of ``strategy`` over ``grid`` (module docstring) on ``candles`` in ``[start, end)``.

    ``candles``: CANDLE_SCHEMA rows of the strategy's timeframe (one or more markets);
    ``confirm_candles``: the EMA scalper's 1h candles; ``minute_candles``: 1m candles of the same
    markets for 1m-exact outcomes, or None. ``grid`` None runs the seed configuration alone (one
    trial, no PBO). Raises ``ValueError`` when no candles are given, or the range holds no full
    walk-forward window, or the strategy rejects the candles.
    """
    config = config or StrategyBacktestConfig()
    if candles.is_empty():
        raise ValueError("no candles to backtest")
    timeframe = str(candles["timeframe"][0])
    windows = walk_forward_windows(start, end, train_length=config.train_length, test_length=config.test_length,
                                   mode=config.mode)
    if not windows:
        raise ValueError(f"[{start}, {end}) is shorter than one window of {config.train_length} training + "
                         f"{config.test_length} test")
    starts = period_starts(start, end, config.period)
    markets = candles.select("exchange", "symbol").unique().height
    seed_overrides = dict(config.overrides)
    trial_overrides = [{**seed_overrides, **t} for t in grid.trials()] if grid else [seed_overrides]
    seed_config = strategy_config(strategy, seed_overrides, timeframe=timeframe)
    seed_index = next((i for i, o in enumerate(trial_overrides)
                       if strategy_config(strategy, o, timeframe=timeframe) == seed_config), None)
    if seed_index is None:
        trial_overrides.append(seed_overrides)
        seed_index = len(trial_overrides) - 1
    trials: list[TrialResult] = []
    for index, overrides in enumerate(trial_overrides):
        trial, outcomes, clock, signals = _trial(strategy, overrides, candles, confirm_candles, minute_candles,
                                                 timeframe, starts, config, markets)
        trials.append(trial)
        if index == seed_index:
            seed_outcomes, seed_clock, seed_signals = outcomes, clock, signals
    random = random_entry_signals(seed_signals, candles, seed=config.seed)
    random_outcomes, _ = signal_outcomes(random, candles, minute_candles=minute_candles, horizons=(1,),
                                         costs=config.costs)
    random_taken = taken_trades(random_outcomes)
    random_returns = period_returns(random_taken, starts, config.period, markets)
    matrix = np.column_stack([t.returns for t in trials])
    holds = _buy_and_hold(candles, starts, config.period)
    ppy, costs = config.periods_per_year, config.costs
    ts = starts.to_numpy()
    rows, parts, in_sample = [], [], []
    for window in windows:
        train = (ts >= np.datetime64(window.train.start.replace(tzinfo=None))) & (
            ts < np.datetime64(window.train.end.replace(tzinfo=None)))
        test = (ts >= np.datetime64(window.test.start.replace(tzinfo=None))) & (
            ts < np.datetime64(window.test.end.replace(tzinfo=None)))
        chosen = int(np.argmax(_per_period_sharpes(matrix[train])))
        moves = holds[test]
        bh = moves.mean(axis=1)
        bh[0] -= costs.per_unit_traded
        taken = trials[chosen].taken.filter(pl.col("exit_close_ts").is_between(window.test.start, window.test.end,
                                                                                closed="left"))
        oos = summarise(matrix[test, chosen], taken["pnl"].to_numpy(), periods_per_year=ppy)
        in_sample.append(_annual_sharpe(matrix[train, chosen], ppy))
        flag = assess_overfit(in_sample[-1], oos.sharpe)
        rows.append({"window": window.index, "train_start": window.train.start, "train_end": window.train.end,
                     "test_start": window.test.start, "test_end": window.test.end, "chosen_trial": chosen,
                     "chosen_parameters": str(trials[chosen].overrides), "is_sharpe": in_sample[-1],
                     **{f"oos_{k}": v for k, v in asdict(oos).items()},
                     "buy_and_hold_sharpe": _annual_sharpe(bh, ppy),
                     "random_entries_sharpe": _annual_sharpe(random_returns[test], ppy),
                     "overfit_ratio": flag.ratio, "overfit": flag.overfit})
        bh_trades = [trade_returns(np.ones(moves.shape[0]), moves[:, m], costs=costs) for m in range(moves.shape[1])]
        parts.append({"ts": starts.filter(pl.Series(test)), "window": window.index, "test": test,
                      "strategy": matrix[test, chosen], "buy_and_hold": bh, "bh_trades": bh_trades, "taken": taken})
    test_mask = np.any([p["test"] for p in parts], axis=0)
    strategy_series = np.concatenate([p["strategy"] for p in parts])
    portfolio = pl.DataFrame({
        "ts": pl.concat([p["ts"] for p in parts]),
        "window": np.concatenate([np.full(p["ts"].len(), p["window"]) for p in parts]),
        "strategy": strategy_series, "buy_and_hold": np.concatenate([p["buy_and_hold"] for p in parts]),
        "always_flat": np.zeros(strategy_series.size), "random_entries": random_returns[test_mask]})
    test_start, test_end = windows[0].test.start, windows[-1].test.end
    random_in_test = random_taken.filter(pl.col("exit_close_ts").is_between(test_start, test_end, closed="left"))
    seed_in_test = trials[seed_index].taken.filter(pl.col("exit_close_ts").is_between(test_start, test_end,
                                                                                       closed="left"))
    baselines = {
        "buy_and_hold": summarise(portfolio["buy_and_hold"].to_numpy(),
                                  np.concatenate([t for p in parts for t in p["bh_trades"]]), periods_per_year=ppy),
        "always_flat": summarise(portfolio["always_flat"].to_numpy(), [], periods_per_year=ppy),
        "random_entries": summarise(portfolio["random_entries"].to_numpy(), random_in_test["pnl"].to_numpy(),
                                    periods_per_year=ppy),
    }
    out = summarise(strategy_series, np.concatenate([p["taken"]["pnl"].to_numpy() for p in parts]),
                    periods_per_year=ppy)
    sharpes = _per_period_sharpes(matrix)
    variance = float(np.var(sharpes, ddof=1)) if sharpes.size > 1 else 0.0
    blocks = _cscv_blocks(matrix.shape[0]) if sharpes.size > 1 else None
    pbo = None if blocks is None else probability_of_backtest_overfitting(matrix, splits=blocks)
    is_mean = float(np.nanmean(in_sample)) if np.isfinite(in_sample).any() else math.nan
    return StrategyBacktest(
        segment=strategy, symbols=tuple(sorted(set(candles["symbol"].to_list()))), timeframe=timeframe,
        config=config, parameters=seed_config.model_dump(mode="json"), clock=seed_clock, trials=tuple(trials),
        seed_trial=seed_index, outcomes=seed_outcomes, windows=pl.DataFrame(rows), portfolio=portfolio,
        out_of_sample=out,
        seed_out_of_sample=summarise(matrix[test_mask, seed_index], seed_in_test["pnl"].to_numpy(),
                                     periods_per_year=ppy),
        in_sample_sharpe=is_mean, overfit=assess_overfit(is_mean, out.sharpe), baselines=baselines,
        trial_sharpe_variance=variance, deflated_sharpe=_deflated(strategy_series, len(trials), variance),
        pbo=None if pbo is None else pbo.pbo, cscv_blocks=blocks,
        cscv_combinations=None if pbo is None else pbo.splits)
