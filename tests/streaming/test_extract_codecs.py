"""Base58, Keccak-256 and EIP-55 against published vectors and round trips."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streaming.extract_codecs import (
    b58_decoded_length,
    b58decode,
    b58encode,
    has_valid_checksum,
    keccak256,
    to_checksum_address,
)
from streaming.extract_config import DEFAULT_EXCLUDED_EVM, DEFAULT_EXCLUDED_SOLANA

# Keccak-256 (original padding) digests, as used by Ethereum.
KECCAK_VECTORS = [
    (b"", "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"),
    (b"abc", "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"),
    (b"transfer(address,uint256)", "a9059cbb2ab09eb219583f4a59a5d0623ade346d962bcd4e46b11da047c9049b"),
]

# The test vectors of EIP-55 itself.
EIP55_VECTORS = [
    "0x52908400098527886E0F7030069857D2E4169EE7",
    "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
    "0xde709f2102306220921060314715629080e2fb77",
    "0x27b1fdb04752bbc536007a920d24acb045561c26",
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
]
EIP55_MIXED = EIP55_VECTORS[4:]


@pytest.mark.parametrize(("data", "digest"), KECCAK_VECTORS)
def test_keccak256_vectors(data: bytes, digest: str) -> None:
    assert keccak256(data).hex() == digest


def test_keccak256_is_not_sha3_256() -> None:
    assert keccak256(b"").hex() != hashlib.sha3_256(b"").hexdigest()


@pytest.mark.parametrize("length", [0, 1, 135, 136, 137, 271, 272, 273, 1000])
def test_keccak256_block_boundaries_are_stable(length: int) -> None:
    """Lengths around the 136-byte rate: 32-byte digest, and a changed byte changes it."""
    data = bytes(range(256)) * 4
    digest = keccak256(data[:length])
    assert len(digest) == 32
    if length:
        changed = data[: length - 1] + bytes([(data[length - 1] + 1) % 256])
        assert keccak256(changed) != digest


@pytest.mark.parametrize("address", EIP55_VECTORS)
def test_eip55_vectors_are_valid(address: str) -> None:
    assert has_valid_checksum(address)


@pytest.mark.parametrize("address", EIP55_MIXED)
def test_eip55_checksum_is_reproduced(address: str) -> None:
    assert to_checksum_address(address.lower()) == address
    assert to_checksum_address(address.upper().replace("0X", "0x")) == address


@pytest.mark.parametrize("address", EIP55_MIXED)
def test_any_single_case_flip_breaks_the_checksum(address: str) -> None:
    for index in range(2, 42):
        if address[index].isalpha():
            flipped = address[:index] + address[index].swapcase() + address[index + 1 :]
            body = flipped[2:]
            assert has_valid_checksum(flipped) == (body in (body.lower(), body.upper()))


@pytest.mark.parametrize(
    "text",
    ["", "0x", "0x123", "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0x" + "g" * 40, "0x" + "a" * 41],
)
def test_not_an_address(text: str) -> None:
    assert not has_valid_checksum(text)
    with pytest.raises(ValueError, match="0x"):
        to_checksum_address(text)


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("11111111111111111111111111111111", 32),
        ("So11111111111111111111111111111111111111112", 32),
        ("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", 25),  # legacy BTC: base58check, 25 bytes
        ("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", 25),  # TRON
        ("0OIl", -1),
        ("", 0),
    ],
)
def test_b58_decoded_length(text: str, length: int) -> None:
    assert b58_decoded_length(text) == length


def test_b58decode_rejects_foreign_characters() -> None:
    with pytest.raises(ValueError, match="base58"):
        b58decode("abc0")


@given(st.binary(max_size=80))
@settings(max_examples=200, deadline=None, derandomize=True)
def test_b58_round_trip(data: bytes) -> None:
    assert b58decode(b58encode(data)) == data


@pytest.mark.parametrize("address", DEFAULT_EXCLUDED_SOLANA)
def test_excluded_solana_ids_are_valid_keys(address: str) -> None:
    """Each exclusion is a real 32-byte key, so it is the exclusion that drops it."""
    assert b58_decoded_length(address) == 32


@pytest.mark.parametrize("address", DEFAULT_EXCLUDED_EVM)
def test_excluded_evm_addresses_are_well_formed(address: str) -> None:
    assert has_valid_checksum(address)
