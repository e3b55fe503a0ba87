"""Validation resolves a call on a chart link's pair to the pair's token (DexScreener twin)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import yaml

from assets.validation import validate_calls
from orchestration.settings import Settings
from resources.dexscreener_sim import SimDexScreener
from resources.social_config import load_social_config
from resources.warehouse.social import SocialStore
from streaming.events import Event

TOKEN = "0xd85c31854c2B0Fb40aaA9E2Fc4Da23C21f829d46"  # PING on Base (token_lists/address_ground_truth.csv)
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def _validate(tmp_path: Path, sim: SimDexScreener, pair_address: str, ca: str = "") -> list[dict]:
    config = tmp_path / "sources.yaml"
    config.write_text(yaml.safe_dump({"sources": {"replay": {"window_s": 1.0, "channels": [{"id": "alpha"}]}},
                                      "publishers": [], "validation_threshold": 0.3}))
    settings = Settings(home=tmp_path, social_config=config)
    store = SocialStore.from_url(settings.warehouse_url)
    event = Event.from_message(source="replay", channel="alpha", message_id="1", author="a",
                               text=f"{ca}chart https://dexscreener.com/base/{pair_address}", ts=NOW)
    assert (pair_address.lower(), "pair") in [(t.key, t.kind) for t in event.tokens]
    (event_id,) = store.append([event.to_record()])
    report = validate_calls([event_id], store=store, engine=store.engine, fresh=sim, cached=None,
                            config=load_social_config(settings.social_config), clock=lambda: NOW,
                            sleep=lambda _s: None)
    return report.rows


def test_a_pair_call_is_validated_as_the_pairs_token(tmp_path: Path) -> None:
    sim = SimDexScreener(seed=42, clock=lambda: NOW, unknown_fraction=0.0)
    pair = sim.best_pair("base", TOKEN)  # the twin has now shown this pair
    assert pair is not None
    (row,) = _validate(tmp_path, sim, pair.pair_address)
    assert (row["chain"], row["address"].lower()) == ("base", TOKEN.lower())
    assert row["pair_address"] == pair.pair_address


def test_an_address_that_is_no_known_pair_is_validated_as_written(tmp_path: Path) -> None:
    sim = SimDexScreener(seed=42, clock=lambda: NOW, unknown_fraction=0.0)
    (row,) = _validate(tmp_path, sim, TOKEN)  # a chart link may hold the token itself
    assert row["address"].lower() == TOKEN.lower()


def test_a_token_and_its_own_pair_in_one_message_are_one_call(tmp_path: Path) -> None:
    sim = SimDexScreener(seed=42, clock=lambda: NOW, unknown_fraction=0.0)
    pair = sim.best_pair("base", TOKEN)
    assert pair is not None
    (row,) = _validate(tmp_path, sim, pair.pair_address, ca=f"CA: {TOKEN} #Base\n")
    assert row["address"].lower() == TOKEN.lower()
