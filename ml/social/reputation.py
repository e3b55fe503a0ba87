"""A source's reputation from the realised outcomes of its published calls (pure).

**The outcomes.** A channel's record is what its *published* calls did afterwards, as stored in
``signal_outcomes`` (:mod:`ml.signals.outcome_rows`): the net return of a long entered at the
first DexScreener price after publication and held :data:`REPUTATION_HORIZON_MINUTES` (15)
minutes, fees and slippage on both sides included (0.3 % round trip with the default costs, so a
call that goes nowhere is a loss). A call published by several publishers counts once, with the
outcome of its earliest publication (:func:`call_outcomes`). Calls that were rejected or only sent
for review published nothing and have no outcome. The outcome is known once the minute of its +15
min snapshot has passed: ``ts = entry + 16 min``.

**The score.** Each outcome known before ``as_of`` is a win when its return exceeded
``win_threshold_pct`` and a loss otherwise. Outcomes are weighted by their age,
``w = 0.5 ** (age_days / half_life_days)``, and the reputation is the mean of the Beta
posterior with a ``Beta(prior_wins, prior_losses)`` prior::

    score = (prior_wins + Σ w·win) / (prior_wins + prior_losses + Σ w)

**Shrinkage for few calls.** The prior is worth ``prior_wins + prior_losses`` calls (4 with the
defaults 2/2, prior mean 0.5): a channel without history scores 0.5, one winning call 0.6, three
straight wins 5/7 ≈ 0.71, and only a long record moves the score near 0 or 1. An old record fades
back toward the prior.

No look-ahead: an outcome counts only when ``outcome.ts < as_of`` (strictly), where ``ts`` is
when the outcome became known, not when the call was made. Scoring a call at its own window
close therefore never sees its own outcome or any later one; a test adds outcomes after
``as_of`` and checks that nothing changes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

__all__ = ["REPUTATION_HORIZON_MINUTES", "CallOutcome", "Reputation", "call_outcomes", "source_reputation"]

_SECONDS_PER_DAY = 86_400.0
#: The horizon whose realised return is a call's outcome.
REPUTATION_HORIZON_MINUTES = 15


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """The measured outcome of one past call.

    Attributes
    ----------
    ts
        When the outcome became known (timezone-aware).
    channel
        The channel that made the call.
    return_pct
        Return of the call in percent (``12.5`` is +12.5 %); finite.
    """

    ts: datetime
    channel: str
    return_pct: float

    def __post_init__(self) -> None:
        if self.ts.utcoffset() is None:
            raise ValueError(f"CallOutcome.ts must be timezone-aware, got {self.ts!r}")
        if not math.isfinite(self.return_pct):
            raise ValueError(f"CallOutcome.return_pct must be finite, got {self.return_pct}")


@dataclass(frozen=True, slots=True)
class Reputation:
    """A channel's reputation at ``as_of``.

    Attributes
    ----------
    score
        Decayed Beta-posterior mean of the win rate, in (0, 1).
    calls
        Outcomes counted (known before ``as_of``), undecayed.
    wins
        Of those, how many were wins, undecayed.
    weight
        Σ of the decay weights of the counted outcomes (the effective number of calls).
    """

    score: float
    calls: int
    wins: int
    weight: float


def source_reputation(
    outcomes: Sequence[CallOutcome],
    *,
    channel: str,
    as_of: datetime,
    prior_wins: float = 2.0,
    prior_losses: float = 2.0,
    half_life_days: float = 30.0,
    win_threshold_pct: float = 0.0,
) -> Reputation:
    """Reputation of ``channel`` at ``as_of`` (formula in the module docstring).

    Parameters
    ----------
    outcomes
        Outcomes of any channels, in any order; only ``channel``'s with ``ts < as_of`` count.
    channel
        The channel to score.
    as_of
        Timezone-aware; usually the close of the window of the call being validated.
    prior_wins, prior_losses
        Beta prior pseudo-counts, > 0 (default 2 and 2: prior mean 0.5, worth four calls).
    half_life_days
        Days after which an outcome weighs half, > 0 (default 30).
    win_threshold_pct
        A call is a win when ``return_pct > win_threshold_pct`` (percent, default 0).

    Returns
    -------
    Reputation
        ``score`` strictly inside (0, 1); independent of the order of ``outcomes`` and of every
        outcome at or after ``as_of``; more recent wins never lower it.

    Raises
    ------
    ValueError
        A naive ``as_of`` or a non-positive prior or half-life.
    """
    if as_of.utcoffset() is None:
        raise ValueError(f"as_of must be timezone-aware, got {as_of!r}")
    if not (prior_wins > 0 and prior_losses > 0 and half_life_days > 0):
        raise ValueError(
            f"priors and half_life_days must be > 0, got {prior_wins}, {prior_losses}, {half_life_days}"
        )
    calls = wins = 0
    weight = weighted_wins = 0.0
    for outcome in outcomes:
        if outcome.channel != channel or not outcome.ts < as_of:
            continue
        age_days = (as_of - outcome.ts).total_seconds() / _SECONDS_PER_DAY
        w = 0.5 ** (age_days / half_life_days)
        win = outcome.return_pct > win_threshold_pct
        calls += 1
        wins += win
        weight += w
        weighted_wins += w * win
    score = (prior_wins + weighted_wins) / (prior_wins + prior_losses + weight)
    return Reputation(score=score, calls=calls, wins=wins, weight=weight)


def call_outcomes(rows: Iterable[Mapping[str, Any]], *,
                  horizon_minutes: int = REPUTATION_HORIZON_MINUTES) -> list[CallOutcome]:
    """One :class:`CallOutcome` per published call from ``signal_outcomes`` rows.

    Parameters
    ----------
    rows
        Rows with ``signal_id``, ``publisher``, ``channel``, ``published_at``, ``entry_ts`` and
        ``return_<horizon_minutes>m`` (a fraction, net of costs); rows without a channel, an entry
        or that return are skipped.
    horizon_minutes
        The horizon whose return is the outcome.

    Returns
    -------
    list[CallOutcome]
        Per signal, the row published first (then by publisher name): ``return_pct`` = 100 x the
        return, ``ts`` = ``entry_ts + horizon_minutes + 1`` minutes (the end of the minute its
        snapshot was taken in), sorted by ``ts`` then channel.
    """
    column = f"return_{horizon_minutes}m"
    first: dict[Any, Mapping[str, Any]] = {}
    for row in rows:
        if row.get("channel") is None or row.get("entry_ts") is None or row.get(column) is None:
            continue
        held = first.get(row["signal_id"])
        if held is None or (row["published_at"], row["publisher"]) < (held["published_at"], held["publisher"]):
            first[row["signal_id"]] = row
    known = timedelta(minutes=horizon_minutes + 1)
    outcomes = [CallOutcome(row["entry_ts"] + known, str(row["channel"]), 100.0 * float(row[column]))
                for row in first.values()]
    return sorted(outcomes, key=lambda o: (o.ts, o.channel))
