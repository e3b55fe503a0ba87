from __future__ import annotations

import pytest

from ml.signals.routing import RoutingRules, by_priority, route


@pytest.mark.parametrize(
    ("confidence", "chain", "source", "rules", "action"),
    [
        (0.8, "solana", "telegram", RoutingRules(min_confidence=0.7), "send"),
        (0.7, "solana", "telegram", RoutingRules(min_confidence=0.7), "send"),
        (0.65, "solana", "telegram", RoutingRules(min_confidence=0.7, has_review_chat=True), "review"),
        (0.65, "solana", "telegram", RoutingRules(min_confidence=0.7), "skip"),
        (0.55, "solana", "telegram", RoutingRules(min_confidence=0.7, has_review_chat=True), "skip"),
        (0.9, "base", "telegram", RoutingRules(chains=("solana",)), "skip"),
        (0.9, "solana", "x", RoutingRules(sources=("telegram", "discord")), "skip"),
        (0.9, None, "telegram", RoutingRules(chains=("solana",)), "skip"),
        (0.1, "bsc", "discord", RoutingRules(), "send"),
    ],
)
def test_route(confidence: float, chain: str | None, source: str, rules: RoutingRules, action: str) -> None:
    decision = route(confidence=confidence, chain=chain, source=source, rules=rules)
    assert decision.action == action
    assert (decision.reason is None) == (action == "send")


def test_priority_order_is_stable() -> None:
    assert by_priority([("a", 0), ("b", 10), ("c", 0), ("d", 10)]) == ["b", "d", "a", "c"]


def test_review_only_signals_go_to_review_chats_only() -> None:
    with_review = RoutingRules(min_confidence=0.1, has_review_chat=True)
    assert route(confidence=0.55, chain="solana", source="x", rules=with_review, review_only=True).action == "review"
    assert route(confidence=0.55, chain="solana", source="x", rules=RoutingRules(), review_only=True).action == "skip"
