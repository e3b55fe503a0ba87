from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ml.signals.routing import (
    RoutingRules,
    by_priority,
    route,
    signal_age_s,
    signal_time,
    symbol_matches,
)


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


MARKET = RoutingRules(kinds=("market", "funding"), strategies=("bos", "ema_cross", "funding"), min_confidence=0.5,
                      muted_symbols=("DOGE", "PEPE/USDT"), risk_levels=("low", "medium"))


@pytest.mark.parametrize(
    ("kind", "strategy", "symbol", "risk_level", "confidence", "rules", "action", "reason"),
    [
        ("market", "bos", "BTC/USDT", "low", 0.6, MARKET, "send", None),
        ("market", "ema_cross", "ETH/USDT:USDT", "medium", 0.5, MARKET, "send", None),
        ("market", "bos", "BTC/USDT", "high", 0.9, MARKET, "skip", "risk level high"),
        ("market", "bos", "DOGE/USDT", "low", 0.9, MARKET, "skip", "muted (DOGE)"),
        ("market", "bos", "doge/usdt:usdt", "low", 0.9, MARKET, "skip", "muted (DOGE)"),
        ("market", "bos", "PEPE/USDT", "low", 0.9, MARKET, "skip", "muted (PEPE/USDT)"),
        ("market", "bos", "PEPE/USDT:USDT", "low", 0.9, MARKET, "send", None),  # a pair pattern mutes one market
        ("market", "rsi", "BTC/USDT", "low", 0.9, MARKET, "skip", "strategy rsi"),
        ("market", "bos", "BTC/USDT", "low", 0.4, MARKET, "skip", "confidence 0.40 < 0.50"),
        ("funding", "funding", "BTC/USDT:USDT", None, 0.6, MARKET, "send", None),  # no risk level: not filtered
        ("funding", "funding", "DOGE/USDT:USDT", None, 0.6, MARKET, "skip", "muted"),
        ("social", None, "BONK", None, 0.9, MARKET, "skip", "kind social"),
        ("market", "bos", "SOL/USDT", "low", 0.6, RoutingRules(symbols=("BTC", "ETH/USDT")), "skip", "symbol SOL/USDT"),
        ("market", "bos", "ETH/USDT", "low", 0.6, RoutingRules(symbols=("BTC", "ETH/USDT")), "send", None),
        ("market", "bos", "BTC/USDT:USDT", "low", 0.6, RoutingRules(symbols=("BTC", "ETH/USDT")), "send", None),
        ("market", "bos", None, "low", 0.6, RoutingRules(symbols=("BTC",)), "skip", "symbol None"),
        ("market", "bos", "BTC/USDT", "low", 0.6, RoutingRules(kinds=("social",)), "skip", "kind market"),
        # social filters do not concern market signals, market filters do not concern social calls
        ("market", "bos", "BTC/USDT", "low", 0.6, RoutingRules(chains=("solana",), sources=("x",)), "send", None),
        ("social", None, "DOGE", None, 0.9, RoutingRules(muted_symbols=("DOGE",), risk_levels=("low",)), "send", None),
        ("market", "bos", "BTC/USDT", "low", 0.45, RoutingRules(min_confidence=0.5, has_review_chat=True),
         "review", "just under"),
    ],
)
def test_route_market_signals(kind: str, strategy: str | None, symbol: str | None, risk_level: str | None,
                              confidence: float, rules: RoutingRules, action: str, reason: str | None) -> None:
    decision = route(confidence=confidence, chain=None, source=None, rules=rules, kind=kind, strategy=strategy,
                     symbol=symbol, risk_level=risk_level)
    assert decision.action == action
    if reason is None:
        assert decision.reason is None
    else:
        assert reason in (decision.reason or ""), decision.reason


@pytest.mark.parametrize(
    ("symbol", "pattern", "matches"),
    [("BTC/USDT", "BTC", True), ("BTC/USDT:USDT", "btc", True), ("BTCDOM/USDT", "BTC", False),
     ("BTC/USDT", "BTC/USDT", True), ("BTC/USDT:USDT", "BTC/USDT", False), ("WBTC/USDT", "BTC", False),
     (None, "BTC", False), ("", "BTC", False), (" eth/usdt ", "ETH/USDT", True)],
)
def test_symbol_matches(symbol: str | None, pattern: str, matches: bool) -> None:
    assert symbol_matches(symbol, pattern) is matches


CREATED = datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "payload", "expected"),
    [
        ("market", {"trigger_ts": "2024-05-01T12:00:00+00:00", "timeframe": "1m"}, datetime(2024, 5, 1, 12, 1, tzinfo=UTC)),
        ("market", {"trigger_ts": "2024-05-01T11:45:00+00:00", "timeframe": "15m"}, datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("market", {"trigger_ts": "2024-05-01T14:00:00+02:00", "timeframe": "5m"}, datetime(2024, 5, 1, 12, 5, tzinfo=UTC)),
        ("funding", {"ts": "2024-05-01T11:59:00+00:00"}, datetime(2024, 5, 1, 11, 59, tzinfo=UTC)),
        ("market", {}, CREATED),
        ("social", {"trigger_ts": "2024-05-01T00:00:00+00:00", "timeframe": "1m"}, CREATED),
    ],
)
def test_signal_time(kind: str, payload: dict, expected: datetime) -> None:
    assert signal_time(kind, payload, CREATED) == expected
    assert signal_age_s(kind, payload, CREATED, expected + timedelta(seconds=61)) == 61.0


@pytest.mark.parametrize(
    ("payload", "message"),
    [({"trigger_ts": "2024-05-01T12:00:00", "timeframe": "1m"}, "no timezone"),
     ({"trigger_ts": "2024-05-01T12:00:00+00:00", "timeframe": "7m"}, "unknown timeframe"),
     ({"trigger_ts": "yesterday", "timeframe": "1m"}, "Invalid isoformat")],
)
def test_signal_time_rejects_what_it_cannot_date(payload: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        signal_time("market", payload, CREATED)
