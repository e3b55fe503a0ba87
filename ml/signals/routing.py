"""Per-publisher routing rules (pure).

A publisher receives a signal when its confidence reaches ``min_confidence`` and its chain and
source pass the publisher's filters. A signal that misses ``min_confidence`` by at most
``review_margin`` goes to the publisher's manual-review chat, when it has one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Action = Literal["send", "review", "skip"]


@dataclass(frozen=True)
class RoutingRules:
    min_confidence: float = 0.0
    chains: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    has_review_chat: bool = False
    review_margin: float = 0.1


@dataclass(frozen=True)
class RouteDecision:
    action: Action
    reason: str | None = None


def route(*, confidence: float, chain: str | None, source: str | None, rules: RoutingRules,
          review_only: bool = False) -> RouteDecision:
    """Where one signal goes for one publisher.

    Filters first (chain, source: an empty filter admits everything), then the bar: at or above
    ``min_confidence`` -> send; within ``review_margin`` below it -> review (if the publisher has
    a review chat); otherwise skip. A ``review_only`` signal (it missed the validation threshold
    narrowly) can only go to a review chat. Every skip says why.
    """
    if rules.chains and (chain or "") not in rules.chains:
        return RouteDecision("skip", f"chain {chain} not in {','.join(rules.chains)}")
    if rules.sources and (source or "") not in rules.sources:
        return RouteDecision("skip", f"source {source} not in {','.join(rules.sources)}")
    if review_only:
        if rules.has_review_chat:
            return RouteDecision("review", "just under the validation threshold")
        return RouteDecision("skip", "under the validation threshold and no review chat")
    if confidence >= rules.min_confidence:
        return RouteDecision("send")
    if rules.has_review_chat and confidence >= rules.min_confidence - rules.review_margin:
        return RouteDecision("review", f"confidence {confidence:.2f} just under {rules.min_confidence:.2f}")
    return RouteDecision("skip", f"confidence {confidence:.2f} < {rules.min_confidence:.2f}")


def by_priority(names_and_priorities: Sequence[tuple[str, int]]) -> list[str]:
    """Publisher names, highest priority first (ties keep configuration order)."""
    order = sorted(enumerate(names_and_priorities), key=lambda item: (-item[1][1], item[0]))
    return [name for _, (name, _) in order]
