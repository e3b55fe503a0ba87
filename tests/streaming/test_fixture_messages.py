"""Extraction and events on real recorded texts and payloads from ``../shared/fixtures``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from streaming.events import Event
from streaming.extract import ChainSpec, ExtractionConfig, extract_tokens
from streaming.extract_config import DEFAULT_CHAINS
from tests.support.fixtures import shared_fixtures_dir

pytestmark = pytest.mark.fixtures

KNOWN_CHAINS = {spec.name for spec in DEFAULT_CHAINS}


@pytest.fixture(scope="module")
def fixtures() -> Path:
    return shared_fixtures_dir()


def jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def test_real_call_bot_post_yields_its_mint_once(fixtures: Path) -> None:
    (row,) = jsonl(fixtures / "signals" / "memecoin_call_texts.jsonl")
    mint = "GMpuhpZtgguWDJLqhYVS4epZGXjDRiboGSdzAqWupump"
    (mention,) = extract_tokens(row["text"])
    assert (mention.chain, mention.address, mention.role) == ("solana", mint, "token")
    assert mention.occurrences == row["text"].count(mint)
    assert "TSLvdd1pWpHVjahSpsvCXUbgwsL3JAcvokwaKt1eokM" in row["text"]  # the deployer: dropped


def test_real_perp_signals_mention_no_token_address(fixtures: Path) -> None:
    rows = jsonl(fixtures / "signals" / "cryptobotcz_signal_texts.jsonl")
    assert len(rows) == 79
    assert [row["source_line"] for row in rows if extract_tokens(row["text"])] == []


@pytest.mark.parametrize("name", ["token-profiles_latest_v1.json", "token-boosts_latest_v1.json"])
def test_dexscreener_listings_as_messages(fixtures: Path, name: str) -> None:
    """Each listed token, posted as "description, address, chart link", is found on its chain."""
    listings = json.loads((fixtures / "dexscreener" / "responses" / name).read_text(encoding="utf-8"))
    for listing in listings:
        text = f"{listing.get('description', '')}\n\nCA: {listing['tokenAddress']}\n{listing['url']}"
        expected_chain = listing["chainId"] if listing["chainId"] in KNOWN_CHAINS else "evm"
        found = {m.key: m.chain for m in extract_tokens(text)}
        key = listing["tokenAddress"].lower() if listing["chainId"] != "solana" else listing["tokenAddress"]
        assert found.get(key) == expected_chain, listing["url"]


def test_a_custom_chain_resolves_a_dexscreener_slug(fixtures: Path) -> None:
    listings = json.loads(
        (fixtures / "dexscreener" / "responses" / "token-profiles_latest_v1.json").read_text(encoding="utf-8")
    )
    (pulse,) = [listing for listing in listings if listing["chainId"] == "pulsechain"]
    config = ExtractionConfig(extra_chains=(ChainSpec(name="pulsechain", slugs=("pulsechain",)),))
    assert [m.chain for m in extract_tokens(pulse["url"], config=config)] == ["pulsechain"]
    assert [m.chain for m in extract_tokens(pulse["url"])] == ["evm"]


def test_dexscreener_chart_links_lower_case_solana_addresses(fixtures: Path) -> None:
    """DexScreener's API lower-cases addresses in ``url``: EVM survives, a Solana mint cannot."""
    search = json.loads(
        (fixtures / "dexscreener" / "responses" / "latest_dex_search_USD1_USDC.json").read_text(encoding="utf-8")
    )
    for pair in search["pairs"]:
        found = extract_tokens(pair["url"])
        if pair["chainId"] == "solana":
            assert found == [], pair["url"]
        elif len(pair["pairAddress"]) == 42:
            assert [(m.chain, m.key) for m in found] == [(pair["chainId"], pair["pairAddress"].lower())]
        else:  # a Uniswap v4 pool id: 32 bytes, like a transaction hash
            assert found == [], pair["url"]


def test_telegram_update_and_discord_gateway_payloads_become_events(fixtures: Path) -> None:
    update = json.loads((fixtures / "telegram" / "bot_api" / "silikidi" / "TEXT.json").read_text(encoding="utf-8"))
    message = update["message"]
    telegram = Event.from_message(
        source="telegram",
        channel=str(message["chat"]["id"]),
        message_id=str(message["message_id"]),
        author=message["from"].get("username", ""),
        text=message["text"],
        ts=datetime.fromtimestamp(message["date"], tz=UTC),
        raw={"entities": message["entities"]},
    )
    frame = json.loads((fixtures / "discord" / "gateway" / "MessageCreate.Type0.json").read_text(encoding="utf-8"))
    data = frame["d"]
    discord = Event.from_message(
        source="discord",
        channel=data["channel_id"],
        message_id=data["id"],
        author=data["author"]["id"],
        text=data["content"],
        ts=datetime.fromisoformat(data["timestamp"]),
        attachments=tuple(a["url"] for a in data["attachments"]),
    )
    assert telegram.tokens == () and discord.tokens == ()
    assert telegram.ts == datetime(2021, 10, 8, 9, 40, 33, tzinfo=UTC)
    assert discord.ts.utcoffset() is not None and discord.ts.tzinfo is UTC
    repost = Event.from_message(
        source="discord", channel=data["channel_id"], message_id="1", author="bot",
        text=f"**{message['text']}**", ts=discord.ts,
    )
    assert repost.content_md5 == telegram.content_md5
