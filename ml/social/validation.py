"""One call's validation, from its snapshots and its surroundings to a verdict (pure).

:func:`validate_call` gathers every factor of :class:`~ml.social.scoring.CallFactors` (market
reaction across the window, liquidity, volume, pair age, mentions in other channels, spam,
coordinated waves, the channel's reputation), scores them, and returns the ``validations`` row
and a :class:`Verdict`: *passed* (to the outbox, to be published), *review* (a near miss, sent
for review only) or *rejected*, each with a reason a person can read. :func:`signal_of` is what
a passed or near-miss call puts in the signals outbox.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from ml.social.base_token import base_token_key
from ml.social.calls import Call, CallEvent, PairView, mention_key
from ml.social.context import Mention, mention_contexts
from ml.social.reputation import CallOutcome, source_reputation
from ml.social.scoring import CallFactors, CallScore, ScoringParams, score_call
from ml.social.spam import spam_assessment
from ml.social.waves import WaveMessage, coordinated_waves

__all__ = ["REVIEW_MARGIN", "CallValidation", "SignalDraft", "SpamRules", "Verdict", "is_pair_call",
           "on_pair_token", "signal_of", "validate_call", "verdict_of"]

#: Near misses this far under the threshold go to the outbox for manual review only.
REVIEW_MARGIN = 0.1


@dataclass(frozen=True)
class SpamRules:
    """Spam patterns and what makes a coordinated wave (``config/sources.yaml``, ``spam``)."""

    patterns: tuple[str, ...]
    wave_window_s: float
    wave_min_channels: int
    wave_similarity: float


@dataclass(frozen=True)
class Verdict:
    """``passed`` (published), ``review`` (sent for review only) or ``rejected``, and why."""

    outcome: Literal["passed", "review", "rejected"]
    reason: str


@dataclass(frozen=True)
class CallValidation:
    """A call's ``validations`` row (column -> value), its score and its verdict."""

    row: dict[str, Any]
    score: CallScore
    verdict: Verdict


@dataclass(frozen=True)
class SignalDraft:
    """What a passed or near-miss call puts in the signals outbox (``Outbox.enqueue`` arguments)."""

    origin: str
    base_token: str
    confidence: float
    payload: dict[str, Any]
    chain: str
    address: str
    symbol: str | None
    source: str
    channel: str
    created_at: datetime


_REJECTIONS = {"not_listed": "not listed on DexScreener", "spam": "spam"}


def verdict_of(*, passed: bool, score: float, threshold: float, rejections: Sequence[str],
               liquidity_usd: float | None = None, min_liquidity_usd: float = 5_000.0,
               review_margin: float = REVIEW_MARGIN) -> Verdict:
    """The verdict of a scored call: a hard rejection wins; a call with none that scores within
    ``review_margin`` under the threshold is a near miss, sent for review."""
    if passed:
        return Verdict("passed", f"score {score:.2f} >= {threshold:.2f}")
    if rejections:
        reasons = []
        for rejection in rejections:
            if rejection == "low_liquidity":
                shown = f"${liquidity_usd:,.0f} " if liquidity_usd is not None else ""
                reasons.append(f"liquidity {shown}under ${min_liquidity_usd:,.0f}")
            else:
                reasons.append(_REJECTIONS.get(rejection, rejection))
        return Verdict("rejected", ", ".join(reasons))
    if score >= threshold - review_margin:
        return Verdict("review", f"score {score:.2f}, within {review_margin:.2f} under {threshold:.2f}")
    return Verdict("rejected", f"score {score:.2f} < {threshold:.2f}")


def validate_call(call: Call, arrival: PairView | None, closing: PairView | None, *,
                  nearby: Sequence[CallEvent], past: Sequence[CallOutcome], spam: SpamRules,
                  params: ScoringParams, now: datetime) -> CallValidation:
    """Score ``call`` and build its ``validations`` row.

    Parameters
    ----------
    call
        The call (its chain resolved).
    arrival, closing
        The token's pair when the call arrived and when its window closed (``None``: not
        listed, or the fetch failed).
    nearby
        Stored events from :func:`ml.social.calls.context_span` (mentions and waves).
    past
        Earlier outcomes of the call's channel, known at ``now`` (its reputation).
    spam
        Spam and wave rules.
    params
        Scoring parameters (weights, threshold, rejections).
    now
        The run's clock when the window closed (``validated_at``; aware UTC).
    """
    mentions = [Mention(str(e.event_id), e.channel, e.author or "", e.ts, mention_key(t, call))
                for e in nearby for t in e.tokens]
    me = Mention(str(call.event.event_id), call.event.channel, call.event.author or "", call.event.ts,
                 call.base_token)
    (context,) = mention_contexts([me], mentions, window_s=call.window_s)
    waves = coordinated_waves([WaveMessage(str(e.event_id), e.channel, e.ts, e.text) for e in nearby],
                              window_s=spam.wave_window_s, min_channels=spam.wave_min_channels,
                              similarity=spam.wave_similarity)
    wave = waves.get(str(call.event.event_id))
    assessment = spam_assessment(call.event.text, patterns=spam.patterns)
    reputation = source_reputation(past, channel=call.event.channel, as_of=now)
    pair = closing or arrival
    age_s = pair.age(call.event.ts) if pair is not None else None
    factors = CallFactors(
        listed=pair is not None,
        price_at_call=arrival.price_usd if arrival else None, price_at_close=closing.price_usd if closing else None,
        liquidity_usd=pair.liquidity_usd if pair else None, volume_24h_usd=pair.volume_24h_usd if pair else None,
        market_cap_usd=pair.market_cap_usd if pair else None, fdv_usd=pair.fdv_usd if pair else None,
        # a pair created after the call (a new pool took over inside the window) counts as brand new
        pair_age_h=max(age_s, 0.0) / 3600 if age_s is not None else None,
        channels=context.channels, authors=context.authors, mentions=context.mentions,
        channel_weight=call.channel_weight, reputation=reputation.score, spam_score=assessment.score,
        wave_size=wave.size if wave else 0,
    )
    scored = score_call(factors, params)
    event = call.event
    row = {
        "event_id": event.event_id, "chain": call.chain, "address": call.address, "base_token": call.base_token,
        "symbol": pair.base_symbol if pair else None, "source": event.source, "channel": event.channel,
        "author": event.author, "called_at": event.ts, "window_s": call.window_s, "validated_at": now,
        "price_at_call": factors.price_at_call, "price_at_close": factors.price_at_close,
        "reaction_pct": factors.reaction_pct, "liquidity_usd": factors.liquidity_usd,
        "volume_24h_usd": factors.volume_24h_usd, "market_cap_usd": factors.market_cap_usd,
        "pair_age_h": factors.pair_age_h, "pair_address": pair.pair_address if pair else None,
        "mention_channels": context.channels, "mention_authors": context.authors,
        "channel_weight": call.channel_weight, "reputation": reputation.score, "spam_score": assessment.score,
        "wave_size": factors.wave_size, "score": scored.score, "threshold": params.threshold, "passed": scored.passed,
        "factors": json.dumps({**scored.to_metadata(), "spam_reasons": list(assessment.reasons),
                               "arrival_lag_s": _lag_s(arrival, event.ts),
                               "reputation_calls": reputation.calls, "mentions": context.mentions,
                               "echo": context.echo_of is not None, "dex": pair.dex if pair else None},
                              sort_keys=True, default=str),
    }
    verdict = verdict_of(passed=scored.passed, score=scored.score, threshold=params.threshold,
                         rejections=scored.rejections, liquidity_usd=factors.liquidity_usd,
                         min_liquidity_usd=params.min_liquidity_usd)
    return CallValidation(row, scored, verdict)


def signal_of(call: Call, validation: CallValidation) -> SignalDraft | None:
    """The outbox signal of a passed call or a near miss (``review_only``); ``None`` when rejected."""
    if validation.verdict.outcome == "rejected":
        return None
    row = validation.row
    payload = {k: row[k] for k in ("symbol", "chain", "address", "liquidity_usd", "market_cap_usd",
                                   "volume_24h_usd", "reaction_pct", "window_s", "channel", "source", "score")}
    payload.update(price_usd=row["price_at_close"], channels=row["mention_channels"], authors=row["mention_authors"],
                   review_only=validation.verdict.outcome == "review", event_id=row["event_id"],
                   chart_url=f"https://dexscreener.com/{call.chain}/{row['pair_address'] or call.address}")
    return SignalDraft(
        origin=f"call:{call.event.event_id}:{call.chain}:{call.address}", base_token=call.base_token,
        confidence=row["score"], payload=payload, chain=call.chain, address=call.address, symbol=row["symbol"],
        source=call.event.source, channel=call.event.channel, created_at=row["validated_at"])


def is_pair_call(call: Call) -> bool:
    """Whether the extractor marked the call's address as a DEX pair (a chart link's pool,
    ``kind == "pair"``, see :class:`streaming.extract.TokenMention`) rather than a token."""
    wanted = call.address.lower() if call.address.startswith("0x") else call.address
    for token in call.event.tokens:
        address = str(token["address"])
        if address.startswith("0x"):
            address = address.lower()
        if token.get("kind") == "pair" and address == wanted and str(token["chain"]) == call.chain:
            return True
    return False


def on_pair_token(call: Call, base_address: str | None) -> Call:
    """``call`` about the token its pair trades: the pair's base token (DexScreener's
    ``baseToken``, the side a chart prices). Unchanged when the pair is unknown (``None``): a
    chart link may hold the token's own address, which DexScreener's token endpoints accept."""
    if base_address is None:
        return call
    return replace(call, address=base_address, base_token=base_token_key(call.chain, base_address))


def _lag_s(snapshot: PairView | None, called_at: datetime) -> float | None:
    """How long after the call its arrival snapshot was fetched (negative: served from a cache
    entry fetched shortly before the call)."""
    return None if snapshot is None else round((snapshot.fetched_at - called_at).total_seconds(), 3)
