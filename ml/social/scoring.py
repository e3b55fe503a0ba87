"""The validation score of a social call: weighted components, spam penalty, hard rejections (pure).

Every factor is in :class:`CallFactors` (stored in ``validations`` and shown in run metadata);
:func:`score_call` maps each to a component in [0, 1], sums them with the weights below, and
multiplies by ``1 - penalty`` for spam and coordinated waves::

    raw     = Σ weight_i · component_i                          (weights sum to 1)
    penalty = 1 - (1 - spam_score) · (1 - wave_penalty·[wave_size > 0])
    score   = raw · (1 - penalty)
    passed  = score ≥ threshold (0.6) and no hard rejection

Weights and transfer functions (defaults of :class:`ScoringWeights` / :class:`ScoringParams`)
---------------------------------------------------------------------------------------------

============  ======  =========================================================================
component     weight  transfer function (every component clipped to [0, 1])
============  ======  =========================================================================
reaction      0.30    ``r = (price_at_close / price_at_call - 1)·100`` (percent over the
                      window); piecewise linear through r ≤ -20 % → 0, 0 % → 0.4,
                      r ≥ +30 % → 1; unknown price → 0
liquidity     0.20    ``log(L / 5k) / log(500k / 5k)``: $5k → 0, $50k → 0.5, $500k → 1;
                      unknown → 0
context       0.15    ``(channels - 1) / 3``: 1 channel → 0, 4 or more → 1
reputation    0.15    the source's reputation (:func:`ml.social.reputation.source_reputation`,
                      0.5 without history)
activity      0.10    ``log(V / 10k) / log(1M / 10k)`` of the 24 h volume: $10k → 0,
                      $100k → 0.5, $1M → 1; unknown → 0
pair_age      0.05    ``log(h / 1) / log(168 / 1)``: under 1 h → 0 (risky), 24 h → 0.62,
                      7 days or older → 1; unknown → 0
channel       0.05    the channel's configured weight (0, 1]
============  ======  =========================================================================

Unknown market data never helps: it maps to 0. Activity uses volume alone, not volume /
liquidity, so that more liquidity can never lower the score (a guarantee the tests check).
Market cap and FDV are recorded factors, not scored.

Penalty: ``spam_score`` from :func:`ml.social.spam.spam_assessment`; ``wave_penalty`` 0.5 when
the call is part of a coordinated wave, so a wave scores at most 0.5 and never passes the
default threshold. Hard rejections (``rejections``, any one fails the call whatever its score):

- ``not_listed``: DexScreener lists no pair, or neither pair age nor liquidity is known;
- ``low_liquidity``: liquidity known and below $5k;
- ``spam``: ``spam_score`` ≥ 0.8.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "DEFAULT_PARAMS",
    "CallFactors",
    "CallScore",
    "ScoringParams",
    "ScoringWeights",
    "score_call",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
_UNIT = {"ge": 0.0, "le": 1.0}


class ScoringWeights(BaseModel):
    """Weight of each component (table in the module docstring); they must sum to 1."""

    model_config = _FROZEN

    reaction: float = Field(0.30, **_UNIT)
    liquidity: float = Field(0.20, **_UNIT)
    context: float = Field(0.15, **_UNIT)
    reputation: float = Field(0.15, **_UNIT)
    activity: float = Field(0.10, **_UNIT)
    pair_age: float = Field(0.05, **_UNIT)
    channel: float = Field(0.05, **_UNIT)

    @model_validator(mode="after")
    def _sum_to_one(self) -> ScoringWeights:
        total = sum(self.model_dump().values())
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"weights must sum to 1, got {total}")
        return self


class ScoringParams(BaseModel):
    """Weights, transfer-function anchors, penalties, rejections and the threshold.

    Amounts in USD, ages in hours, reactions in percent. Defaults as in the module docstring.
    """

    model_config = _FROZEN

    weights: ScoringWeights = ScoringWeights()
    threshold: float = Field(0.6, **_UNIT, description="passed when score >= threshold")
    min_liquidity_usd: float = Field(
        5_000.0, gt=0, description="below: rejected; liquidity component 0"
    )
    full_liquidity_usd: float = Field(
        500_000.0, gt=0, description="liquidity component 1 from here"
    )
    reaction_floor_pct: float = Field(-20.0, lt=0, description="reaction component 0 at or below")
    reaction_neutral: float = Field(0.4, **_UNIT, description="reaction component at 0 %")
    reaction_full_pct: float = Field(30.0, gt=0, description="reaction component 1 at or above")
    full_context_channels: int = Field(
        4, ge=2, description="context component 1 from this many channels"
    )
    min_volume_usd: float = Field(10_000.0, gt=0, description="activity component 0 at or below")
    full_volume_usd: float = Field(1_000_000.0, gt=0, description="activity component 1 from here")
    risky_age_h: float = Field(1.0, gt=0, description="pair-age component 0 below")
    mature_age_h: float = Field(168.0, gt=0, description="pair-age component 1 from here")
    reject_spam_score: float = Field(0.8, **_UNIT, description="rejected at or above")
    wave_penalty: float = Field(
        0.5, **_UNIT, description="penalty for a call in a coordinated wave"
    )

    @model_validator(mode="after")
    def _ordered(self) -> ScoringParams:
        pairs = (
            ("min_liquidity_usd", "full_liquidity_usd"),
            ("min_volume_usd", "full_volume_usd"),
            ("risky_age_h", "mature_age_h"),
        )
        for low, high in pairs:
            if not getattr(self, low) < getattr(self, high):
                raise ValueError(f"{low} must be < {high}")
        return self

    @property
    def fingerprint(self) -> str:
        """First 12 hex digits of the SHA-256 of the parameters (record it with each score)."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:12]


DEFAULT_PARAMS = ScoringParams()


class CallFactors(BaseModel):
    """Every factor of one call's validation (``None``: not known). Prices and amounts in USD."""

    model_config = _FROZEN

    listed: bool = Field(description="DexScreener lists a pair for the token")
    price_at_call: float | None = Field(None, ge=0, description="snapshot when the call arrived")
    price_at_close: float | None = Field(None, ge=0, description="snapshot when the window closed")
    liquidity_usd: float | None = Field(None, ge=0)
    volume_24h_usd: float | None = Field(None, ge=0)
    market_cap_usd: float | None = Field(None, ge=0)
    fdv_usd: float | None = Field(None, ge=0)
    pair_age_h: float | None = Field(None, ge=0, description="hours since the pair was created")
    channels: int = Field(
        1, ge=1, description="distinct channels mentioning the token in the window"
    )
    authors: int = Field(1, ge=0, description="distinct authors in the window")
    mentions: int = Field(1, ge=0, description="messages in the window")
    channel_weight: float = Field(1.0, gt=0, le=1, description="configured weight of the channel")
    reputation: float = Field(0.5, **_UNIT, description="source reputation")
    spam_score: float = Field(0.0, **_UNIT)
    wave_size: int = Field(0, ge=0, description="messages in the call's coordinated wave; 0: none")

    @property
    def reaction_pct(self) -> float | None:
        """``(price_at_close / price_at_call - 1)·100``; ``None`` without both prices (or 0 at call)."""
        if self.price_at_call is None or self.price_at_close is None or self.price_at_call <= 0:
            return None
        return (self.price_at_close / self.price_at_call - 1.0) * 100.0


@dataclass(frozen=True)
class CallScore:
    """The outcome of :func:`score_call`.

    Attributes
    ----------
    score
        ``raw_score · (1 - penalty)``, in [0, 1].
    passed
        ``score >= threshold`` and no rejections.
    components
        Component name -> value in [0, 1] (names of :class:`ScoringWeights`).
    rejections
        Hard rejections that fired (``not_listed``, ``low_liquidity``, ``spam``), in that order.
    raw_score
        Weighted sum before the penalty, in [0, 1].
    penalty
        Spam and wave penalty, in [0, 1].
    params_fingerprint
        :attr:`ScoringParams.fingerprint` of the parameters used.
    """

    score: float
    passed: bool
    components: dict[str, float]
    rejections: tuple[str, ...]
    raw_score: float
    penalty: float
    params_fingerprint: str

    def to_metadata(self) -> dict[str, Any]:
        """Flat JSON-safe dict for run metadata and the ``validations`` row."""
        out: dict[str, Any] = {
            "score": self.score,
            "passed": self.passed,
            "raw_score": self.raw_score,
            "penalty": self.penalty,
            "rejections": ",".join(self.rejections),
            "params_fingerprint": self.params_fingerprint,
        }
        out.update({f"component_{name}": value for name, value in self.components.items()})
        return out


def _clip(x: float) -> float:
    return min(1.0, max(0.0, x))


def _log_ramp(value: float | None, low: float, high: float) -> float:
    """0 at or below ``low``, 1 at or above ``high``, log-linear between; ``None`` -> 0."""
    if value is None or value <= low:
        return 0.0
    return _clip(math.log(value / low) / math.log(high / low))


def reaction_component(reaction_pct: float | None, params: ScoringParams = DEFAULT_PARAMS) -> float:
    """Piecewise-linear map of the window's reaction (percent) to [0, 1]; ``None`` -> 0."""
    if reaction_pct is None:
        return 0.0
    if reaction_pct < 0:
        return params.reaction_neutral * _clip(1.0 - reaction_pct / params.reaction_floor_pct)
    return params.reaction_neutral + (1.0 - params.reaction_neutral) * _clip(
        reaction_pct / params.reaction_full_pct
    )


def components_of(factors: CallFactors, params: ScoringParams = DEFAULT_PARAMS) -> dict[str, float]:
    """Each component of :class:`ScoringWeights` in [0, 1] (transfer functions in the module doc)."""
    return {
        "reaction": reaction_component(factors.reaction_pct, params),
        "liquidity": _log_ramp(
            factors.liquidity_usd, params.min_liquidity_usd, params.full_liquidity_usd
        ),
        "context": _clip((factors.channels - 1) / (params.full_context_channels - 1)),
        "reputation": factors.reputation,
        "activity": _log_ramp(
            factors.volume_24h_usd, params.min_volume_usd, params.full_volume_usd
        ),
        "pair_age": _log_ramp(factors.pair_age_h, params.risky_age_h, params.mature_age_h),
        "channel": factors.channel_weight,
    }


def score_call(factors: CallFactors, params: ScoringParams = DEFAULT_PARAMS) -> CallScore:
    """Score one call (formula, weights and rejections in the module docstring).

    Parameters
    ----------
    factors
        The call's factors.
    params
        Weights, anchors, penalties and threshold; default :data:`DEFAULT_PARAMS`.

    Returns
    -------
    CallScore
        Deterministic. Guarantees (property-tested): ``score`` in [0, 1]; more liquidity,
        volume, channels, reputation or channel weight, or a better reaction, never lowers the
        score nor turns a pass into a fail; a higher ``spam_score`` or joining a wave never
        raises it, and lowers it whenever the raw score is positive.
    """
    components = components_of(factors, params)
    weights = params.weights.model_dump()
    raw = _clip(sum(weights[name] * value for name, value in components.items()))
    wave = params.wave_penalty if factors.wave_size > 0 else 0.0
    penalty = _clip(1.0 - (1.0 - factors.spam_score) * (1.0 - wave))
    score = _clip(raw * (1.0 - penalty))

    rejections: list[str] = []
    if not factors.listed or (factors.pair_age_h is None and factors.liquidity_usd is None):
        rejections.append("not_listed")
    if factors.liquidity_usd is not None and factors.liquidity_usd < params.min_liquidity_usd:
        rejections.append("low_liquidity")
    if factors.spam_score >= params.reject_spam_score:
        rejections.append("spam")
    return CallScore(
        score=score,
        passed=score >= params.threshold and not rejections,
        components=components,
        rejections=tuple(rejections),
        raw_score=raw,
        penalty=penalty,
        params_fingerprint=params.fingerprint,
    )
