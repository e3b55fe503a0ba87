"""Positions of a pooled frame of several symbols under :class:`ml.evaluation.walkforward.PositionRule`.

The rule holds a signal for ``hold`` candles of one series. In a frame of several symbols (rows in
time order within each symbol, pooled in any order) each symbol's rows are their own series, split
again wherever the symbol's candles have a gap (missing candles, purged or embargoed training
rows): no position is held from one symbol into another, nor across a gap.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ml.evaluation.walkforward import PositionRule


def series_starts(frame: pl.DataFrame) -> np.ndarray:
    """True at each row of ``frame`` (columns ``symbol``, ``ts``; rows in time order within each
    symbol) that begins a new series for the position rule: a symbol's first row, or a row more
    than one candle after the symbol's previous row (missing candles, purged or embargoed rows).
    The candle is the smallest step between consecutive rows of one symbol."""
    symbols = frame.get_column("symbol").to_numpy()
    order = np.argsort(symbols, kind="stable")  # each symbol's rows together, still in time order
    ordered = symbols[order]
    starts_sorted = np.r_[True, ordered[1:] != ordered[:-1]] if ordered.size else np.zeros(0, dtype=bool)
    steps = np.diff(frame.get_column("ts").to_numpy()[order])
    inside = ~starts_sorted[1:]
    positive = steps[inside & (steps > np.timedelta64(0))]
    if positive.size:
        starts_sorted[1:] |= inside & (steps > positive.min())
    starts = np.empty(symbols.size, dtype=bool)
    starts[order] = starts_sorted
    return starts


def held_by_symbol(frame: pl.DataFrame, signals: np.ndarray, rule: PositionRule) -> np.ndarray:
    """Positions (aligned with ``frame``'s rows) of each symbol's ``signals`` under ``rule``, held
    within the symbol's series only (:func:`series_starts`, :meth:`PositionRule.hold_signals`)."""
    order = np.argsort(frame.get_column("symbol").to_numpy(), kind="stable")
    starts = series_starts(frame)
    positions = np.empty(frame.height)
    positions[order] = rule.hold_signals(np.asarray(signals, dtype=np.float64)[order], starts[order])
    return positions


def rule_positions(predictions: pl.DataFrame, rule: PositionRule) -> np.ndarray:
    """Positions of ``rule`` on ``predictions`` (``symbol``, ``ts``, ``p_down``, ``p_flat``, ``p_up``;
    rows in time order within each symbol), each symbol's rows one series split at gaps."""
    probabilities = predictions.select("p_down", "p_flat", "p_up").to_numpy().astype(np.float64)
    return held_by_symbol(predictions, rule.signals(probabilities), rule)
