"""Token extraction: table-driven cases for formats, chains, roles, exclusions and config."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from streaming.extract import (
    DEFAULT_CONFIG,
    ChainSpec,
    ExtractionConfig,
    TokenExtractor,
    TokenMention,
    extract_tokens,
)

# Real addresses (token_lists/address_ground_truth.csv and the DexScreener recordings).
PUMP = "GMpuhpZtgguWDJLqhYVS4epZGXjDRiboGSdzAqWupump"
USD1_SOL = "USD1ttGY1N17NEEHLmELoaybftRBUSErhqYiQzvEmuB"
MINT_2 = "8xEdEh9JaqXyCftRXJNQD4UjTwvBuBbeatXFZSQW55VL"
USD1_BSC = "0x8d0D000Ee44948FC98c9B98A4FA4921476f08B0d"
PING_BASE = "0xd85c31854c2B0Fb40aaA9E2Fc4Da23C21f829d46"
BASE_TOKEN = "0xaF2E4F3E10B8d06ecEcABBB7F8A7022c6EAb7B07"
BSC_PAIR = "0xB3F27Fe82Bd1e5D7458E02b543CF0C6610fFAD83"
DEPLOYER = "TSLvdd1pWpHVjahSpsvCXUbgwsL3JAcvokwaKt1eokM"
WALLET = "0xd8dA6BF26964aF9D7eEd9e03E53415D37aA96045"
TX_HASH = "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060"


def found(text: str, config: ExtractionConfig = DEFAULT_CONFIG) -> list[tuple[str, str]]:
    return [(mention.chain, mention.address) for mention in extract_tokens(text, config=config)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (PUMP, [("solana", PUMP)]),
        (f"CA: {USD1_SOL}", [("solana", USD1_SOL)]),
        (f"https://pump.fun/coin/{PUMP}", [("solana", PUMP)]),
        (f"https://t.me/BonkBot_bot?start=ref_tg1il_ca_{PUMP}", [("solana", PUMP)]),
        (f"**CA:** `{PUMP}`", [("solana", PUMP)]),
        (f"({PUMP}).", [("solana", PUMP)]),
        (f"合约：{PUMP}", [("solana", PUMP)]),
        (f"🚀{PUMP}🚀", [("solana", PUMP)]),
        (f"{PUMP[:10]}\u200b{PUMP[10:]}", [("solana", PUMP)]),
        (f"{USD1_BSC}", [("evm", USD1_BSC)]),
        (USD1_BSC.lower(), [("evm", USD1_BSC)]),
        ("0x" + USD1_BSC[2:].upper(), [("evm", USD1_BSC)]),
        (f"1) {PUMP}\n2) {MINT_2}", [("solana", PUMP), ("solana", MINT_2)]),
    ],
)
def test_valid_addresses_are_found(text: str, expected: list[tuple[str, str]]) -> None:
    assert found(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "gm, LONG #BTC/USDT entry 64000 targets 65000 66000",
        f"tx https://etherscan.io/tx/{TX_HASH}",
        TX_HASH,
        "0x" + "ab" * 19,  # 38 hex digits
        "0x" + "ab" * 21,  # 42 hex digits
        USD1_BSC[:10] + USD1_BSC[10].swapcase() + USD1_BSC[11:],  # broken checksum
        "0X" + USD1_BSC[2:],  # EIP-55 addresses start with a lower-case 0x
        USD1_BSC[2:],  # hex without 0x (commit hash, image id)
        "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa 3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
        "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
        "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t",
        "vitalik.eth",
        "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",
        "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA 11111111111111111111111111111111",
        "So11111111111111111111111111111111111111112",
        "0x0000000000000000000000000000000000000000",
        "0x000000000000000000000000000000000000dead",
        f"https://dexscreener.com/solana/{MINT_2.lower()}",  # case-damaged mint
        PUMP.upper().replace("I", "J").replace("O", "P"),  # shouted: no lower case left
        f"x{PUMP}",  # glued to a letter: not standing alone
        f"{PUMP}9",  # glued to a digit
        f"🛠️ Deployer (https://solscan.io/account/{DEPLOYER}) 0.0 SOL",
        f"Dev wallet: {WALLET}",
        f"Buyer: {WALLET}",
        f"src https://github.com/org/repo/blob/main/{PUMP}.json",
    ],
)
def test_non_tokens_are_not_found(text: str) -> None:
    assert found(text) == []


@pytest.mark.parametrize(
    ("text", "chain", "evidence"),
    [
        (f"https://dexscreener.com/base/{PING_BASE.lower()}", "base", "link:dexscreener.com"),
        (f"https://bscscan.com/token/{PING_BASE}", "bsc", "link:bscscan.com"),
        (f"https://basescan.org/address/{PING_BASE}", "base", "link:basescan.org"),
        (f"https://arbiscan.io/token/{PING_BASE}", "arbitrum", "link:arbiscan.io"),
        (f"https://polygonscan.com/token/{PING_BASE}", "polygon", "link:polygonscan.com"),
        (f"https://optimistic.etherscan.io/token/{PING_BASE}", "optimism", "link:optimistic.etherscan.io"),
        (f"https://etherscan.io/token/{PING_BASE}", "ethereum", "link:etherscan.io"),
        (f"https://snowtrace.io/token/{PING_BASE}", "avalanche", "link:snowtrace.io"),
        (f"https://www.dextools.io/app/en/ether/pair-explorer/{PING_BASE}", "ethereum", "link:dextools.io"),
        (f"https://www.geckoterminal.com/polygon_pos/pools/{PING_BASE}", "polygon", "link:geckoterminal.com"),
        (f"https://birdeye.so/token/{PING_BASE}?chain=base", "base", "link:birdeye.so"),
        (f"https://app.uniswap.org/swap?chain=arbitrum&outputCurrency={PING_BASE}", "arbitrum", "link:app.uniswap.org"),
        (f"https://bullx.io/terminal?chainId=8453&address={PING_BASE}", "base", "link:bullx.io"),
        (f"https://four.meme/token/{PING_BASE}", "bsc", "link:four.meme"),
        (f"https://pancakeswap.finance/swap?outputCurrency={PING_BASE}&chain=eth", "ethereum", "link:pancakeswap.finance"),
        (f"Base CA: {PING_BASE}", "base", "label:base"),
        (f"BSC: {PING_BASE}", "bsc", "label:bsc"),
        (f"#BSC gem {PING_BASE}", "bsc", "line word:#bsc"),
        (f"launched on Base 🔵 stealth {PING_BASE}", "base", "line word:on base"),
        (f"launched on Base 🔵 {PING_BASE}", "base", "label:base"),
        (f"BNB Chain\n\n{PING_BASE}", "bsc", "message word:bnb chain"),
        (f"ERC20 stealth {PING_BASE}", "ethereum", "line word:erc20"),
        (f"ERC20 {PING_BASE}", "ethereum", "label:ethereum"),
        (f"{PING_BASE} ETH gem", "ethereum", "message word:eth"),
        (f"#Base 🔵\nCA: {PING_BASE}\nLP 2 ETH, 3 ETH in fees, ETH ETH ETH", "base", "message word:#base"),
        (f"CA: {PING_BASE}\nchart https://dexscreener.com/bsc/{BSC_PAIR}", "bsc", "message link:dexscreener.com"),
        (f"{PING_BASE}", "evm", "default"),
    ],
)
def test_evm_chain_detection(text: str, chain: str, evidence: str) -> None:
    mention = extract_tokens(text)[0]
    assert (mention.address, mention.chain, mention.evidence) == (PING_BASE, chain, evidence)


def test_each_line_keeps_its_own_chain() -> None:
    text = f"BSC: {USD1_BSC}\nBase: {PING_BASE}\n#Base #Base"
    assert found(text) == [("bsc", USD1_BSC), ("base", PING_BASE)]


def test_a_solana_mint_ignores_evm_words() -> None:
    assert found(f"#BSC #ETH {PUMP} https://dexscreener.com/bsc/{BSC_PAIR}") == [
        ("solana", PUMP),
        ("bsc", BSC_PAIR),
    ]


def test_mentions_are_deduplicated_case_insensitively_for_evm() -> None:
    text = f"{BASE_TOKEN} again {BASE_TOKEN.lower()} and https://basescan.org/token/{BASE_TOKEN}"
    (mention,) = extract_tokens(text)
    assert mention.address == BASE_TOKEN  # EIP-55 display form
    assert mention.key == BASE_TOKEN.lower()
    assert (mention.chain, mention.occurrences, mention.start) == ("base", 3, 0)


def test_one_address_linked_on_two_chains_gives_one_mention_per_chain() -> None:
    text = f"https://dexscreener.com/base/{PING_BASE} https://dexscreener.com/ethereum/{PING_BASE}"
    assert found(text) == [("base", PING_BASE), ("ethereum", PING_BASE)]


def test_solana_mints_are_case_sensitive_identities() -> None:
    (mention,) = extract_tokens(f"{PUMP} {PUMP} {PUMP}")
    assert (mention.key, mention.occurrences, mention.evidence) == (PUMP, 3, "format")


def test_a_holder_filter_in_a_token_link_is_a_wallet() -> None:
    assert found(f"https://etherscan.io/token/{BASE_TOKEN}?a={WALLET}") == [("ethereum", BASE_TOKEN)]


def test_a_wallet_mentioned_as_a_token_elsewhere_is_kept() -> None:
    text = f"Deployer: {PUMP}\nCA: {PUMP}"
    assert found(text) == [("solana", PUMP)]


@pytest.mark.parametrize(
    ("text", "confidence", "role"),
    [
        (USD1_BSC, 0.5, "neutral"),
        (PUMP, 0.6, "neutral"),
        (f"CA: {PUMP}", 0.9, "token"),
        (f"#BSC {USD1_BSC}", 0.6, "neutral"),
        (f"https://dexscreener.com/solana/{PUMP} {PUMP}", 1.0, "token"),
    ],
)
def test_confidence_and_role(text: str, confidence: float, role: str) -> None:
    (mention,) = extract_tokens(text)
    assert (mention.confidence, mention.role) == (confidence, role)


def test_spans_point_at_the_first_occurrence() -> None:
    text = f"gm ☕ CA: {PUMP} ({PUMP})"
    (mention,) = extract_tokens(text)
    assert text[mention.start : mention.end] == PUMP


SONIC = ChainSpec(name="sonic", words=("sonic", "#s"), explorer_hosts=("sonicscan.org",),
                  slugs=("sonic",), chain_ids=(146,))


@pytest.mark.parametrize(
    ("text", "chain"),
    [
        (f"https://sonicscan.org/token/{PING_BASE}", "sonic"),
        (f"https://dexscreener.com/sonic/{PING_BASE}", "sonic"),
        (f"#S gem {PING_BASE}", "sonic"),
        (f"on Sonic: {PING_BASE}", "sonic"),
        (f"https://bullx.io/terminal?chainId=146&address={PING_BASE}", "sonic"),
        (f"S is for sure {PING_BASE}", "evm"),  # a bare "S" is no hashtag
    ],
)
def test_custom_evm_chain(text: str, chain: str) -> None:
    config = ExtractionConfig(extra_chains=(SONIC,))
    assert found(text, config) == [(chain, PING_BASE)]


@pytest.mark.parametrize(
    ("config", "text", "expected"),
    [
        (ExtractionConfig(default_evm_chain="ethereum"), PING_BASE, [("ethereum", PING_BASE)]),
        (ExtractionConfig(min_confidence=0.55), f"{PING_BASE} {PUMP}", [("solana", PUMP)]),
        (ExtractionConfig(excluded_solana=()), "So11111111111111111111111111111111111111112",
         [("solana", "So11111111111111111111111111111111111111112")]),
        (ExtractionConfig(excluded_evm=(PING_BASE.lower(),)), PING_BASE, []),
        (ExtractionConfig(wallet_labels=()), f"Dev wallet: {WALLET}", [("evm", WALLET)]),
        (ExtractionConfig(ignored_hosts=()), f"https://github.com/x/{PUMP}", [("solana", PUMP)]),
    ],
)
def test_config_options(config: ExtractionConfig, text: str, expected: list[tuple[str, str]]) -> None:
    assert found(text, config) == expected
    assert TokenExtractor(config).extract(text) == extract_tokens(text, config=config)


def test_config_is_frozen_hashable_and_strict() -> None:
    config = ExtractionConfig(extra_chains=(SONIC,))
    assert hash(config) == hash(ExtractionConfig(extra_chains=(SONIC,)))
    with pytest.raises(ValidationError):
        config.min_confidence = 0.5  # type: ignore[misc]
    with pytest.raises(ValidationError):
        ExtractionConfig(min_confidence=2.0)
    with pytest.raises(ValidationError):
        ChainSpec(name="Bad Name")
    with pytest.raises(ValidationError):
        ExtractionConfig(unknown_option=True)  # type: ignore[call-arg]


def test_mentions_are_frozen_values() -> None:
    (mention,) = extract_tokens(PUMP)
    assert isinstance(mention, TokenMention)
    assert mention == extract_tokens(PUMP)[0]
    with pytest.raises(AttributeError):
        mention.chain = "base"  # type: ignore[misc]
