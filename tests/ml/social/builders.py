"""Seeded builders for the social validation tests."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def at(seconds: float) -> datetime:
    """``T0`` plus ``seconds`` (aware UTC)."""
    return T0 + timedelta(seconds=seconds)


def make_mint(seed: int) -> str:
    """A valid-looking Solana mint: base58 of 32 bytes derived from ``seed``."""
    number = int.from_bytes(hashlib.sha256(f"mint{seed}".encode()).digest(), "big")
    chars = []
    while number:
        number, digit = divmod(number, 58)
        chars.append(_B58[digit])
    return "".join(reversed(chars))


def make_evm(seed: int) -> str:
    """A lower-case EVM address derived from ``seed``."""
    return "0x" + hashlib.sha256(f"evm{seed}".encode()).hexdigest()[:40]


def random_text(rng: random.Random, words: int = 12) -> str:
    """A seeded text of ``words`` random lower-case words."""
    return " ".join(
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))
        for _ in range(words)
    )
