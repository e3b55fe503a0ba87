"""The extraction benchmark's stream: every call shape yields its token on the right chain."""

from __future__ import annotations

import random

from benchmarks.extraction import EVM, SOLANA, _call, make_stream
from streaming.extract import extract_tokens


def test_every_call_shape_yields_its_token_on_its_chain() -> None:
    rng = random.Random(5)
    for kind in range(10):
        evm = EVM[kind % len(EVM)]
        mint = SOLANA[kind % len(SOLANA)]
        shaped = _shape(kind, rng, mint, evm)
        mentions = {(m.chain, m.key, m.kind) for m in extract_tokens(shaped)}
        expected = ("solana", mint, "token") if kind in (0, 1, 2, 6) else (evm[0], evm[1].lower(), "token")
        assert expected in mentions, (kind, shaped, mentions)


def _shape(kind: int, rng: random.Random, mint: str, evm: tuple[str, str]) -> str:
    """The call of shape ``kind`` (the generator draws the shape first, then the addresses)."""

    class Fixed(random.Random):
        def randrange(self, *args: int) -> int:  # type: ignore[override]
            return kind if args == (10,) else super().randrange(*args)

    return _call(Fixed(rng.random()), lambda: mint, lambda: evm)


def test_the_stream_is_seeded_and_mixed() -> None:
    stream = make_stream(2_000)
    assert stream == make_stream(2_000)
    with_tokens = sum(1 for text in stream if extract_tokens(text))
    assert 0.15 < with_tokens / len(stream) < 0.35
