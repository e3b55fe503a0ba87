"""Walk-forward of one market segment over several symbols: one XGBoost model per window, trained
on the pooled rows of all the segment's symbols, traded as an equal-weight portfolio after costs.

Choice: *one model per window for the whole segment* (not one per symbol). The seed asks for
"XGBoost per segment": the model that would be deployed is trained on every symbol of the segment
with the segment's hyperparameters and threshold, so that is the model tested. Pooling also gives
each window several times the rows of one symbol.

Pipeline, pure and deterministic for a given ``seed``:

1. Features of *all* candles given (:func:`ml.features.build.build_features`, so the reference
   symbol BTC/USDT feeds the cross-asset features when present), then the segment's symbols.
2. Labels with horizon ``config.horizon`` and the segment's movement threshold (or
   ``config.threshold``), :func:`ml.features.labels.make_labels`; ``asset_return`` is the next
   candle's close over this close minus 1 (looked up by time; none across a gap or at the end).
3. Windows over the segment's time range (:func:`ml.features.splits.walk_forward_windows`); per
   window the training rows are purged against the test window and embargoed after every earlier
   test window (:func:`ml.features.splits.walk_forward_split`), and a model is fitted with
   :func:`ml.models.xgb.fit_segment_model` (early stopping on the end of the training window).
4. Test rows become positions by :class:`ml.evaluation.walkforward.PositionRule`
   (:attr:`SegmentWalkForwardConfig.position_rule`: by default a signal needs ``P(up) - P(down)``
   beyond :data:`DEFAULT_MARGIN` and is held for the label horizon), applied to each symbol's
   concatenated test windows as one series: a position taken near the end of a window is carried
   into the next for the rest of its hold and pays no new entry there; a gap in a symbol's candles
   starts a new series (:mod:`ml.evaluation.positions`). Each symbol's positions pay costs on every change by
   :func:`ml.evaluation.costs.strategy_returns`. The portfolio return of a bar is the mean of the net returns of the symbols that
   have a scored row at that bar (an equal-weight book, each symbol a 1/N sleeve reset every bar;
   the drift-rebalancing cost is not charged).
5. Baselines in the same rows and costs: buy-and-hold (each window enters afresh), always-flat,
   and the same model fitted on training labels permuted with ``seed + window``.

Nothing at time ``t`` depends on data after ``t``: features look back only, labels of training
rows end before the test window starts (purge), the model sees its training rows only, and the
prediction for a test row uses that row's features only, and its position the predictions of
that row and the ``hold - 1`` rows before it. ``tests/ml/evaluation/test_segment.py`` alters
candles after a window and checks that window's predictions and positions.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from typing import Any

import numpy as np
import polars as pl

from ml.evaluation.costs import DEFAULT_COSTS, TradingCosts, strategy_returns, trade_returns
from ml.evaluation.metrics import (
    HOURS_PER_YEAR,
    OverfitAssessment,
    PerformanceSummary,
    assess_overfit,
    summarise,
)
from ml.evaluation.overfitting import (
    deflated_sharpe_ratio,
    sharpe_ratio_moments,
)
from ml.evaluation.positions import held_by_symbol
from ml.evaluation.verdict import SIGNIFICANCE_LEVEL, Verdict, jsonable, verdict_of
from ml.evaluation.walkforward import PositionRule
from ml.features.build import build_features
from ml.features.config import FeatureConfig
from ml.features.labels import make_labels
from ml.features.segments import SegmentsConfig, XGBoostParams
from ml.features.splits import Mode, walk_forward_split, walk_forward_windows
from ml.marketdata.frames import CANDLE_KEY

#: Version of the :meth:`SegmentWalkForward.to_dict` layout; bump on any incompatible change.
SCHEMA_VERSION = 1
Progress = Callable[[int, int], None]
NOT_FEATURES = {*CANDLE_KEY, "segment_id"}
#: Default confidence a signal needs, ``|P(up) - P(down)| > 0.1``: the model must rate one
#: direction ten points likelier than the other (on the 2024 Binance 1h data 22-28 % of the
#: out-of-sample rows of each segment, README "Backtesting"; 0 would trade every faint lean).
DEFAULT_MARGIN = 0.1
DEFAULT_FEATURES = FeatureConfig()
DEFAULT_SEGMENTS = SegmentsConfig()


@dataclass(frozen=True)
class SegmentWalkForwardConfig:
    """Settings of :func:`segment_walk_forward`.

    ``train_length`` / ``test_length``: window lengths (wall time, UTC); ``embargo`` after each
    test window; ``horizon`` in candles; ``threshold`` overrides the segment's movement threshold
    (fraction); ``rule`` the position rule, None for :attr:`position_rule`'s default;
    ``xgboost`` overrides the segment's hyperparameters (tests use few trees);
    ``seed`` seeds XGBoost's subsampling and the label permutation.
    """

    mode: Mode = "rolling"
    train_length: timedelta = timedelta(days=84)
    test_length: timedelta = timedelta(days=28)
    embargo: timedelta = timedelta(hours=24)
    horizon: int = 4
    threshold: float | None = None
    costs: TradingCosts = DEFAULT_COSTS
    rule: PositionRule | None = None
    xgboost: XGBoostParams | None = None
    features: FeatureConfig = DEFAULT_FEATURES
    periods_per_year: float = HOURS_PER_YEAR
    seed: int = 0

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise ValueError(f"horizon must be at least 1 candle, got {self.horizon}")
        if self.threshold is not None and not 0 < self.threshold < 1:
            raise ValueError(f"threshold must be a fraction in (0, 1), got {self.threshold}")
        if self.embargo < timedelta(0):
            raise ValueError("embargo must not be negative")

    @property
    def position_rule(self) -> PositionRule:
        """``rule``, or by default margin :data:`DEFAULT_MARGIN`, long and short, held for
        ``horizon`` candles: the period the model forecasts."""
        return self.rule if self.rule is not None else PositionRule(margin=DEFAULT_MARGIN, hold=self.horizon)


@dataclass(frozen=True)
class SegmentWalkForward:
    """Result of :func:`segment_walk_forward` (see :meth:`to_dict` for the documented layout).

    ``predictions``: one row per scored test row and symbol (``symbol``, ``window``, ``ts``,
    ``p_down``, ``p_flat``, ``p_up``, ``position``, ``label``, ``label_end_ts``, ``asset_return``, ``net_return``,
    ``permuted_position``). ``portfolio``: one row per test bar (``ts``, ``window``, ``strategy``,
    ``buy_and_hold``, ``always_flat``, ``permuted_labels``: equal-weight net returns).
    ``windows``: per-window bounds, rows and metrics. ``deflated_sharpe``: of the strategy's
    out-of-sample returns given ``trials`` (1 unless :meth:`with_trials` was applied).
    """

    segment: str
    symbols: tuple[str, ...]
    config: SegmentWalkForwardConfig
    threshold: float
    params: XGBoostParams
    feature_columns: tuple[str, ...]
    windows: pl.DataFrame
    predictions: pl.DataFrame
    portfolio: pl.DataFrame
    out_of_sample: PerformanceSummary
    in_sample_sharpe: float
    overfit: OverfitAssessment
    baselines: dict[str, PerformanceSummary]
    trials: int = 1
    trial_sharpe_variance: float = 0.0
    deflated_sharpe: float = math.nan
    pbo: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> Verdict:
        return verdict_of(self.out_of_sample, self.baselines, self.deflated_sharpe, self.trials)

    def with_trials(self, trials: int, sharpe_variance: float, *, pbo: float | None,
                    extra: dict[str, Any] | None = None) -> SegmentWalkForward:
        """The same result with its Sharpe deflated for ``trials`` tried variants (a grid)."""
        return replace(self, trials=trials, trial_sharpe_variance=sharpe_variance, pbo=pbo,
                       deflated_sharpe=_deflated(self.portfolio.get_column("strategy").to_numpy(), trials,
                                                 sharpe_variance),
                       extra={**self.extra, **(extra or {})})

    def to_dict(self) -> dict[str, Any]:
        """JSON-able layout (``schema_version`` :data:`SCHEMA_VERSION`; README "Backtesting"):
        segment, symbols, config, threshold, xgboost, features, windows (list of per-window
        dicts), overall (strategy metrics, in-sample Sharpe, overfit), baselines, selection
        (trials, Sharpe variance, deflated Sharpe, PBO), verdict, plus ``extra`` sections."""
        verdict = self.verdict
        return jsonable({
            "schema_version": SCHEMA_VERSION, "segment": self.segment, "symbols": list(self.symbols),
            "config": {"mode": self.config.mode, "train_days": self.config.train_length / timedelta(days=1),
                       "test_days": self.config.test_length / timedelta(days=1),
                       "embargo_hours": self.config.embargo / timedelta(hours=1), "horizon": self.config.horizon,
                       "position_margin": self.config.position_rule.margin,
                       "position_hold": self.config.position_rule.hold,
                       "long_only": self.config.position_rule.long_only,
                       "periods_per_year": self.config.periods_per_year, "seed": self.config.seed},
            "costs": asdict(self.config.costs), "threshold": self.threshold, "xgboost": self.params.model_dump(),
            "features": list(self.feature_columns),
            "windows": self.windows.to_dicts(),
            "overall": {**asdict(self.out_of_sample), "in_sample_sharpe": self.in_sample_sharpe,
                        "overfit_ratio": self.overfit.ratio, "overfit": self.overfit.overfit},
            "baselines": {name: asdict(summary) for name, summary in self.baselines.items()},
            "selection": {"trials": self.trials, "trial_sharpe_variance": self.trial_sharpe_variance,
                          "deflated_sharpe": self.deflated_sharpe, "pbo": self.pbo,
                          "significance_level": SIGNIFICANCE_LEVEL},
            "verdict": {"edge_after_fees": verdict.edge, "text": verdict.text, "checks": verdict.checks},
            **self.extra,
        })


def _deflated(returns: np.ndarray, trials: int, sharpe_variance: float) -> float:
    """DSR of per-bar ``returns`` against the best of ``trials`` luck-only variants; nan if undefined."""
    try:
        sharpe, skewness, kurtosis, periods = sharpe_ratio_moments(returns)
    except ValueError:
        return math.nan
    return deflated_sharpe_ratio(sharpe, periods=periods, trials=trials, sharpe_variance=sharpe_variance,
                                 skewness=skewness, kurtosis=kurtosis)


def segment_frame(candles: pl.DataFrame, *, segment: str, config: SegmentWalkForwardConfig,
                  segments: SegmentsConfig, symbols: Sequence[str] | None = None,
                  ) -> tuple[pl.DataFrame, list[str], float]:
    """(pooled frame sorted by ``ts``, ``symbol``; feature columns; threshold) of ``segment``'s
    symbols among the candles (only those in ``symbols`` when given)."""
    if segment not in segments.segments:
        raise ValueError(f"unknown segment {segment!r}; known: {sorted(segments.segments)}")
    threshold = config.threshold if config.threshold is not None else segments.segments[segment].threshold  # type: ignore[index]
    spec = segments.segments[segment].model_copy(update={"threshold": threshold})  # type: ignore[index]
    labelled_by = segments.model_copy(update={"segments": {**segments.segments, segment: spec}})
    present = candles.get_column("symbol").unique().to_list()
    members = sorted(s for s, name in segments.segments_of(present).items()
                     if name == segment and (symbols is None or s in symbols))
    if not members:
        raise ValueError(f"no symbol of segment {segment!r} among the candles")
    features = build_features(candles, config=config.features, segments=segments)
    mine = candles.filter(pl.col("symbol").is_in(members))
    labels = make_labels(mine, horizon=config.horizon, segments=labelled_by).select(
        *CANDLE_KEY, "label", "label_end_ts")
    moves = make_labels(mine, horizon=1, segments=labelled_by).select(
        *CANDLE_KEY, pl.col("forward_return").alias("asset_return"))
    columns = [c for c in features.columns if c not in NOT_FEATURES]
    frame = (features.filter(pl.col("symbol").is_in(members)).join(labels, on=list(CANDLE_KEY))
             .join(moves, on=list(CANDLE_KEY)).filter(pl.col("asset_return").is_not_null()).sort("ts", "symbol"))
    return frame, columns, threshold


def _portfolio(ts: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unique sorted bars, mean of ``values`` over the rows (symbols) at each bar)."""
    bars, index = np.unique(ts, return_inverse=True)
    sums = np.bincount(index, weights=values, minlength=bars.size)
    counts = np.bincount(index, minlength=bars.size)
    return bars, sums / counts


def _net_by_symbol(frame: pl.DataFrame, position: str, costs: TradingCosts) -> tuple[np.ndarray, list[np.ndarray]]:
    """Net returns aligned with ``frame`` rows (sorted by ts) and every symbol's trade returns."""
    net = np.zeros(frame.height)
    trades: list[np.ndarray] = []
    symbols = frame.get_column("symbol").to_numpy()
    positions = frame.get_column(position).to_numpy().astype(np.float64)
    moves = frame.get_column("asset_return").to_numpy()
    for symbol in np.unique(symbols):
        rows = np.flatnonzero(symbols == symbol)
        net[rows] = strategy_returns(positions[rows], moves[rows], costs=costs)
        trades.append(trade_returns(positions[rows], moves[rows], costs=costs))
    return net, trades


def segment_walk_forward(
    candles: pl.DataFrame,
    *,
    segment: str,
    config: SegmentWalkForwardConfig | None = None,
    segments: SegmentsConfig = DEFAULT_SEGMENTS,
    progress: Progress | None = None,
    permuted_baseline: bool = True,
    symbols: Sequence[str] | None = None,
) -> SegmentWalkForward:
    """Walk-forward of ``segment`` on ``candles`` (CANDLE_SCHEMA, one timeframe; other segments'
    symbols may be present and feed cross-asset features only). See the module docstring.

    ``symbols`` restricts the traded symbols (default: every symbol of the segment among the
    candles; the others still feed features). ``progress(done, total)`` is called after each window. ``permuted_baseline=False`` skips the
    permuted-label model (the grid's trials need only the strategy); its metrics are then nan.
    Raises ``ValueError`` for an unknown segment, no symbol of it, or no complete window.
    """
    from ml.models.xgb import fit_segment_model, predict_proba

    config = config or SegmentWalkForwardConfig()
    frame, columns, threshold = segment_frame(candles, segment=segment, config=config, segments=segments,
                                              symbols=symbols)
    params = config.xgboost or segments.segments[segment].xgboost  # type: ignore[index]
    ts = frame.get_column("ts")
    step = ts.unique().diff().drop_nulls().min() if ts.n_unique() > 1 else timedelta(hours=1)
    windows = walk_forward_windows(ts.min(), ts.max() + step, train_length=config.train_length,  # type: ignore[operator,arg-type]
                                   test_length=config.test_length, mode=config.mode)
    if not windows:
        raise ValueError(f"{ts.min()} .. {ts.max()} covers no complete window of {config.train_length} training "
                         f"+ {config.test_length} test; give a longer range or shorter windows")
    matrix = frame.select(pl.col(columns).cast(pl.Float64)).to_numpy()
    labels = frame.get_column("label")
    ts_numpy = ts.to_numpy()

    def fit(rows: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        model = fit_segment_model(matrix[rows], y, ts_numpy[rows], params=params, seed=config.seed,
                                  feature_names=columns)
        return lambda x: predict_proba(model, x)

    rule = config.position_rule
    parts: list[pl.DataFrame] = []
    window_rows: list[dict[str, Any]] = []
    in_sample: list[float] = []
    for done, window in enumerate(windows, start=1):
        train_mask, test_mask = walk_forward_split(frame, windows, window.index, embargo=config.embargo)
        train = np.flatnonzero((train_mask & labels.is_not_null()).to_numpy())
        test = np.flatnonzero(test_mask.to_numpy())
        if train.size < 2 or test.size == 0:
            raise ValueError(f"window {window.index} ({window.train.start} .. {window.test.end}) has "
                             f"{train.size} training and {test.size} test rows")
        y = labels.to_numpy()[train].astype(np.int64)
        predict = fit(train, y)
        proba = predict(matrix[test])
        in_frame = frame[train]
        in_frame = in_frame.with_columns(pl.Series("position", held_by_symbol(
            in_frame, rule.signals(predict(matrix[train])), rule)))
        in_net, _ = _net_by_symbol(in_frame, "position", config.costs)
        in_sharpe = summarise(_portfolio(in_frame["ts"].to_numpy(), in_net)[1], [],
                              periods_per_year=config.periods_per_year).sharpe
        in_sample.append(in_sharpe)
        permuted = np.full(test.size, np.nan)
        if permuted_baseline:
            shuffled = np.random.default_rng(config.seed + window.index).permutation(y)
            permuted = rule.signals(fit(train, shuffled)(matrix[test]))
        parts.append(frame[test].select("symbol", "ts", "label", "label_end_ts", "asset_return").with_columns(
            pl.lit(window.index, pl.Int64).alias("window"),
            pl.Series("p_down", proba[:, 0]), pl.Series("p_flat", proba[:, 1]), pl.Series("p_up", proba[:, 2]),
            pl.Series("signal", rule.signals(proba)), pl.Series("permuted_signal", permuted)))
        window_rows.append({"window": window.index, "train_start": window.train.start, "train_end": window.train.end,
                            "test_start": window.test.start, "test_end": window.test.end,
                            "train_rows": int(train.size), "test_rows": int(test.size), "is_sharpe": in_sharpe})
        if progress is not None:
            progress(done, len(windows))
    # Each symbol's test windows as one series: a hold runs on across a window boundary.
    predictions = pl.concat(parts).sort("symbol", "ts")
    permuted_positions = (held_by_symbol(predictions, predictions["permuted_signal"].to_numpy(), rule)
                          if permuted_baseline else np.full(predictions.height, np.nan))
    predictions = predictions.with_columns(
        pl.Series("position", held_by_symbol(predictions, predictions["signal"].to_numpy(), rule)),
        pl.Series("permuted_position", permuted_positions)).drop("signal", "permuted_signal")
    return _assemble(segment, config, threshold, params, columns, predictions, window_rows, in_sample,
                     permuted_baseline)


def _assemble(segment: str, config: SegmentWalkForwardConfig, threshold: float, params: XGBoostParams,
              columns: list[str], predictions: pl.DataFrame, window_rows: list[dict[str, Any]],
              in_sample: list[float], permuted_baseline: bool) -> SegmentWalkForward:
    costs, ppy = config.costs, config.periods_per_year
    net, trades = _net_by_symbol(predictions, "position", costs)
    flat_trades = np.concatenate(trades) if trades else np.empty(0)
    predictions = predictions.with_columns(pl.Series("net_return", net))
    ts, symbols = predictions["ts"].to_numpy(), predictions["symbol"].to_numpy()
    windows_of = predictions["window"].to_numpy()
    moves = predictions["asset_return"].to_numpy()
    first_of_window = np.r_[True, (windows_of[1:] != windows_of[:-1]) | (symbols[1:] != symbols[:-1])]
    buy_hold = moves - costs.per_unit_traded * first_of_window  # each window enters afresh
    bars, strategy = _portfolio(ts, net)
    series = {"strategy": strategy, "buy_and_hold": _portfolio(ts, buy_hold)[1],
              "always_flat": np.zeros(bars.size)}
    permuted_trades: list[np.ndarray] = []
    if permuted_baseline:
        permuted_net, permuted_trades = _net_by_symbol(predictions, "permuted_position", costs)
        series["permuted_labels"] = _portfolio(ts, permuted_net)[1]
    bar_window = _portfolio(ts, windows_of.astype(np.float64))[1].astype(np.int64)
    portfolio = pl.DataFrame({"ts": bars, "window": bar_window, **series}).with_columns(
        pl.col("ts").cast(predictions.schema["ts"]))
    bh_trades = [trade_returns(np.ones(rows.size), moves[rows], costs=costs) for rows in _runs(first_of_window)]
    trade_sets = {"strategy": flat_trades, "buy_and_hold": np.concatenate([*bh_trades, np.empty(0)]),
                  "always_flat": np.empty(0),
                  "permuted_labels": np.concatenate([*permuted_trades, np.empty(0)])}
    summaries = {name: summarise(values, trade_sets[name], periods_per_year=ppy) for name, values in series.items()}
    if not permuted_baseline:
        summaries["permuted_labels"] = summarise(np.empty(0), [], periods_per_year=ppy)
    for row in window_rows:
        in_window = bar_window == row["window"]
        rows = windows_of == row["window"]
        part = predictions.filter(pl.col("window") == row["window"])
        oos = summarise(strategy[in_window], np.concatenate([
            trade_returns(g["position"].to_numpy(), g["asset_return"].to_numpy(), costs=costs)
            for g in part.partition_by("symbol")]), periods_per_year=ppy)
        flag = assess_overfit(row["is_sharpe"], oos.sharpe)
        row.update({f"oos_{k}": v for k, v in asdict(oos).items()})
        row.update({f"{name}_sharpe": summarise(values[in_window], [], periods_per_year=ppy).sharpe
                    for name, values in series.items() if name != "strategy"})
        row.update({"symbols": int(np.unique(symbols[rows]).size), "overfit_ratio": flag.ratio,
                    "overfit": flag.overfit})
    is_mean = float(np.nanmean(in_sample)) if np.isfinite(in_sample).any() else math.nan
    out = summaries.pop("strategy")
    return SegmentWalkForward(
        segment=segment, symbols=tuple(sorted(set(symbols.tolist()))), config=config, threshold=threshold,
        params=params, feature_columns=tuple(columns), windows=pl.DataFrame(window_rows), predictions=predictions,
        portfolio=portfolio, out_of_sample=out, in_sample_sharpe=is_mean, overfit=assess_overfit(is_mean, out.sharpe),
        baselines=summaries, deflated_sharpe=_deflated(strategy, 1, 0.0))


def portfolio_returns(predictions: pl.DataFrame, positions: np.ndarray, costs: TradingCosts
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(bars, equal-weight net returns) of ``positions`` held on ``predictions``' rows (sorted by
    symbol then ts, as in :attr:`SegmentWalkForward.predictions`), costs as the strategy's."""
    held = predictions.select("symbol", "ts", "asset_return").with_columns(pl.Series("held", positions))
    net, _ = _net_by_symbol(held, "held", costs)
    return _portfolio(held["ts"].to_numpy(), net)


def _runs(starts: np.ndarray) -> list[np.ndarray]:
    """Row indices of each run that begins where ``starts`` is True."""
    edges = np.r_[np.flatnonzero(starts), starts.size]
    return [np.arange(a, b) for a, b in itertools.pairwise(edges)]


__all__ = ["DEFAULT_MARGIN", "SCHEMA_VERSION", "SIGNIFICANCE_LEVEL", "SegmentWalkForward", "SegmentWalkForwardConfig",
           "Verdict", "portfolio_returns", "segment_frame", "segment_walk_forward", "verdict_of"]
