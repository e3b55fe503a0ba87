"""The pairs endpoint (``/latest/dex/pairs/{chain}/{pair}``): the client against the loopback replay
of the real recordings, and the twin. A chart link names a pair; validation resolves it here."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from resources.dexscreener import DexScreenerClient, PairLookup
from resources.dexscreener_sim import SimDexScreener
from resources.retry import RetryPolicy
from tests.support.dexscreener_replay import DexScreenerReplay
from tests.support.fixtures import shared_fixtures_dir

NOW = datetime(2025, 11, 6, 8, 15, 30, tzinfo=UTC)
# Recorded pairs (dexscreener/responses/latest_dex_search_USD1_USDC.json, latest_dex_tokens_USD1.json)
SOL_PAIR = "BCDdHonby65iduz3Ev3c9v5XjNkzyu5e56KRFHpBM4T9"  # raydium USD1/USDC
USD1 = "USD1ttGY1N17NEEHLmELoaybftRBUSErhqYiQzvEmuB"
BSC_PAIR = "0xB3F27Fe82Bd1e5D7458E02b543CF0C6610fFAD83"  # pancakeswap USD1/USDC
USD1_BSC = "0x8d0D000Ee44948FC98c9B98A4FA4921476f08B0d"


@pytest.fixture
def replay() -> Iterator[DexScreenerReplay]:
    with DexScreenerReplay(shared_fixtures_dir() / "dexscreener") as server:
        yield server


@pytest.fixture
def client(replay: DexScreenerReplay) -> Iterator[DexScreenerClient]:
    retry = RetryPolicy(attempts=2, base_delay=0.01, sleep=lambda _s: None, rng=random.Random(7))
    with DexScreenerClient(base_url=replay.base_url, timeout_s=2.0, retry=retry, clock=lambda: NOW) as live:
        yield live


def test_a_recorded_pair_resolves_to_its_base_token(client: DexScreenerClient, replay: DexScreenerReplay) -> None:
    pair = client.pair("solana", SOL_PAIR)
    assert pair is not None and (pair.pair_address, pair.base_address, pair.quote_symbol) == (SOL_PAIR, USD1, "USDC")
    assert replay.requests[-1].path == f"/latest/dex/pairs/solana/{SOL_PAIR}"


def test_an_evm_pair_matches_in_any_case(client: DexScreenerClient) -> None:
    pair = client.pair("bsc", BSC_PAIR.lower())
    assert pair is not None and pair.base_address == USD1_BSC


def test_an_unknown_pair_is_none_not_an_error(client: DexScreenerClient) -> None:
    assert client.pair("solana", USD1) is None  # a token's address is no pair
    with pytest.raises(ValueError):
        client.pair("Solana", SOL_PAIR)


def test_the_client_and_the_twin_both_look_pairs_up(client: DexScreenerClient) -> None:
    assert isinstance(client, PairLookup) and isinstance(SimDexScreener(), PairLookup)


def test_the_twin_knows_the_pairs_it_has_shown() -> None:
    sim = SimDexScreener(seed=3, clock=lambda: NOW, unknown_fraction=0.0)
    assert sim.pair("bsc", BSC_PAIR) is None  # never shown: no pair (the API's answer for a token)
    shown = sim.token_pairs("bsc", USD1_BSC)
    assert shown
    for snapshot in shown:
        assert sim.pair("bsc", snapshot.pair_address) == snapshot
        assert sim.pair("bsc", snapshot.pair_address.upper().replace("0X", "0x")) == snapshot
    assert sim.pair("tron", shown[0].pair_address) is None
