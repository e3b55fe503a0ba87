"""A call on a DEX pair address (the extractor's ``kind == "pair"``) and its move to the token."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from ml.social.base_token import base_token_key
from ml.social.calls import calls_of
from ml.social.validation import is_pair_call, on_pair_token

PAIR = "0xB3F27Fe82Bd1e5D7458E02b543CF0C6610fFAD83"
TOKEN = "0x8d0D000Ee44948FC98c9B98A4FA4921476f08B0d"


@dataclass(frozen=True)
class Event:
    tokens: Sequence[Mapping[str, Any]]
    event_id: int = 1
    source: str = "replay"
    channel: str = "alpha"
    author: str | None = "a"
    text: str = ""
    ts: datetime = datetime(2025, 6, 1, tzinfo=UTC)


def one_call(token: Mapping[str, Any]):  # type: ignore[no-untyped-def]
    (call,) = calls_of([Event([token])], lambda _s, _c: (60.0, 1.0))
    return call


@pytest.mark.parametrize(
    ("token", "is_pair"),
    [
        ({"chain": "bsc", "address": PAIR, "kind": "pair"}, True),
        ({"chain": "bsc", "address": PAIR.lower(), "kind": "pair"}, True),
        ({"chain": "bsc", "address": PAIR, "kind": "token"}, False),
        ({"chain": "bsc", "address": PAIR}, False),  # stored before kinds existed: a token
    ],
)
def test_a_call_is_a_pair_call_only_when_the_extractor_said_so(token: dict[str, str], is_pair: bool) -> None:
    assert is_pair_call(one_call(token)) is is_pair


def test_a_resolved_pair_call_is_about_the_base_token() -> None:
    call = one_call({"chain": "bsc", "address": PAIR, "kind": "pair"})
    moved = on_pair_token(call, TOKEN)
    assert (moved.chain, moved.address, moved.base_token) == ("bsc", TOKEN, base_token_key("bsc", TOKEN))
    assert on_pair_token(call, None) == call  # unknown pair: the address may be the token itself
