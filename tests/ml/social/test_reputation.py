"""Source reputation: decayed Beta posterior, and no look-ahead past ``as_of``."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.social.reputation import CallOutcome, source_reputation

from .builders import T0

DAY = timedelta(days=1)


def outcome(days_before: float, return_pct: float, channel: str = "alpha") -> CallOutcome:
    return CallOutcome(ts=T0 - days_before * DAY, channel=channel, return_pct=return_pct)


@pytest.mark.parametrize(
    ("outcomes", "kwargs", "score", "calls", "wins"),
    [
        ([], {}, 0.5, 0, 0),
        ([outcome(0.0001, 50)], {}, 3 / 5, 1, 1),
        ([outcome(0.0001, -50)], {}, 2 / 5, 1, 0),
        ([outcome(30, 50)], {}, 2.5 / 4.5, 1, 1),  # one half-life: weight 0.5
        ([outcome(60, 50)], {}, 2.25 / 4.25, 1, 1),
        ([outcome(1, 10)] * 10, {"half_life_days": 1e9}, 12 / 14, 10, 10),
        ([outcome(1, 0.0)], {"half_life_days": 1e9}, 2 / 5, 1, 0),  # 0 % is not a win
        ([outcome(1, 3.0)], {"half_life_days": 1e9, "win_threshold_pct": 5.0}, 2 / 5, 1, 0),
        ([outcome(1, 50, channel="beta")], {}, 0.5, 0, 0),  # another channel's calls
        ([outcome(0, 50), outcome(-1, 50)], {}, 0.5, 0, 0),  # at or after as_of
        (
            [outcome(1, 50)],
            {"prior_wins": 1, "prior_losses": 9, "half_life_days": 1e9},
            2 / 11,
            1,
            1,
        ),
    ],
)
def test_reputation_cases(
    outcomes: list[CallOutcome], kwargs: dict, score: float, calls: int, wins: int
) -> None:
    reputation = source_reputation(outcomes, channel="alpha", as_of=T0, **kwargs)
    assert reputation.score == pytest.approx(score, rel=1e-6)
    assert (reputation.calls, reputation.wins) == (calls, wins)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"prior_wins": 0},
        {"prior_losses": -1},
        {"half_life_days": 0},
        {"as_of": T0.replace(tzinfo=None)},
    ],
)
def test_invalid_parameters(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        source_reputation([], **{"channel": "alpha", "as_of": T0, **kwargs})


def test_non_finite_return_is_refused() -> None:
    with pytest.raises(ValueError):
        outcome(1, math.nan)


_OUTCOME = st.builds(
    outcome,
    days_before=st.floats(-100, 200, allow_nan=False),
    return_pct=st.floats(-100, 1000, allow_nan=False),
    channel=st.sampled_from(["alpha", "beta"]),
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(outcomes=st.lists(_OUTCOME, max_size=30), half_life=st.floats(0.5, 365))
def test_reputation_equals_naive_and_ignores_the_future(
    outcomes: list[CallOutcome], half_life: float
) -> None:
    reputation = source_reputation(outcomes, channel="alpha", as_of=T0, half_life_days=half_life)
    past = [o for o in outcomes if o.channel == "alpha" and o.ts < T0]
    weights = [0.5 ** ((T0 - o.ts).total_seconds() / 86_400 / half_life) for o in past]
    wins = [o.return_pct > 0 for o in past]
    expected = (2 + sum(w * x for w, x in zip(weights, wins, strict=True))) / (4 + sum(weights))
    assert reputation.score == pytest.approx(expected, rel=1e-9)
    assert 0.0 < reputation.score < 1.0
    assert (reputation.calls, reputation.wins) == (len(past), sum(wins))
    # No look-ahead: only what was known before as_of counts.
    future_only = [o for o in outcomes if o.ts >= T0]
    assert (
        source_reputation(past + future_only, channel="alpha", as_of=T0, half_life_days=half_life)
        == reputation
    )
    assert (
        source_reputation(past, channel="alpha", as_of=T0, half_life_days=half_life) == reputation
    )


@settings(max_examples=200, deadline=None, derandomize=True)
@given(outcomes=st.lists(_OUTCOME, max_size=20), days=st.floats(0.001, 100))
def test_a_recent_win_never_lowers_and_a_recent_loss_never_raises(
    outcomes: list[CallOutcome], days: float
) -> None:
    base = source_reputation(outcomes, channel="alpha", as_of=T0).score
    assert (
        source_reputation([*outcomes, outcome(days, 25)], channel="alpha", as_of=T0).score >= base
    )
    assert (
        source_reputation([*outcomes, outcome(days, -25)], channel="alpha", as_of=T0).score <= base
    )


def test_call_outcomes_take_each_calls_first_publication_at_the_reputation_horizon() -> None:
    from ml.social.reputation import REPUTATION_HORIZON_MINUTES, call_outcomes

    minute = timedelta(minutes=1)

    def row(signal_id: int, publisher: str, published_s: int, r15: float | None, **over: object) -> dict:
        base = {"signal_id": signal_id, "publisher": publisher, "channel": "alpha",
                "published_at": T0 + timedelta(seconds=published_s), "entry_ts": T0 + timedelta(seconds=published_s) + minute,
                "return_15m": r15}
        return {**base, **over}

    rows = [row(1, "b", 30, -0.10), row(1, "a", 30, 0.05), row(1, "c", 10, 0.02),  # c published first
            row(2, "a", 0, None), row(3, "a", 0, 0.3, channel=None), row(4, "a", 0, 0.3, entry_ts=None),
            row(5, "a", 0, -0.004, channel="beta")]
    outcomes = call_outcomes(rows)
    assert REPUTATION_HORIZON_MINUTES == 15
    assert [(o.channel, o.return_pct) for o in outcomes] == [("beta", pytest.approx(-0.4)), ("alpha", pytest.approx(2.0))]
    assert outcomes[1].ts == T0 + timedelta(seconds=10) + minute + 16 * minute
    # a call that went nowhere after fees (-0.4 %) is a loss: the prior 2/2 moves to 2/5
    beta = source_reputation(outcomes, channel="beta", as_of=T0 + timedelta(hours=1), half_life_days=1e9)
    assert beta.score == pytest.approx(2 / 5) and (beta.calls, beta.wins) == (1, 0)
