"""Scorecard plots as PNG bytes (same conventions as :mod:`ml.reporting.plots`: own figure, Agg
canvas, fixed size, no ``Software`` entry, matplotlib imported inside)."""

from __future__ import annotations

import math

import polars as pl

from ml.reporting.plots import _figure, _png


def by_horizon_png(card: pl.DataFrame, *, key: str, statistic: str, title: str, ylabel: str,
                   percent: bool = True, error_bars: bool = False) -> bytes:
    """One line per value of ``key``: ``statistic`` of a scorecard against the horizon (minutes).

    Parameters
    ----------
    card
        A :func:`ml.signals.scorecards.scorecard` grouped by ``key`` alone.
    key
        The group column (e.g. ``strategy``); a null group is drawn as "none".
    statistic
        Column to draw, e.g. ``mean_return`` or ``win_rate`` (fractions); horizons where it is null
        are left out of that line.
    percent
        Draw fractions as percent.
    error_bars
        Draw ± one standard error of the mean (``std_return / sqrt(signals)``) where defined.

    Raises
    ------
    ValueError
        ``key`` or ``statistic`` is not a column, or no group has a value to draw.
    """
    for column in (key, statistic, "horizon_minutes"):
        if column not in card.columns:
            raise ValueError(f"the scorecard has no column {column!r}: {card.columns}")
    drawable = card.filter(pl.col(statistic).is_not_null()).sort(key, "horizon_minutes", nulls_last=True)
    if drawable.is_empty():
        raise ValueError(f"no group has a {statistic} to draw")
    scale = 100.0 if percent else 1.0
    figure, axes = _figure()
    for (name,), group in drawable.group_by([key], maintain_order=True):
        x = group["horizon_minutes"].to_list()
        y = [value * scale for value in group[statistic].to_list()]
        label = f"{'none' if name is None else name} (n={int(group['signals'].max())})"  # type: ignore[arg-type]
        if error_bars:
            errors = [(sd / math.sqrt(n)) * scale if sd is not None and n > 1 else 0.0
                      for sd, n in zip(group["std_return"].to_list(), group["signals"].to_list(), strict=True)]
            axes.errorbar(x, y, yerr=errors, marker="o", capsize=3, linewidth=1.2, label=label)
        else:
            axes.plot(x, y, marker="o", linewidth=1.2, label=label)
    reference = 0.5 * scale if statistic == "win_rate" else 0.0  # a coin flip; no edge
    axes.axhline(reference, color="black", linewidth=0.6)
    axes.set_xticks(sorted(set(drawable["horizon_minutes"].to_list())))
    axes.set_xlabel("horizon (minutes after entry)")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.legend(loc="best", fontsize=9)
    return _png(figure)
