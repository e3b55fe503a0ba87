"""config/sources.yaml: the market routing fields parse, map onto RoutingRules and reject bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.signals.routing import MAX_SIGNAL_AGE_S, RoutingRules
from resources.publishers.senders import ConsolePublisher, rules_of
from resources.social_config import PublisherConfig, SignalworksSocialConfig, load_social_config

ROOT = Path(__file__).resolve().parents[2]


def test_the_example_market_publisher_parses_into_its_routing_rules() -> None:
    config = load_social_config(ROOT / "config" / "sources.yaml")
    market = next(p for p in config.publishers if p.name == "market_chat")
    assert not market.enabled and market.kind == "telegram_bot"
    assert rules_of(market) == RoutingRules(
        min_confidence=0.55, has_review_chat=False, kinds=("market", "funding"),
        strategies=("bos", "ema_cross", "funding"), muted_symbols=("DOGE", "PEPE"), risk_levels=("low", "medium"))
    assert config.max_signal_age_s == MAX_SIGNAL_AGE_S == 60.0
    social = [p for p in config.publishers if p.kind != "console" and p.name != "market_chat"]
    assert social and all(p.kinds == ("social",) for p in social)  # the social examples keep market signals out


def test_a_publisher_written_before_market_signals_routes_as_before() -> None:
    old = PublisherConfig(name="alpha", kind="telegram_bot", chat_id="-1", token_env="T", min_confidence=0.7,
                          chains=("solana",), review_chat_id="-2")
    assert rules_of(old) == RoutingRules(min_confidence=0.7, chains=("solana",), has_review_chat=True)


@pytest.mark.parametrize(("override", "expected"), [(None, 45.0), (120.0, 120.0)])
def test_max_signal_age_comes_from_the_publisher_or_the_file(tmp_path: Path, override: float | None,
                                                             expected: float) -> None:
    config = PublisherConfig(name="console", kind="console", max_signal_age_s=override)
    assert ConsolePublisher(config, log_path=tmp_path / "p.jsonl", max_signal_age_s=45.0).max_signal_age_s == expected


@pytest.mark.parametrize(
    ("fields", "message"),
    [({"risk_levels": ["extreme"]}, "risk_levels"), ({"kinds": ["tweets"]}, "kinds"),
     ({"max_signal_age_s": 0}, "max_signal_age_s"), ({"muted_symbol": ["DOGE"]}, "muted_symbol")],
)
def test_bad_routing_fields_are_rejected_by_name(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SignalworksSocialConfig.model_validate({"publishers": [{"name": "m", "kind": "console", **fields}]})
