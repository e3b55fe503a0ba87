"""A source's reputation from the outcomes of its past calls (pure).

Each past call of the channel whose outcome was known before ``as_of`` is a win when its
return exceeded ``win_threshold_pct`` and a loss otherwise. Outcomes are weighted by their age,
``w = 0.5 ** (age_days / half_life_days)``, and the reputation is the mean of the Beta
posterior with a ``Beta(prior_wins, prior_losses)`` prior::

    score = (prior_wins + Σ w·win) / (prior_wins + prior_losses + Σ w)

A channel without history scores the prior mean (0.5 with the defaults 2/2); a few lucky calls
move it only part of the way, and an old record fades back toward the prior.

No look-ahead: an outcome counts only when ``outcome.ts < as_of`` (strictly), where ``ts`` is
when the outcome became known (the close of that call's window), not when the call was made.
Scoring a call at its own window close therefore never sees its own outcome or any later one;
a test adds outcomes after ``as_of`` and checks that nothing changes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

__all__ = ["CallOutcome", "Reputation", "source_reputation"]

_SECONDS_PER_DAY = 86_400.0


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
