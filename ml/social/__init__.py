"""Validation of social calls (pure): base-token identity, spam, context, reputation, scoring.

Nothing here does I/O or imports Dagster; the validation op loads the inputs through resources
and calls these functions. Modules:

- :mod:`ml.social.base_token`: one identity for a token across chains and wrappers.
- :mod:`ml.social.spam`: a message's spam score from configured patterns and its shape.
- :mod:`ml.social.waves`: coordinated waves (near-identical texts across channels).
- :mod:`ml.social.context`: channels/authors mentioning the token within the window.
- :mod:`ml.social.reputation`: a source's reputation from the outcomes of its past calls.
- :mod:`ml.social.scoring`: the weighted score, its hard rejections and the threshold.
- :mod:`ml.social.calls`: calls of stored events and the order a run handles them in.
- :mod:`ml.social.validation`: one call's factors, row, verdict (passed, review, rejected) and signal.
"""

from ml.social.base_token import (
    DEFAULT_ALIASES,
    EVM_CHAINS,
    base_token_key,
    build_aliases,
    normalise_address,
)
from ml.social.context import Context, Mention, mention_context, mention_contexts
from ml.social.reputation import CallOutcome, Reputation, source_reputation
from ml.social.scoring import (
    DEFAULT_PARAMS,
    CallFactors,
    CallScore,
    ScoringParams,
    ScoringWeights,
    score_call,
)
from ml.social.spam import SpamResult, SpamWeights, spam_assessment
from ml.social.waves import WaveInfo, WaveMessage, coordinated_waves, wave_shingles, wave_text

__all__ = [
    "DEFAULT_ALIASES",
    "DEFAULT_PARAMS",
    "EVM_CHAINS",
    "CallFactors",
    "CallOutcome",
    "CallScore",
    "Context",
    "Mention",
    "Reputation",
    "ScoringParams",
    "ScoringWeights",
    "SpamResult",
    "SpamWeights",
    "WaveInfo",
    "WaveMessage",
    "base_token_key",
    "build_aliases",
    "coordinated_waves",
    "mention_context",
    "mention_contexts",
    "normalise_address",
    "score_call",
    "source_reputation",
    "spam_assessment",
    "wave_shingles",
    "wave_text",
]
