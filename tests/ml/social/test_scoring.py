"""The weighted score: transfer functions, weights, rejections and its guarantees."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ml.social.scoring import (
    DEFAULT_PARAMS,
    CallFactors,
    ScoringParams,
    ScoringWeights,
    components_of,
    reaction_component,
    score_call,
)

GOOD = CallFactors(
    listed=True,
    price_at_call=1.0,
    price_at_close=1.15,
    liquidity_usd=150_000,
    volume_24h_usd=400_000,
    market_cap_usd=2_000_000,
    pair_age_h=30,
    channels=4,
    authors=4,
    channel_weight=0.9,
    reputation=0.65,
)


def test_default_weights_sum_to_one_and_threshold_is_0_6() -> None:
    weights = ScoringWeights().model_dump()
    assert math.isclose(sum(weights.values()), 1.0)
    assert weights == {
        "reaction": 0.30,
        "liquidity": 0.20,
        "context": 0.15,
        "reputation": 0.15,
        "activity": 0.10,
        "pair_age": 0.05,
        "channel": 0.05,
    }
    assert DEFAULT_PARAMS.threshold == 0.6


@pytest.mark.parametrize(
    ("reaction_pct", "expected"),
    [(None, 0.0), (-100, 0.0), (-20, 0.0), (-10, 0.2), (0, 0.4), (15, 0.7), (30, 1.0), (500, 1.0)],
)
def test_reaction_transfer(reaction_pct: float | None, expected: float) -> None:
    assert reaction_component(reaction_pct) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("changes", "name", "expected"),
    [
        ({"liquidity_usd": None}, "liquidity", 0.0),
        ({"liquidity_usd": 1_000}, "liquidity", 0.0),
        ({"liquidity_usd": 5_000}, "liquidity", 0.0),
        ({"liquidity_usd": 50_000}, "liquidity", 0.5),
        ({"liquidity_usd": 500_000}, "liquidity", 1.0),
        ({"liquidity_usd": 5e9}, "liquidity", 1.0),
        ({"channels": 1}, "context", 0.0),
        ({"channels": 2}, "context", 1 / 3),
        ({"channels": 4}, "context", 1.0),
        ({"channels": 40}, "context", 1.0),
        ({"volume_24h_usd": None}, "activity", 0.0),
        ({"volume_24h_usd": 10_000}, "activity", 0.0),
        ({"volume_24h_usd": 100_000}, "activity", 0.5),
        ({"volume_24h_usd": 1_000_000}, "activity", 1.0),
        ({"pair_age_h": None}, "pair_age", 0.0),
        ({"pair_age_h": 0.5}, "pair_age", 0.0),
        ({"pair_age_h": 1}, "pair_age", 0.0),
        ({"pair_age_h": 24}, "pair_age", math.log(24) / math.log(168)),
        ({"pair_age_h": 24 * 365}, "pair_age", 1.0),
        ({"price_at_call": 2.0, "price_at_close": 1.6}, "reaction", 0.0),
        ({"price_at_call": 0.0}, "reaction", 0.0),
        ({"price_at_close": None}, "reaction", 0.0),
        ({"reputation": 0.3}, "reputation", 0.3),
        ({"channel_weight": 0.25}, "channel", 0.25),
    ],
)
def test_transfer_functions(changes: dict, name: str, expected: float) -> None:
    assert components_of(GOOD.model_copy(update=changes))[name] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("changes", "rejections"),
    [
        ({}, ()),
        ({"listed": False}, ("not_listed",)),
        ({"pair_age_h": None, "liquidity_usd": None}, ("not_listed",)),
        ({"pair_age_h": None}, ()),
        ({"liquidity_usd": None}, ()),
        ({"liquidity_usd": 4_999}, ("low_liquidity",)),
        ({"liquidity_usd": 5_000}, ()),
        ({"spam_score": 0.79}, ()),
        ({"spam_score": 0.8}, ("spam",)),
        (
            {"listed": False, "liquidity_usd": 10, "spam_score": 0.9},
            ("not_listed", "low_liquidity", "spam"),
        ),
    ],
)
def test_hard_rejections(changes: dict, rejections: tuple[str, ...]) -> None:
    result = score_call(GOOD.model_copy(update=changes))
    assert result.rejections == rejections
    assert result.passed == (not rejections and result.score >= 0.6)


def test_good_call_passes_and_metadata_is_flat() -> None:
    result = score_call(GOOD)
    assert result.passed and result.penalty == 0.0 and result.score == result.raw_score
    weights = ScoringWeights().model_dump()
    assert result.score == pytest.approx(sum(weights[k] * v for k, v in result.components.items()))
    metadata = result.to_metadata()
    assert metadata["passed"] is True and metadata["rejections"] == ""
    assert {f"component_{k}" for k in weights} <= set(metadata)
    assert all(isinstance(v, str | float | bool | int) for v in metadata.values())
    assert metadata["params_fingerprint"] == DEFAULT_PARAMS.fingerprint


def test_a_wave_caps_the_score_below_the_threshold() -> None:
    perfect = GOOD.model_copy(
        update={
            "price_at_close": 2.0,
            "liquidity_usd": 1e6,
            "volume_24h_usd": 1e7,
            "pair_age_h": 1000,
            "reputation": 1.0,
            "channel_weight": 1.0,
        }
    )
    assert score_call(perfect).score == pytest.approx(1.0)
    waved = score_call(perfect.model_copy(update={"wave_size": 5}))
    assert waved.score == pytest.approx(0.5) and not waved.passed and waved.rejections == ()


@pytest.mark.parametrize(
    "changes",
    [
        {"weights": {"reaction": 0.5}},
        {"threshold": 1.5},
        {"min_liquidity_usd": 600_000},
        {"risky_age_h": 200},
        {"full_context_channels": 1},
    ],
)
def test_invalid_params_are_refused(changes: dict) -> None:
    with pytest.raises(ValidationError):
        ScoringParams.model_validate(changes)


@pytest.mark.parametrize(
    "changes",
    [
        {"liquidity_usd": -1},
        {"spam_score": 1.5},
        {"channels": 0},
        {"price_at_call": math.nan},
        {"channel_weight": 0},
    ],
)
def test_invalid_factors_are_refused(changes: dict) -> None:
    with pytest.raises(ValidationError):
        CallFactors.model_validate({"listed": True, **changes})


def test_params_are_frozen_and_fingerprinted() -> None:
    with pytest.raises(ValidationError):
        DEFAULT_PARAMS.threshold = 0.1  # type: ignore[misc]
    assert ScoringParams().fingerprint == DEFAULT_PARAMS.fingerprint
    assert ScoringParams(threshold=0.7).fingerprint != DEFAULT_PARAMS.fingerprint


_MAYBE_USD = st.one_of(st.none(), st.floats(0, 1e9))
_FACTORS = st.builds(
    CallFactors,
    listed=st.booleans(),
    price_at_call=st.one_of(st.none(), st.floats(0, 1e3)),
    price_at_close=st.one_of(st.none(), st.floats(0, 1e3)),
    liquidity_usd=_MAYBE_USD,
    volume_24h_usd=_MAYBE_USD,
    pair_age_h=st.one_of(st.none(), st.floats(0, 1e5)),
    channels=st.integers(1, 20),
    channel_weight=st.floats(0.01, 1.0),
    reputation=st.floats(0, 1),
    spam_score=st.floats(0, 1),
    wave_size=st.integers(0, 3),
)


def _never_worse(before: CallFactors, after: CallFactors) -> None:
    a, b = score_call(before), score_call(after)
    assert b.score >= a.score - 1e-12
    assert b.passed or not a.passed


@settings(max_examples=300, deadline=None, derandomize=True)
@given(factors=_FACTORS, extra=st.floats(0, 1e9), scale=st.floats(1, 100))
def test_score_bounds_and_monotonicity(factors: CallFactors, extra: float, scale: float) -> None:
    result = score_call(factors)
    assert 0.0 <= result.score <= 1.0 and 0.0 <= result.raw_score <= 1.0
    assert all(0.0 <= v <= 1.0 for v in result.components.values())
    assert result.passed == (result.score >= 0.6 and not result.rejections)
    if factors.liquidity_usd is not None:
        _never_worse(
            factors, factors.model_copy(update={"liquidity_usd": factors.liquidity_usd + extra})
        )
    if factors.volume_24h_usd is not None:
        _never_worse(
            factors, factors.model_copy(update={"volume_24h_usd": factors.volume_24h_usd + extra})
        )
    if factors.price_at_close is not None:
        _never_worse(
            factors, factors.model_copy(update={"price_at_close": factors.price_at_close * scale})
        )
    _never_worse(factors, factors.model_copy(update={"channels": factors.channels + 1}))
    _never_worse(
        factors, factors.model_copy(update={"reputation": min(1.0, factors.reputation + 0.1)})
    )


@settings(max_examples=300, deadline=None, derandomize=True)
@given(factors=_FACTORS, more_spam=st.floats(0.001, 1))
def test_spam_and_waves_always_lower_the_score(factors: CallFactors, more_spam: float) -> None:
    before = score_call(factors)
    spammier = factors.model_copy(update={"spam_score": min(1.0, factors.spam_score + more_spam)})
    waved = factors.model_copy(update={"wave_size": factors.wave_size + 1})
    for after in (score_call(spammier), score_call(waved)):
        assert after.score <= before.score
        assert not after.passed or before.passed
    if before.score > 0 and factors.spam_score < 1:
        assert score_call(spammier).score < before.score
    if before.score > 0 and factors.wave_size == 0:
        assert score_call(waved).score < before.score
