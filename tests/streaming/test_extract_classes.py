"""Token extraction, issue 12: one table per class of message, and property tests per class.

Classes: chain from DEX/launchpad names, other languages, structured fields and emoji columns,
two-chain sentences; wallets (labels in several languages, send-to phrases, holder lists,
buy-bot buyer lines on explorer ``/address/`` pages); Solana program ids; DEX pairs in chart
links (``kind="pair"``); percent-encoded addresses.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streaming.extract import DEFAULT_CONFIG, extract_tokens
from streaming.extract_codecs import b58_decoded_length
from streaming.extract_programs import SOLANA_PROGRAMS

# Real addresses (token_lists/address_ground_truth.csv and the DexScreener recordings).
PUMP = "GMpuhpZtgguWDJLqhYVS4epZGXjDRiboGSdzAqWupump"
MINT = "8xEdEh9JaqXyCftRXJNQD4UjTwvBuBbeatXFZSQW55VL"
TOKEN = "0xd85c31854c2B0Fb40aaA9E2Fc4Da23C21f829d46"  # PING on Base
OTHER = "0xaF2E4F3E10B8d06ecEcABBB7F8A7022c6EAb7B07"
SOL_PAIR = "BCDdHonby65iduz3Ev3c9v5XjNkzyu5e56KRFHpBM4T9"  # raydium USD1/USDC
BSC_PAIR = "0xB3F27Fe82Bd1e5D7458E02b543CF0C6610fFAD83"  # pancakeswap USD1/USDC
WALLET = "0xd8dA6BF26964aF9D7eEd9e03E53415D37aA96045"  # vitalik.eth
SOL_WALLET = "TSLvdd1pWpHVjahSpsvCXUbgwsL3JAcvokwaKt1eokM"  # a deployer (signals fixture)


def found(text: str) -> list[tuple[str, str, str]]:
    return [(m.chain, m.address, m.kind) for m in extract_tokens(text)]


def chain_of(text: str) -> str:
    (mention,) = [m for m in extract_tokens(text) if m.address == TOKEN]
    return mention.chain


# --- chain from context ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "chain"),
    [
        (f"Aerodrome pool live {TOKEN}", "base"),
        (f"{TOKEN} on BaseSwap", "base"),
        (f"Uniswap V2 stealth {TOKEN}", "ethereum"),
        (f"uniswap v3 {TOKEN}", "ethereum"),
        (f"Uniswap V3 #BSC {TOKEN}", "bsc"),  # any other hint beats Uniswap
        (f"Uniswap on Base {TOKEN}", "base"),
        (f"PancakeSwap {TOKEN}", "bsc"),
        (f"four.meme curve {TOKEN}", "bsc"),
        (f"clanker deploy {TOKEN}", "base"),
    ],
)
def test_chain_from_dex_and_launchpad_names(text: str, chain: str) -> None:
    assert chain_of(text) == chain


@pytest.mark.parametrize(
    ("text", "chain"),
    [
        (f"以太坊 新币 {TOKEN}", "ethereum"),
        (f"以太坊新币{TOKEN}刚上线", "ethereum"),  # no spaces: CJK words match inside the text
        (f"这是币安智能链上的新币 {TOKEN}", "bsc"),
        (f"币安智能链 合约：{TOKEN}", "bsc"),
        (f"Base链 {TOKEN}", "base"),
        (f"Токен на Эфириуме {TOKEN}", "ethereum"),
        (f"в сети BSC {TOKEN}", "bsc"),
        (f"en la red de Base {TOKEN}", "base"),
        (f"na rede Base {TOKEN}", "base"),
        (f"イーサリアム {TOKEN}", "ethereum"),
        (f"이더리움 {TOKEN}", "ethereum"),
    ],
)
def test_chain_from_other_languages(text: str, chain: str) -> None:
    assert chain_of(text) == chain


@pytest.mark.parametrize(
    ("text", "chain"),
    [
        (f'{{"ca": "{TOKEN}", "chain": "base"}}', "base"),
        (f'{{"network":"bsc","token":"{TOKEN.lower()}"}}', "bsc"),
        (f'{{"chainId": 8453, "address": "{TOKEN}"}}', "base"),
        (f"Chain: Base\nCA: {TOKEN}", "base"),
        (f"CA: {TOKEN}\nNetwork: BNB Chain", "bsc"),
        (f"chain=ethereum ca={TOKEN}", "ethereum"),
        (f"Сеть: BSC\n{TOKEN}", "bsc"),
        (f"链：Base\n{TOKEN}", "base"),
        (f"⛓️ Base\n📝 {TOKEN}", "base"),
        (f"⛓ Ethereum | 💊 {TOKEN}", "ethereum"),
        (f"Chain: Base | Dex: Uniswap | CA: {TOKEN}", "base"),
        (f"Chain: Base\nCA: {TOKEN}\nLP 3 ETH ETH ETH", "base"),
    ],
)
def test_chain_from_structured_fields_and_emoji_columns(text: str, chain: str) -> None:
    assert chain_of(text) == chain


@pytest.mark.parametrize(
    ("text", "chain"),
    [
        (f"gas on ETH is insane so we launched on Base {TOKEN}", "base"),
        (f"bridged from Ethereum, now live on Base {TOKEN}", "base"),
        (f"fees on ETH killed us, relaunched on BSC {TOKEN}", "bsc"),
        (f"cheaper than Ethereum, deployed on Base {TOKEN}", "base"),
        (f"moved from Base to BSC {TOKEN}", "bsc"),
        (f"launched on Ethereum, not on Base {TOKEN}", "ethereum"),
    ],
)
def test_of_two_chains_the_one_the_token_lives_on_wins(text: str, chain: str) -> None:
    assert chain_of(text) == chain


CHAIN_NAMES = {"ethereum": "Ethereum", "bsc": "BSC", "base": "Base", "arbitrum": "Arbitrum",
               "polygon": "Polygon", "avalanche": "Avalanche"}
chatter = st.sampled_from(("gm", "LFG 🚀", "MC 45k", "LP burned", "ETH", "nfa", "dev based", "#SOL"))


@given(st.sampled_from(sorted(CHAIN_NAMES)), st.lists(chatter, max_size=5), st.booleans())
@settings(max_examples=100, deadline=None, derandomize=True)
def test_a_chain_field_names_the_chain_whatever_the_chatter(chain: str, words: list[str], json_form: bool) -> None:
    field = f'"chain": "{chain}"' if json_form else f"Chain: {CHAIN_NAMES[chain]}"
    text = " ".join(words) + f"\n{field}\nCA: {TOKEN}\n" + " ".join(reversed(words))
    assert chain_of(text) == chain


@given(st.sampled_from(sorted(CHAIN_NAMES)), st.sampled_from(sorted(CHAIN_NAMES)),
       st.sampled_from(("gas on", "fees on", "bridged from", "cheaper than")),
       st.sampled_from(("launched on", "live on", "deployed on", "relaunched on")))
@settings(max_examples=100, deadline=None, derandomize=True)
def test_a_cost_or_origin_chain_never_beats_the_launch_chain(cost: str, home: str, cost_phrase: str,
                                                              home_phrase: str) -> None:
    text = f"{cost_phrase} {CHAIN_NAMES[cost]} lol, we {home_phrase} {CHAIN_NAMES[home]} {TOKEN}"
    assert chain_of(text) == home


# --- addresses that are not tokens --------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        f"Dev wallet: {WALLET}",
        f"dev address: {WALLET}",
        f"deployer address {SOL_WALLET}",
        f"Кошелек разработчика: {WALLET}",
        f"кошелёк: {WALLET}",
        f"开发者钱包：{SOL_WALLET}",
        f"钱包地址：{WALLET}",
        f"项目方钱包：{SOL_WALLET}",  # CJK labels match as the end of the word before
        f"转账到{WALLET}",
        f"Billetera del dev: {WALLET}",
        f"Carteira do dev: {SOL_WALLET}",
        f"Geliştirici cüzdanı: {WALLET}",
        f"Portefeuille du dev : {SOL_WALLET}",
        f"Presale wallet: {SOL_WALLET}",
        f"send 1-5 SOL to {SOL_WALLET} to join the presale",
        f"send 0.1 ETH to {WALLET} before 20:00",
        f"envía SOL a {SOL_WALLET}",
        f"Отправьте SOL на {SOL_WALLET}",
        f"发送到 {SOL_WALLET} 即可参与",
        f"Gửi 0.2 BNB đến {WALLET}",
        f"Top holders:\n1. {SOL_WALLET} 4.1%\n2. {WALLET} 3%",
        f"Держатели:\n{WALLET} — 5%",
        f"前十持有人：\n{SOL_WALLET}",
        f"smart money wallet: {WALLET}",
    ],
)
def test_wallets_labelled_as_wallets_are_not_tokens(text: str) -> None:
    assert found(text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"👤 https://basescan.org/address/{WALLET} | 🪙 https://basescan.org/token/{TOKEN}",
         [("base", TOKEN, "token")]),
        (f"Buyer (https://etherscan.io/address/{WALLET})\nCA: {TOKEN} #Base", [("base", TOKEN, "token")]),
        (f"new deploy https://basescan.org/address/{TOKEN}", [("base", TOKEN, "token")]),  # alone: the contract
        (f"verified https://etherscan.io/address/{TOKEN}#code https://etherscan.io/token/{OTHER}",
         [("ethereum", TOKEN, "token"), ("ethereum", OTHER, "token")]),
        (f"CA: {PUMP}\n\nTop holders:\n{SOL_WALLET} 12%", [("solana", PUMP, "token")]),
        (f"Holders 1.2k, CA below\n\n{PUMP}", [("solana", PUMP, "token")]),  # blank line ends a list
    ],
)
def test_buyer_lines_and_holder_lists_keep_only_the_token(text: str, expected: list[tuple[str, str, str]]) -> None:
    assert found(text) == expected


def test_the_program_table_is_sourced_and_every_entry_is_a_32_byte_key() -> None:
    ids = [program.address for program in SOLANA_PROGRAMS]
    assert len(ids) == len(set(ids)) >= 40
    assert all(b58_decoded_length(a) == 32 and program.source for a, program in zip(ids, SOLANA_PROGRAMS, strict=True))
    assert set(ids) <= set(DEFAULT_CONFIG.excluded_solana)
    names = " ".join(program.name for program in SOLANA_PROGRAMS)
    for needed in ("OpenBook", "Metaplex Core", "Raydium CPMM", "LaunchLab", "Meteora", "Moonshot"):
        assert needed in names


@given(st.sampled_from(SOLANA_PROGRAMS), st.sampled_from(("CA: ", "", "swap via ", "mint ", "🚀")),
       st.text(max_size=30))
@settings(max_examples=150, deadline=None, derandomize=True)
def test_no_program_id_is_ever_a_token(program: object, label: str, tail: str) -> None:
    address = program.address  # type: ignore[attr-defined]
    assert all(m.address != address for m in extract_tokens(f"{label}{address} {tail}"))


# --- pairs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"https://dexscreener.com/solana/{SOL_PAIR}", [("solana", SOL_PAIR, "pair")]),
        (f"https://www.geckoterminal.com/solana/pools/{SOL_PAIR}", [("solana", SOL_PAIR, "pair")]),
        (f"https://birdeye.so/pair/{SOL_PAIR}?chain=solana", [("solana", SOL_PAIR, "pair")]),
        (f"https://www.dextools.io/app/en/bnb/pair-explorer/{BSC_PAIR}", [("bsc", BSC_PAIR, "pair")]),
        (f"https://photon-sol.tinyastro.io/en/lp/{SOL_PAIR}", [("solana", SOL_PAIR, "pair")]),
        (f"CA: {TOKEN}\nhttps://dexscreener.com/base/{OTHER}", [("base", TOKEN, "token"), ("base", OTHER, "pair")]),
        (f"https://dexscreener.com/solana/{PUMP}", [("solana", PUMP, "token")]),  # pump.fun mint
        (f"{MINT} https://dexscreener.com/solana/{MINT}", [("solana", MINT, "token")]),  # pasted bare too
        (f"https://dexscreener.com/base/{TOKEN} CA: {TOKEN}", [("base", TOKEN, "token")]),
        (f"https://gmgn.ai/sol/token/{MINT}", [("solana", MINT, "token")]),
    ],
)
def test_pair_links_give_pairs(text: str, expected: list[tuple[str, str, str]]) -> None:
    assert found(text) == expected


# --- encoded text --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"https://x.com/search?q=%20{MINT}&src=typed_query", [("solana", MINT, "token")]),
        (f"https://x.com/search?q=%24TICK%20OR%20{PUMP}", [("solana", PUMP, "token")]),
        (f"https://google.com/search?q=ca%3A{MINT}", [("solana", MINT, "token")]),
        (f"https://t.me/share/url?url=https%3A%2F%2Fbasescan.org%2Ftoken%2F{TOKEN}", [("base", TOKEN, "token")]),
        (f"https://x.com/search?q=%22{TOKEN}%22", [("evm", TOKEN, "token")]),
        (f"100%{MINT}", [("solana", MINT, "token")]),  # no hex pair after %: left as it is
    ],
)
def test_percent_encoded_addresses_are_read_decoded(text: str, expected: list[tuple[str, str, str]]) -> None:
    assert found(text) == expected


# no letters around it: words could form a wallet label ("deposit address"), which is another rule
no_letters = st.text(st.characters(exclude_categories=("Lu", "Ll", "Lt", "Lm", "Lo", "Cs")), max_size=20)


@given(st.sampled_from((MINT, PUMP, TOKEN)), no_letters, no_letters)
@settings(max_examples=150, deadline=None, derandomize=True)
def test_an_address_survives_being_percent_encoded_with_its_surroundings(address: str, before: str,
                                                                         after: str) -> None:
    text = "https://x.com/search?q=" + quote(before + " " + address + " " + after, safe="")
    keys = {m.key for m in extract_tokens(text)}
    assert (address.lower() if address.startswith("0x") else address) in keys
