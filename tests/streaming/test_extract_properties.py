"""Property tests: addresses survive any surroundings, noise never becomes a token, and the
extractor agrees with a naive split-and-check reference on random messages."""

from __future__ import annotations

import re

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from streaming.extract import DEFAULT_CONFIG, extract_tokens
from streaming.extract_codecs import BASE58_ALPHABET, b58decode, b58encode, to_checksum_address
from streaming.extract_rules import CJK_SEND, SEND_VERBS

# Real addresses (token_lists/address_ground_truth.csv).
REAL = (
    "GMpuhpZtgguWDJLqhYVS4epZGXjDRiboGSdzAqWupump",
    "USD1ttGY1N17NEEHLmELoaybftRBUSErhqYiQzvEmuB",
    "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
    "CfvFDmLP982VJZMf6NTF1RvzrnKsoSs5MposAUEFpump",
    "0x8d0D000Ee44948FC98c9B98A4FA4921476f08B0d",
    "0xd85c31854c2B0Fb40aaA9E2Fc4Da23C21f829d46",
    "0xaf2e4f3e10b8d06ececabbb7f8a7022c6eab7b07",
)
EXCLUDED_SOLANA = frozenset(DEFAULT_CONFIG.excluded_solana)
EXCLUDED_EVM = frozenset(address.lower() for address in DEFAULT_CONFIG.excluded_evm)
SEPARATORS = (" ", "\n", "\t", " \n ", ". ", ", ", "(", ")", "[", "]", "🚀", "：", "“", "”",
              "-", "_", "/", "=", "'", "`", "*", "|", "!", "?", ";", "💎\n", "、", "\u00a0")
HEX = "0123456789abcdefABCDEF"


WALLET_HINTS = (*DEFAULT_CONFIG.wallet_labels, *SEND_VERBS, *CJK_SEND, "holder", "держат", "холдер",
                "持", "钱包", "wallets", "insiders", "snipers", "bundler", "кошельки")


def wallet_hint(text: str) -> bool:
    lowered = text.lower()
    return any(hint in lowered for hint in WALLET_HINTS)


def key_of(address: str) -> str:
    return address.lower() if address.startswith("0x") else address


def keys(text: str) -> set[str]:
    return {mention.key for mention in extract_tokens(text)}


def mixed_case(text: str) -> bool:
    return text != text.lower() and text != text.upper()


solana_keys = st.binary(min_size=32, max_size=32).map(b58encode).filter(
    lambda m: mixed_case(m) and m not in EXCLUDED_SOLANA
)
evm_addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()).filter(
    lambda a: a not in EXCLUDED_EVM
)
addresses = st.one_of(
    st.sampled_from(REAL),
    solana_keys,
    evm_addresses.map(to_checksum_address),
    evm_addresses,
)
any_text = st.text(max_size=60)
separator = st.sampled_from(SEPARATORS)


@given(addresses, any_text, any_text, separator, separator)
@settings(max_examples=300, deadline=None, derandomize=True)
def test_an_address_survives_any_surrounding_text(
    address: str, prefix: str, suffix: str, left: str, right: str
) -> None:
    """Whatever stands around it, once a non-alphanumeric character separates it, unless the
    text before it says it is a wallet (a wallet label, a send verb, a holder-list header)."""
    assume(not wallet_hint(prefix + left))
    text = prefix + left + address + right + suffix
    assert key_of(address) in keys(text)


WORDS = ("gm", "ape", "LFG", "🚀🚀", "chart", "100x", "#BSC", "$SOL", "on Base", "Ethereum",
         "https://x.com/i/status/1986325936162160923", "MC 45k", "LP burned 🔥", "合约", "nfa")


@given(addresses, st.lists(st.sampled_from(WORDS), max_size=8), st.lists(separator, min_size=9, max_size=9))
@settings(max_examples=200, deadline=None, derandomize=True)
def test_an_address_survives_chatty_call_text(address: str, words: list[str], seps: list[str]) -> None:
    position = len(words) // 2
    pieces = [*words[:position], address, *words[position:]]
    text = "".join(piece + sep for piece, sep in zip(pieces, seps, strict=False))
    assert key_of(address) in keys(text)


@given(st.text(alphabet=BASE58_ALPHABET, min_size=1, max_size=100).filter(lambda s: not 32 <= len(s) <= 44))
@settings(max_examples=300, deadline=None, derandomize=True)
def test_base58_of_the_wrong_length_is_never_a_token(noise: str) -> None:
    assert extract_tokens(f"ca: {noise} !") == []


@given(st.text(alphabet=HEX, min_size=0, max_size=90).filter(lambda s: len(s) != 40))
@settings(max_examples=300, deadline=None, derandomize=True)
def test_hex_of_the_wrong_length_is_never_a_token(noise: str) -> None:
    assert extract_tokens(f"CA: 0x{noise} on #BSC") == []


@given(st.integers(min_value=1, max_value=96).filter(lambda n: n != 32).flatmap(
    lambda n: st.binary(min_size=n, max_size=n)))
@settings(max_examples=300, deadline=None, derandomize=True)
def test_base58_payloads_other_than_32_bytes_are_never_tokens(payload: bytes) -> None:
    """Signatures (64 bytes), base58check addresses (25 bytes) and the rest are dropped."""
    assert extract_tokens(f"sig {b58encode(payload)} done") == []


@given(solana_keys)
@settings(max_examples=200, deadline=None, derandomize=True)
def test_every_mixed_case_32_byte_key_is_found_as_written(mint: str) -> None:
    (mention,) = extract_tokens(f"CA: {mint}")
    assert (mention.chain, mention.address, mention.evidence) == ("solana", mint, "format")


@given(evm_addresses)
@settings(max_examples=100, deadline=None, derandomize=True)
def test_every_case_form_of_an_evm_address_is_one_token(lower: str) -> None:
    checksummed = to_checksum_address(lower)
    upper = "0x" + lower[2:].upper()
    (mention,) = extract_tokens(f"{lower} {checksummed} {upper}")
    assert (mention.address, mention.occurrences) == (checksummed, 3)


# --- agreement with a naive reference -------------------------------------------------------


def reference_keys(text: str) -> set[str]:
    """Split on anything but ASCII letters and digits, then check each piece on its own."""
    found = set()
    for piece in re.split(r"[^A-Za-z0-9]+", text):
        is_hex = piece.startswith("0x") and len(piece) == 42 and all(c in HEX for c in piece[2:])
        if is_hex:
            body = piece[2:]
            checksum_ok = body in (body.lower(), body.upper()) or to_checksum_address(piece) == piece
            if checksum_ok and piece.lower() not in EXCLUDED_EVM:
                found.add(piece.lower())
            continue
        is_base58 = 32 <= len(piece) <= 44 and all(c in BASE58_ALPHABET for c in piece)
        if is_base58 and mixed_case(piece) and piece not in EXCLUDED_SOLANA and len(b58decode(piece)) == 32:
            found.add(piece)
    return found


def broken_checksum(address: str) -> str:
    index = next((i for i in range(2, 42) if address[i].isalpha()), None)
    if index is None:
        return address
    return address[:index] + address[index].swapcase() + address[index + 1 :]


fragments = st.one_of(
    addresses,
    evm_addresses.map(to_checksum_address).map(broken_checksum),
    st.binary(min_size=64, max_size=64).map(b58encode),  # signatures
    st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex()),  # tx hashes
    st.sampled_from(("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t",
                     "So11111111111111111111111111111111111111112", "vitalik.eth", "gm", "🚀",
                     "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA", "0x000000000000000000000000000000000000dEaD")),
    st.text(alphabet=BASE58_ALPHABET + "0OIl", min_size=20, max_size=50),
)
neutral_separator = st.sampled_from((" ", "\n", ", ", " 🚀 ", " | ", "\t"))


@given(st.lists(st.tuples(fragments, neutral_separator), max_size=10))
@settings(max_examples=300, deadline=None, derandomize=True)
def test_extractor_agrees_with_the_naive_reference(parts: list[tuple[str, str]]) -> None:
    text = "".join(fragment + sep for fragment, sep in parts)
    assert keys(text) == reference_keys(text)


@given(st.lists(st.tuples(fragments, neutral_separator), max_size=6), st.sampled_from((" ", "  ", "\n\n")))
@settings(max_examples=100, deadline=None, derandomize=True)
def test_extraction_ignores_how_fragments_are_spaced(parts: list[tuple[str, str]], gap: str) -> None:
    tight = " ".join(fragment for fragment, _ in parts)
    loose = gap.join(fragment for fragment, _ in parts)
    assert keys(tight) == keys(loose)
