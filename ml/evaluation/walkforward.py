"""Walk-forward evaluation of any classifier: train per window, trade the test window, pay costs.

One symbol per run (one ``ts`` per row; a ``symbol`` column, if present, must hold one value):
run it per symbol and compare the reports. The input frame has one row per candle, sorted by
``ts`` (UTC), with

* ``ts``: candle open time; ``label_end_ts``: when the row's label becomes known
  (:mod:`ml.features.labels`), used to purge training rows against the test window;
* the feature columns (known at the close of the row's candle, no nulls);
* the label column (classes ``0`` down, ``1`` flat, ``2`` up; null where not yet known: such rows
  are never trained on but are still predicted and traded when they fall in a test window);
* the return column: the asset's simple return from this candle's close to the next one
  (:func:`ml.evaluation.costs.forward_returns`). Rows without it cannot be scored and are dropped.

For each window of :func:`ml.features.splits.walk_forward_windows`, ``fit`` sees only the
purged and embargoed training rows (:func:`ml.features.splits.walk_forward_split`) and returns a
``predict_proba``; the test rows are predicted with it. The test windows are contiguous, so the
concatenated test rows form one series; :class:`PositionRule` turns its probabilities into
positions (a signal held for ``rule.hold`` candles, so a position taken near the end of a window
is carried into the next for the rest of its hold, and pays no new entry there). Each position
earns its row's return, costs charged on every change by
:func:`ml.evaluation.costs.strategy_returns`. A window's period figures are its slice of that
series, its per-trade figures treat trades cut at its boundaries as entered and exited there.

In-sample figures are the same rule applied to the model's predictions of its own training rows
(a gap left by purging or the embargo starts a new series: no position is held across it).
The overfitting flag compares the mean per-window in-sample Sharpe with the overall
out-of-sample Sharpe (:func:`ml.evaluation.metrics.assess_overfit`). Baselines use exactly the
same test rows and costs: buy-and-hold (each window enters afresh), always-flat, and the same
``fit`` on training labels permuted with ``seed`` (a model that can only have learned noise).
``fit`` itself must be deterministic (close over its own seed if it is stochastic).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta

import numpy as np
import polars as pl
from numpy.typing import NDArray

from ml.evaluation.baselines import always_flat_returns, buy_and_hold_returns
from ml.evaluation.costs import (
    DEFAULT_COSTS,
    FloatArray,
    TradingCosts,
    strategy_returns,
    trade_returns,
)
from ml.evaluation.metrics import (
    HOURS_PER_YEAR,
    OverfitAssessment,
    PerformanceSummary,
    assess_overfit,
    summarise,
)
from ml.features.labels import LABEL_DOWN, LABEL_UP
from ml.features.splits import Mode, WalkForwardWindow, walk_forward_split, walk_forward_windows

#: ``predict_proba(X) -> (n, 3)`` probabilities of down, flat, up.
PredictProba = Callable[[NDArray[np.float64]], NDArray[np.float64]]
#: ``fit(X_train, y_train) -> predict_proba``; ``y_train`` holds class codes 0, 1, 2.
Fit = Callable[[NDArray[np.float64], NDArray[np.int64]], PredictProba]

CLASS_COUNT = 3


@dataclass(frozen=True)
class PositionRule:
    """Probabilities to positions: the score is ``P(up) - P(down)`` (in ``[-1, 1]``).

    *Signal* of a row: up (``+1``) when its score exceeds ``margin``, down (``-1``) when it is below
    ``-margin``, none (``0``, an unconfident forecast) otherwise.

    *Position* of a row, with ``hold = h`` candles: the most recent signal among the row and the
    ``h - 1`` rows before it in the same series, flat when there is none; with ``long_only`` a
    down signal means flat. A forecast over ``h`` candles taken at the close of row ``t`` is thus
    held for the ``h`` bars of its horizon (rows ``t .. t + h - 1``, which earn exactly the move
    the label of row ``t`` measures); a fresh signal replaces it at once (an opposite one flips
    the position, or closes it when long-only; a same-side one extends the hold), and an
    unconfident forecast neither opens nor closes a position. ``hold = 1`` is the plain per-candle
    rule (long above ``margin``, short below ``-margin``, else flat). The position of row ``t``
    depends on the probabilities of rows ``t - h + 1 .. t`` only (never a later row): no
    look-ahead.

    Positions are the exposure held from the close of row ``t`` to the next close
    (:mod:`ml.evaluation.costs`); every change pays fee and slippage there.
    """

    margin: float = 0.0
    long_only: bool = False
    hold: int = 1

    def __post_init__(self) -> None:
        if not (math.isfinite(self.margin) and 0 <= self.margin < 1):
            raise ValueError(f"margin must be in [0, 1), got {self.margin!r}")
        if isinstance(self.hold, bool) or not isinstance(self.hold, int | np.integer) or self.hold < 1:
            raise ValueError(f"hold must be a whole number of candles >= 1, got {self.hold!r}")

    def signals(self, probabilities: NDArray[np.float64]) -> FloatArray:
        """Signals (``-1`` down, ``0`` none, ``+1`` up) of an ``(n, 3)`` probability array, row by row."""
        score = probabilities[:, LABEL_UP] - probabilities[:, LABEL_DOWN]
        return np.where(score > self.margin, 1.0, np.where(score < -self.margin, -1.0, 0.0))

    def hold_signals(self, signals: FloatArray, series_starts: NDArray[np.bool_] | None = None) -> FloatArray:
        """Positions of per-row ``signals`` (:meth:`signals`): held, then long-only if asked."""
        held = held_positions(signals, self.hold, series_starts)
        return np.maximum(held, 0.0) if self.long_only else held

    def positions(self, probabilities: NDArray[np.float64],
                  series_starts: NDArray[np.bool_] | None = None) -> FloatArray:
        """Positions (``-1``, ``0`` or ``+1``) of an ``(n, 3)`` probability array (class docstring).

        Rows are consecutive candles of one series, oldest first; ``series_starts`` (bool, one per
        row) marks where a new, independent series begins (e.g. the first row of each symbol in
        rows sorted by symbol then time): no position is held from one series into the next.
        Without it the rows form one series.
        """
        return self.hold_signals(self.signals(probabilities), series_starts)


def held_positions(signals: FloatArray, hold: int, series_starts: NDArray[np.bool_] | None = None) -> FloatArray:
    """Each row's most recent non-zero signal among itself and the ``hold - 1`` rows before it
    within its series (``series_starts`` as in :meth:`PositionRule.positions`), else ``0``.

    Vectorised: the index of the last non-zero signal up to each row is a running maximum; it
    counts when it lies in the row's series and fewer than ``hold`` rows back.
    """
    rows = np.arange(signals.size)
    last_signal = np.maximum.accumulate(np.where(signals != 0, rows, -1)) if rows.size else rows
    if series_starts is None:
        series_start = np.zeros_like(rows)
    else:
        starts = np.asarray(series_starts, dtype=bool)
        if starts.shape != signals.shape:
            raise ValueError(f"series_starts has shape {starts.shape}, the signals {signals.shape}")
        series_start = np.maximum.accumulate(np.where(starts, rows, 0)) if rows.size else rows
    active = (last_signal >= series_start) & (rows - last_signal < hold)
    return np.where(active, signals[np.maximum(last_signal, 0)], 0.0)


@dataclass(frozen=True)
class WalkForwardConfig:
    """Window layout (see :func:`ml.features.splits.walk_forward_windows`) and evaluation settings.

    ``periods_per_year`` annualises (8760 for 1h candles); ``seed`` drives the label permutation
    of the permuted-label baseline (window ``i`` uses ``seed + i``).
    """

    train_length: timedelta
    test_length: timedelta
    mode: Mode = "rolling"
    embargo: timedelta = timedelta(0)
    rule: PositionRule = PositionRule()
    costs: TradingCosts = DEFAULT_COSTS
    periods_per_year: float = HOURS_PER_YEAR
    seed: int = 0


@dataclass(frozen=True)
class WalkForwardReport:
    """Result of :func:`walk_forward`.

    ``windows``: one row per window (bounds, row counts, in-sample and out-of-sample metrics,
    baselines, overfit ratio). ``predictions``: every scored test row with ``window``, ``ts``,
    ``p_down``, ``p_flat``, ``p_up``, ``position``, ``asset_return``, ``net_return``.
    ``out_of_sample``: metrics of the concatenated out-of-sample net returns; ``in_sample_sharpe``
    the mean per-window in-sample Sharpe; ``baselines`` the same metrics for ``buy_and_hold``,
    ``always_flat`` and ``permuted_labels``.
    """

    windows: pl.DataFrame
    predictions: pl.DataFrame
    out_of_sample: PerformanceSummary
    in_sample_sharpe: float
    overfit: OverfitAssessment
    baselines: dict[str, PerformanceSummary]

    @property
    def beats_permuted_labels(self) -> bool:
        """Whether the out-of-sample Sharpe exceeds that of the permuted-label model."""
        return self.out_of_sample.sharpe > self.baselines["permuted_labels"].sharpe


def _checked_frame(
    frame: pl.DataFrame, feature_columns: Sequence[str], label_column: str, return_column: str
) -> pl.DataFrame:
    required = ["ts", "label_end_ts", label_column, return_column, *feature_columns]
    missing = [name for name in required if name not in frame.columns]
    if missing:
        raise ValueError(f"walk-forward frame lacks columns {missing}")
    if not feature_columns:
        raise ValueError("feature_columns must name at least one column")
    if "symbol" in frame.columns and frame.get_column("symbol").n_unique() > 1:
        raise ValueError("walk_forward evaluates one symbol per run; filter the frame by symbol")
    scored = frame.filter(pl.col(return_column).is_not_null())
    if scored.height == 0:
        raise ValueError(f"no row has a {return_column!r} value")
    ts = scored.get_column("ts")
    if ts.null_count() or not bool((ts.diff().drop_nulls() > timedelta(0)).all()):
        raise ValueError("ts must be non-null and strictly increasing (one symbol, sorted)")
    nulls = scored.select(pl.col(list(feature_columns)).null_count()).row(0, named=True)
    bad = {name: count for name, count in nulls.items() if count}
    if bad:
        raise ValueError(f"feature columns have nulls (drop or fill them first): {bad}")
    labels = scored.get_column(label_column).drop_nulls()
    if labels.len() and not bool(labels.is_in([0, 1, 2]).all()):
        raise ValueError(f"{label_column!r} must hold class codes 0 (down), 1 (flat), 2 (up)")
    return scored


def _probabilities(predict: PredictProba, features: NDArray[np.float64]) -> NDArray[np.float64]:
    probabilities = np.asarray(predict(features), dtype=np.float64)
    if probabilities.shape != (features.shape[0], CLASS_COUNT):
        raise ValueError(
            f"predict_proba must return shape ({features.shape[0]}, 3), got {probabilities.shape}"
        )
    if not np.all(np.isfinite(probabilities)):
        raise ValueError("predict_proba returned non-finite probabilities")
    return probabilities


def _summary(positions: FloatArray, moves: FloatArray, net: FloatArray, config: WalkForwardConfig
             ) -> PerformanceSummary:
    trades = trade_returns(positions, moves, costs=config.costs)
    return summarise(net, trades, periods_per_year=config.periods_per_year)


def _window_bounds(frame: pl.DataFrame, config: WalkForwardConfig) -> list[WalkForwardWindow]:
    ts = frame.get_column("ts")
    step = ts.diff().drop_nulls().min() if ts.len() > 1 else None
    bar = step if isinstance(step, timedelta) else timedelta(microseconds=1)
    return walk_forward_windows(ts.min(), ts.max() + bar, train_length=config.train_length,  # type: ignore[operator,arg-type]
                                test_length=config.test_length, mode=config.mode)


def walk_forward(
    frame: pl.DataFrame,
    *,
    feature_columns: Sequence[str],
    fit: Fit,
    config: WalkForwardConfig,
    label_column: str = "label",
    return_column: str = "asset_return",
) -> WalkForwardReport:
    """Train ``fit`` per window, trade each test window, report after costs (module docstring).

    Raises ``ValueError`` on missing columns, unsorted or duplicated ``ts``, null features, bad
    label codes, several symbols, no complete window, or a window without training rows.
    Guarantee: a test row's prediction, position and net return depend only on rows whose ``ts``
    is at or before its own, plus its own return (the move it is held over); its position on the
    probabilities of itself and the ``rule.hold - 1`` rows before it.
    """
    scored = _checked_frame(frame, feature_columns, label_column, return_column)
    windows = _window_bounds(scored, config)
    if not windows:
        raise ValueError("the data cover no complete train + test window; shorten the lengths")
    features = scored.select(pl.col(list(feature_columns)).cast(pl.Float64)).to_numpy()
    labels = scored.get_column(label_column)
    moves_all = scored.get_column(return_column).cast(pl.Float64).to_numpy()
    ts_all = scored.get_column("ts")

    window_rows: list[dict[str, object]] = []
    prediction_parts: list[pl.DataFrame] = []
    probability_parts: list[NDArray[np.float64]] = []
    permuted_parts: list[NDArray[np.float64]] = []
    buy_hold_parts: list[FloatArray] = []
    in_sample_sharpes: list[float] = []
    for window in windows:
        train_mask, test_mask = walk_forward_split(scored, windows, window.index, embargo=config.embargo)
        train_mask = train_mask & labels.is_not_null()
        train_index = np.flatnonzero(train_mask.to_numpy())
        test_index = np.flatnonzero(test_mask.to_numpy())
        if train_index.size == 0:
            raise ValueError(f"window {window.index} ({window.train.start} to {window.train.end}) "
                             "has no usable training row")
        if test_index.size == 0:
            continue
        y_train = labels.to_numpy()[train_index].astype(np.int64)
        predict = fit(features[train_index], y_train)
        probabilities = _probabilities(predict, features[test_index])

        in_positions = config.rule.positions(_probabilities(predict, features[train_index]),
                                             np.r_[True, np.diff(train_index) > 1])
        in_moves = moves_all[train_index]
        in_summary = _summary(in_positions, in_moves,
                              strategy_returns(in_positions, in_moves, costs=config.costs), config)
        in_sample_sharpes.append(in_summary.sharpe)

        permuted_labels = np.random.default_rng(config.seed + window.index).permutation(y_train)
        permuted_predict = fit(features[train_index], permuted_labels)
        permuted_parts.append(_probabilities(permuted_predict, features[test_index]))
        buy_hold_parts.append(buy_and_hold_returns(moves_all[test_index], costs=config.costs))
        probability_parts.append(probabilities)
        prediction_parts.append(pl.DataFrame({
            "window": np.full(test_index.size, window.index, dtype=np.int64),
            "ts": ts_all.gather(test_index),
            "p_down": probabilities[:, 0], "p_flat": probabilities[:, 1], "p_up": probabilities[:, 2],
            "asset_return": moves_all[test_index],
        }))
        window_rows.append({
            "window": window.index, "train_start": window.train.start, "train_end": window.train.end,
            "test_start": window.test.start, "test_end": window.test.end,
            "train_rows": int(train_index.size), "test_rows": int(test_index.size),
            "is_sharpe": in_summary.sharpe,
        })
    if not window_rows:
        raise ValueError("no window has test rows")

    # One series over the concatenated test windows: a position held at the end of a window is
    # carried into the next (no new entry paid) for the rest of its hold.
    positions_all = config.rule.positions(np.concatenate(probability_parts))
    predictions = pl.concat(prediction_parts).with_columns(pl.Series("position", positions_all)).select(
        "window", "ts", "p_down", "p_flat", "p_up", "position", "asset_return")
    moves = predictions.get_column("asset_return").to_numpy()
    net = strategy_returns(positions_all, moves, costs=config.costs)
    permuted_positions = config.rule.positions(np.concatenate(permuted_parts))
    permuted_net = strategy_returns(permuted_positions, moves, costs=config.costs)
    buy_hold_net = np.concatenate(buy_hold_parts)
    predictions = predictions.with_columns(pl.Series("net_return", net))
    window_sizes = [part.shape[0] for part in probability_parts]

    offset = 0
    for row, count in zip(window_rows, window_sizes, strict=True):
        part = slice(offset, offset + count)
        offset += count
        oos = _summary(positions_all[part], moves[part], net[part], config)
        permuted = _summary(permuted_positions[part], moves[part], permuted_net[part], config)
        buy_hold = _summary(np.ones(count), moves[part], buy_hold_net[part], config)
        flag = assess_overfit(float(row["is_sharpe"]), oos.sharpe)  # type: ignore[arg-type]
        row.update({f"oos_{name}": value for name, value in asdict(oos).items()})
        row.update({"buy_hold_sharpe": buy_hold.sharpe, "buy_hold_total_return": buy_hold.total_return,
                    "permuted_sharpe": permuted.sharpe, "permuted_total_return": permuted.total_return,
                    "overfit_ratio": flag.ratio, "overfit": flag.overfit})

    out_of_sample = _summary(positions_all, moves, net, config)
    in_sample_sharpe = float(np.nanmean(in_sample_sharpes)) if np.isfinite(in_sample_sharpes).any() else math.nan
    flat = np.zeros_like(moves)
    baselines = {
        "buy_and_hold": summarise(buy_hold_net, np.concatenate([
            trade_returns(np.ones(part.size), part, costs=config.costs)
            for part in np.split(moves, np.cumsum(window_sizes)[:-1])
        ]), periods_per_year=config.periods_per_year),
        "always_flat": _summary(flat, moves, always_flat_returns(moves), config),
        "permuted_labels": _summary(permuted_positions, moves, permuted_net, config),
    }
    return WalkForwardReport(
        windows=pl.DataFrame(window_rows),
        predictions=predictions,
        out_of_sample=out_of_sample,
        in_sample_sharpe=in_sample_sharpe,
        overfit=assess_overfit(in_sample_sharpe, out_of_sample.sharpe),
        baselines=baselines,
    )
