"""Spam score of one message."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.social.spam import SpamWeights, spam_assessment
from resources.social_config import SpamConfig

from .builders import make_evm, make_mint

PATTERNS = SpamConfig().patterns
MINT = make_mint(1)


@pytest.mark.parametrize(
    ("text", "reasons"),
    [
        (f"New gem on Solana, CA: {MINT}, dev doxxed, LP burned", ()),
        (f"{MINT}", ()),
        ("FREE AIRDROP for holders", ("pattern:" + PATTERNS[0],)),
        (
            "free\u200b airdrop: claim now, DM me",
            ("pattern:" + PATTERNS[0], "pattern:" + PATTERNS[1], "pattern:" + PATTERNS[4]),
        ),
        (
            "Send 0.5 SOL to get 2 back, guaranteed 10x",
            ("pattern:" + PATTERNS[2], "pattern:" + PATTERNS[3]),
        ),
        ("Trade it with my bot https://t.me/somebot?start=r-abc123", ("referral_link",)),
        ("sign up https://www.bybit.com/invite?ref=XYZ123 fast", ("referral_link",)),
        ("THIS IS GOING TO THE MOON TODAY BUY BUY BUY", ("caps",)),
        ("$PEPE $WIF $BONK and $POPCAT on Solana today", ()),  # tickers are not shouting
        ("a https://a.io b https://b.io c https://c.io d https://d.io", ("links",)),
        ("moon 🚀🚀🚀🚀🚀🚀🚀🚀", ("emoji",)),
        ("🚀🔥🚀🔥 go", ("emoji",)),
        ("gm 🚀 frens", ()),
        (" ".join(make_evm(i) for i in range(4)), ("address_list",)),
        ("join the alpha group t.me/+AbCdEf123", ("invite_link",)),
        ("we are live discord.gg/alpha", ("invite_link",)),
        ("LFG!!!!", ("punctuation",)),
        ("wait what?!", ()),
        ("https://reddit.com/r/solana is a forum", ()),
    ],
)
def test_spam_signals(text: str, reasons: tuple[str, ...]) -> None:
    result = spam_assessment(text, patterns=PATTERNS)
    assert result.reasons == reasons
    expected = 1.0
    weights = SpamWeights()
    for reason in reasons:
        expected *= 1.0 - getattr(weights, reason.split(":")[0])
    assert result.score == pytest.approx(1.0 - expected)


def test_one_pattern_stays_under_the_rejection_two_reach_it() -> None:
    assert spam_assessment("free airdrop", patterns=PATTERNS).score < 0.8
    assert spam_assessment("free airdrop, claim now", patterns=PATTERNS).score >= 0.8


def test_duplicate_patterns_count_once() -> None:
    assert spam_assessment("DM me", patterns=[r"(?i)\bdm\b", r"(?i)\bdm\b"]).score == pytest.approx(
        0.6
    )


def test_invalid_pattern_is_an_error() -> None:
    with pytest.raises(ValueError, match="invalid spam pattern"):
        spam_assessment("x", patterns=["(unclosed"])


_PIECES = st.sampled_from(
    [
        *"abcXYZ 019!?$#:/.",
        "🚀",
        "🔥",
        "free airdrop ",
        "https://x.io/?ref=1 ",
        "t.me/+a ",
        "DM me ",
        "MOON ",
    ]
)
_TEXTS = st.lists(_PIECES, max_size=40).map("".join)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(text=_TEXTS, extra=st.sampled_from(["free airdrop", "claim now", "DM me", "guaranteed 5x"]))
def test_score_in_unit_interval_and_more_patterns_never_lower_it(text: str, extra: str) -> None:
    base = spam_assessment(text, patterns=PATTERNS[:2])
    assert 0.0 <= base.score <= 1.0
    assert (base.score > 0.0) == bool(base.reasons)
    more = spam_assessment(text, patterns=PATTERNS)
    assert more.score >= base.score
    assert set(base.reasons) <= set(more.reasons)
    never = spam_assessment(text, patterns=(*PATTERNS, r"(?i)\bzzz_never\b"))
    assert never == more
    appended = spam_assessment(text + " . " + extra, patterns=PATTERNS)
    assert any(r.startswith("pattern:") for r in appended.reasons)
