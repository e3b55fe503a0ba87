"""Signal scorecards: how published signals did, per group and horizon (pure).

Input is a long frame of signal outcomes, one row per signal and horizon:

==================  =======  ==========================================================
column              dtype    meaning
==================  =======  ==========================================================
signal_id           any      identifies the signal
strategy            str      strategy that produced it (e.g. ``bos``, ``ema_cross``)
symbol              str      traded symbol
source              str      ``market`` or a social source
publisher           str|null publisher that sent it (null when none did)
horizon_minutes     int      one of 1, 2, 3, 5, 10, 15
net_return          float    fraction (0.01 = +1 %), direction-aware, net of costs;
                             null while the horizon has not elapsed yet
==================  =======  ==========================================================

:func:`scorecard` aggregates it per group and horizon; :func:`digest_text` turns one horizon of
a scorecard into a short Telegram-HTML message.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import numpy as np
import polars as pl

GROUP_KEYS: tuple[str, ...] = ("strategy", "symbol", "source", "publisher")
HORIZONS_MINUTES: tuple[int, ...] = (1, 2, 3, 5, 10, 15)
REQUIRED_COLUMNS: tuple[str, ...] = ("signal_id", *GROUP_KEYS, "horizon_minutes", "net_return")

STAT_SCHEMA: dict[str, pl.DataType] = {
    "horizon_minutes": pl.Int64(),
    "signals": pl.Int64(),
    "pending": pl.Int64(),
    "win_rate": pl.Float64(),
    "mean_return": pl.Float64(),
    "median_return": pl.Float64(),
    "expectancy": pl.Float64(),
    "std_return": pl.Float64(),
    "t_stat": pl.Float64(),
    "p_value": pl.Float64(),
}


def scorecard(outcomes: pl.DataFrame, by: Sequence[str]) -> pl.DataFrame:
    """Per-group, per-horizon statistics of signal outcomes.

    Parameters
    ----------
    outcomes
        Long frame of outcomes with the columns in :data:`REQUIRED_COLUMNS` (see module doc).
    by
        Group keys, any subset of ``strategy``, ``symbol``, ``source``, ``publisher`` (in the
        order given); empty means one group over everything. A null key (e.g. no publisher) is
        its own group.

    Returns
    -------
    pl.DataFrame
        One row per group and horizon that has at least one row (settled or pending), columns
        ``*by`` (str), then :data:`STAT_SCHEMA`, sorted by ``*by`` then ``horizon_minutes``
        (nulls last). Returns are fractions:

        - ``signals``: count of rows with a known ``net_return``; ``pending``: count still null.
          Pending rows enter no other statistic.
        - ``win_rate``: share of known returns ``> 0`` (a return of exactly 0 is not a win).
        - ``mean_return``, ``median_return``, ``std_return`` (sample, ddof=1).
        - ``expectancy``: mean win × win rate − mean |loss| × loss rate, losses being returns
          ``< 0``. Since mean win × win rate = (sum of wins) / n and likewise for losses, and zero
          returns add nothing, expectancy equals ``mean_return`` (up to rounding); it is reported
          in the trader's form all the same.
        - ``t_stat``: mean / (sd / sqrt(n)), the one-sample t-statistic against a zero mean; null
          when n < 2 or all known returns are equal (sd 0).
        - ``p_value``: two-sided p-value of ``t_stat`` under Student's t with n − 1 degrees of
          freedom; null where ``t_stat`` is.

        Statistics of a group with no known return are null (counts are 0 / the pending count).
        An empty input gives an empty frame with this schema.

    Raises
    ------
    ValueError
        On a missing column, an unknown group key, a horizon outside :data:`HORIZONS_MINUTES`
        or a non-finite ``net_return`` (NaN or infinite: nulls mark unknown returns).
    """
    keys = _check_input(outcomes, by)
    schema = {**{key: pl.String() for key in keys}, **STAT_SCHEMA}
    if outcomes.height == 0:
        return pl.DataFrame(schema=schema)

    frame = outcomes.select(
        *[pl.col(key).cast(pl.String) for key in keys],
        pl.col("horizon_minutes").cast(pl.Int64),
        pl.col("net_return").cast(pl.Float64),
    )
    r = pl.col("net_return")
    known = r.is_not_null().sum().cast(pl.Int64)
    wins = r.filter(r > 0)
    losses = r.filter(r < 0)
    grouped = frame.group_by([*keys, "horizon_minutes"]).agg(
        signals=known,
        pending=r.is_null().sum().cast(pl.Int64),
        n_wins=(r > 0).sum().cast(pl.Int64),
        n_losses=(r < 0).sum().cast(pl.Int64),
        mean_win=wins.mean(),
        mean_abs_loss=losses.abs().mean(),
        mean_return=r.mean(),
        median_return=r.median(),
        std_return=r.std(ddof=1),
        all_equal=r.min() == r.max(),
    )
    n = pl.col("signals")
    has_known = n > 0
    win_rate = pl.col("n_wins") / n
    loss_rate = pl.col("n_losses") / n
    expectancy = (pl.col("mean_win").fill_null(0.0) * win_rate
                  - pl.col("mean_abs_loss").fill_null(0.0) * loss_rate)
    # sd is 0 exactly when all known returns are equal; that also covers n == 1 (and n == 0 is null).
    t_defined = ~pl.col("all_equal")
    card = grouped.with_columns(
        win_rate=pl.when(has_known).then(win_rate),
        expectancy=pl.when(has_known).then(expectancy),
        t_stat=pl.when(t_defined).then(pl.col("mean_return") / (pl.col("std_return") / n.sqrt())),
    )
    card = card.with_columns(p_value=_two_sided_p(card["t_stat"], card["signals"]))
    card = card.select(list(schema)).cast(schema)
    return card.sort([*keys, "horizon_minutes"], nulls_last=True)


def digest_text(card: pl.DataFrame, *, title: str, horizon: int = 15, top: int = 10) -> str:
    """A short Telegram-HTML digest of the best and worst groups of a scorecard at one horizon.

    Groups with a positive mean return are listed best first under "Best"; groups with a mean
    of zero or below are listed worst first under "Worst"; at most ``top`` of each. Ties in the
    mean are broken by the group name (ascending), so the text is the same for the same card
    whatever its row order. Each line shows the group (its key values joined by " / ", a null
    key as "none"), n, win rate, mean return in percent and the t-statistic ("n/a" when
    undefined). Groups with no settled signal at that horizon are left out; pending signals are
    summed in the header. Every name and the title are escaped with :func:`html.escape`.

    Parameters
    ----------
    card
        Output of :func:`scorecard`.
    title
        Heading of the message (plain text; it is escaped).
    horizon
        Horizon in minutes to report, one of :data:`HORIZONS_MINUTES`.
    top
        Maximum groups per section, ≥ 1.
    """
    if horizon not in HORIZONS_MINUTES:
        raise ValueError(f"horizon {horizon} not in {HORIZONS_MINUTES}")
    if top < 1:
        raise ValueError(f"top must be at least 1, got {top}")
    missing = [column for column in STAT_SCHEMA if column not in card.columns]
    if missing:
        raise ValueError(f"not a scorecard: missing columns {missing}")
    keys = [column for column in card.columns if column not in STAT_SCHEMA]

    at_horizon = card.filter(pl.col("horizon_minutes") == horizon)
    pending = int(at_horizon["pending"].sum()) if at_horizon.height else 0
    settled = at_horizon.filter(pl.col("signals") > 0)
    header = f"<b>{html.escape(title)}</b>\nHorizon +{horizon} min · pending {pending}"
    if settled.height == 0:
        return f"{header}\nNo settled signals yet."

    rows = [(_group_name(row, keys), row) for row in settled.iter_rows(named=True)]
    best = sorted((item for item in rows if item[1]["mean_return"] > 0),
                  key=lambda item: (-item[1]["mean_return"], item[0]))[:top]
    worst = sorted((item for item in rows if item[1]["mean_return"] <= 0),
                   key=lambda item: (item[1]["mean_return"], item[0]))[:top]
    lines = [header]
    for label, items in (("Best", best), ("Worst", worst)):
        if items:
            lines.append(f"\n<b>{label}</b>")
            lines.extend(_digest_line(name, row) for name, row in items)
    return "\n".join(lines)


def _check_input(outcomes: pl.DataFrame, by: Sequence[str]) -> list[str]:
    if isinstance(by, str):
        raise ValueError(f"by must be a sequence of column names, not the string {by!r}")
    keys = list(by)
    unknown = [key for key in keys if key not in GROUP_KEYS]
    if unknown:
        raise ValueError(f"unknown group keys {unknown}; allowed: {GROUP_KEYS}")
    if len(set(keys)) != len(keys):
        raise ValueError(f"group keys repeat: {keys}")
    missing = [column for column in REQUIRED_COLUMNS if column not in outcomes.columns]
    if missing:
        raise ValueError(f"outcomes lack columns {missing}")
    if outcomes.height == 0:
        return keys
    bad_horizons = sorted(set(outcomes["horizon_minutes"].drop_nulls().to_list()) - set(HORIZONS_MINUTES))
    if bad_horizons or outcomes["horizon_minutes"].null_count():
        raise ValueError(f"horizon_minutes must be one of {HORIZONS_MINUTES}; got {bad_horizons or 'null'}")
    returns = outcomes["net_return"].cast(pl.Float64).drop_nulls()
    if returns.len() and not returns.is_finite().all():
        bad_ids = outcomes.filter(~pl.col("net_return").cast(pl.Float64).is_finite())["signal_id"].to_list()
        raise ValueError(f"net_return must be finite or null; bad for signal_id {bad_ids[:10]}")
    return keys


def _two_sided_p(t_stat: pl.Series, signals: pl.Series) -> pl.Series:
    from scipy import stats

    t = t_stat.to_numpy().astype(float)  # nulls -> NaN
    dof = signals.to_numpy().astype(float) - 1.0
    p = np.full(t.shape, np.nan)
    defined = np.isfinite(t) & (dof >= 1)
    p[defined] = 2.0 * stats.t.sf(np.abs(t[defined]), dof[defined])
    return pl.Series("p_value", p, dtype=pl.Float64).fill_nan(None)


def _group_name(row: dict[str, object], keys: Sequence[str]) -> str:
    if not keys:
        return "all"
    return " / ".join("none" if row[key] is None else str(row[key]) for key in keys)


def _digest_line(name: str, row: dict[str, object]) -> str:
    t_stat = row["t_stat"]
    t_text = "n/a" if t_stat is None or not math.isfinite(float(t_stat)) else f"{float(t_stat):+.2f}"
    return (f"• {html.escape(name)}: n={row['signals']}, win {float(row['win_rate']):.0%}, "
            f"mean {float(row['mean_return']):+.2%}, t {t_text}")
