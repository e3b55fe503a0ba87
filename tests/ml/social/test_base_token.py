"""Base-token identity across chains and wrappers."""

from __future__ import annotations

import gzip
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.social.base_token import (
    _CURATED,
    DEFAULT_ALIASES,
    EVM_CHAINS,
    base_token_key,
    build_aliases,
    normalise_address,
)
from streaming.extract_config import DEFAULT_CONFIG, SOLANA
from tests.support.fixtures import shared_fixtures_dir

MEME_MINT = "7GCihgDB8fe6KNjn2MYtkzZcRjQy3t9GHdC8uHYmW2hr"


@pytest.mark.parametrize(
    ("chain", "address", "expected"),
    [
        ("ethereum", "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", "usdc"),
        ("ethereum", "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48", "usdc"),
        ("base", "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", "usdc"),
        ("arbitrum", "0xaf88d065e77c8cC2239327C5EDb3A432268e5831", "usdc"),
        ("arbitrum", "0xFF970A61A04b1cA14834A43f5dE4533eBDDB5CC8", "usdc"),  # bridged USDC.e
        ("polygon", "0x2791Bca1f2de4661ED88A30C99A7a9449Aa84174", "usdc"),
        ("bsc", "0x8AC76a51cc950d9822D68b83fE1Ad97B32Cd580d", "usdc"),
        ("solana", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", "usdc"),
        ("SOLANA", " EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v ", "usdc"),
        ("ethereum", "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", "eth"),
        ("base", "0x4200000000000000000000000000000000000006", "eth"),
        ("solana", "7vfCXTUXx5WJV5JADk17DUJ4ksgau7utNKj4b963voxs", "eth"),
        ("ethereum", "0x2260FAC5E5542a773Aa44fBCfeDf7C193bc2C599", "btc"),
        ("base", "0xcbB7C0000aB88B473b1f5aFd9ef808440eed33Bf", "btc"),
        ("solana", "So11111111111111111111111111111111111111112", "sol"),
        ("bsc", "0xbb4CdB9CBd36B01bD1cBaEBF2De08d9173bc095c", "bnb"),
        # unknown EVM chain: mapped when every alias of the address agrees
        ("evm", "0x4200000000000000000000000000000000000006", "eth"),
        ("evm", "0xcbB7C0000aB88B473b1f5aFd9ef808440eed33Bf", "btc"),
        ("evm", "0xDA10009cBd5D07dd0CeCc66161FC93D7c9000da1", "dai"),
        # staked derivatives are other assets
        (
            "ethereum",
            "0xBe9895146f7AF43049ca1c1AE358B0541Ea49704",
            "ethereum:0xbe9895146f7af43049ca1c1ae358b0541ea49704",
        ),
        # the USDC address on another chain is not USDC there
        (
            "bsc",
            "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",
            "bsc:0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48",
        ),
        ("solana", MEME_MINT, f"solana:{MEME_MINT}"),
        (
            "Base",
            "0xABCDEFabcdef0000000000000000000000000001",
            "base:0xabcdefabcdef0000000000000000000000000001",
        ),
        (
            "evm",
            "0xABCDEFabcdef0000000000000000000000000001",
            "evm:0xabcdefabcdef0000000000000000000000000001",
        ),
        # an EVM-format address on a chain not in EVM_CHAINS is still case-insensitive
        (
            "sonic",
            "0xABCDEFabcdef0000000000000000000000000001",
            "sonic:0xabcdefabcdef0000000000000000000000000001",
        ),
        ("tron", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", "tron:TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"),
    ],
)
def test_base_token_key(chain: str, address: str, expected: str) -> None:
    assert base_token_key(chain, address) == expected


@pytest.mark.parametrize(
    ("chain", "address"),
    [
        ("", MEME_MINT),
        ("solana", ""),
        ("ethereum", MEME_MINT),
        ("base", "0x1234"),
        ("evm", "0x" + "g" * 40),
    ],
)
def test_invalid_inputs_raise(chain: str, address: str) -> None:
    with pytest.raises(ValueError):
        base_token_key(chain, address)


def test_custom_aliases_replace_the_defaults() -> None:
    aliases = build_aliases(
        [
            ("pepe", "ethereum", "0x6982508145454Ce325dDbE47a25d4ec3d2311933"),
            ("pepe", "bsc", "0x25d887Ce7a35172C62FeBFD67a1856F20FaEbB00"),
        ]
    )
    assert (
        base_token_key("bsc", "0x25d887ce7a35172c62febfd67a1856f20faebb00", aliases=aliases)
        == "pepe"
    )
    assert (
        base_token_key("evm", "0x6982508145454ce325ddbe47a25d4ec3d2311933", aliases=aliases)
        == "pepe"
    )
    assert base_token_key(
        "base", "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", aliases=aliases
    ).startswith("base:")


def test_conflicting_aliases_are_refused() -> None:
    with pytest.raises(ValueError, match="aliased to both"):
        build_aliases([("a", "base", "0x" + "1" * 40), ("b", "Base", "0x" + "1" * 40)])


def test_evm_chains_cover_every_evm_chain_extraction_detects() -> None:
    detected = {spec.name for spec in DEFAULT_CONFIG.all_chains if spec.name != SOLANA}
    assert detected <= EVM_CHAINS
    assert "evm" in EVM_CHAINS and SOLANA not in EVM_CHAINS


def test_every_alias_key_is_in_normal_form() -> None:
    for (chain, address), key in DEFAULT_ALIASES.items():
        assert normalise_address(chain, address) == (chain, address)
        assert key in {"usdc", "usdt", "dai", "eth", "btc", "sol", "bnb"}


@pytest.mark.fixtures
def test_curated_aliases_match_the_token_lists() -> None:
    """Every curated address is in the token list its comment names, with that symbol."""
    lists = shared_fixtures_dir() / "token_lists"
    uniswap = json.loads((lists / "uniswap-default.tokenlist.json").read_text())["tokens"]
    with gzip.open(lists / "solana.tokenlist.json.gz") as handle:
        solana = json.load(handle)["tokens"]
    entries = {("uniswap", t["chainId"], t["symbol"], t["address"]) for t in uniswap}
    entries |= {("solana", t["chainId"], t["symbol"], t["address"]) for t in solana}
    chain_ids = {
        "ethereum": 1,
        "optimism": 10,
        "bsc": 56,
        "polygon": 137,
        "base": 8453,
        "arbitrum": 42161,
        "avalanche": 43114,
        "solana": (501000101, 101),
    }
    for _key, chain, address, source in _CURATED:
        list_name, chain_id, symbol = source.split(" ")
        assert (list_name, int(chain_id), symbol, address) in entries, source
        expected = chain_ids[chain]
        assert int(chain_id) in (expected if isinstance(expected, tuple) else (expected,)), source


_HEX = st.text(alphabet="0123456789abcdefABCDEF", min_size=40, max_size=40)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(chain=st.sampled_from(sorted(EVM_CHAINS)), body=_HEX)
def test_evm_keys_ignore_case(chain: str, body: str) -> None:
    address = "0x" + body
    key = base_token_key(chain, address)
    assert (
        key
        == base_token_key(chain.upper(), address.lower())
        == base_token_key(chain, address.upper().replace("0X", "0x"))
    )
    assert key == key.lower()
