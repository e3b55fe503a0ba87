"""Realistic calls end to end through the pure functions, as the validation op chains them.

Messages become Events (token extraction), mentions are keyed by base token, waves and spam are
assessed over the whole stream, context over the call's window, reputation from past outcomes
known before the window closed, and DexScreener snapshots at arrival and at window close give
the market factors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest

from ml.social import (
    CallFactors,
    CallOutcome,
    Mention,
    WaveMessage,
    base_token_key,
    coordinated_waves,
    mention_context,
    score_call,
    source_reputation,
    spam_assessment,
)
from resources.dexscreener import PairSnapshot
from resources.social_config import SpamConfig
from streaming.events import Event

from .builders import T0, at, make_evm, make_mint

WINDOW_S = 120.0
SPAM = SpamConfig()
GEM, RUG, SHILLED, AIRDROP = make_mint(11), make_evm(12), make_mint(13), make_mint(14)
CHANNEL_WEIGHTS = {"alpha": 1.0, "beta": 0.8, "gamma": 0.8, "delta": 0.6}
HISTORY = [  # alpha: a good record; beta: mostly losers; outcome ts = when it became known
    *(
        CallOutcome(T0 - timedelta(days=d), "alpha", r)
        for d, r in [
            (2, 45.0),
            (5, 12.0),
            (9, -8.0),
            (14, 30.0),
            (20, 80.0),
            (33, -15.0),
            (41, 22.0),
        ]
    ),
    *(
        CallOutcome(T0 - timedelta(days=d), "beta", r)
        for d, r in [(1, -40.0), (3, -12.0), (8, 5.0), (13, -60.0)]
    ),
    CallOutcome(T0 + timedelta(minutes=30), "alpha", -90.0),  # known only after the window: ignored
]


def snapshot(
    chain: str,
    address: str,
    *,
    price: float,
    liquidity: float | None,
    volume: float,
    created: datetime | None,
    at_s: float,
) -> PairSnapshot:
    return PairSnapshot(
        chain=chain,
        dex="raydium" if chain == "solana" else "uniswap",
        pair_address="pair-" + address[:8],
        base_address=address,
        base_name="T",
        base_symbol="T",
        quote_address="q",
        quote_symbol="SOL",
        pair_created_at=created,
        price_usd=price,
        liquidity_usd=liquidity,
        volume_24h_usd=volume,
        market_cap_usd=price * 1e9,
        fdv_usd=price * 1e9,
        price_change_5m=None,
        price_change_1h=None,
        price_change_24h=None,
        txns_24h_buys=None,
        txns_24h_sells=None,
        fetched_at=at(at_s),
    )


@dataclass(frozen=True)
class Scenario:
    call: tuple[str, float, str]  # channel, seconds, text
    others: list[tuple[str, float, str]]
    at_call: PairSnapshot | None
    at_close: PairSnapshot | None
    passed: bool
    rejections: tuple[str, ...] = ()
    notes: dict[str, object] = field(default_factory=dict)


GEM_TEXT = f"New call: $GEM on Solana\nCA: {GEM}\nLP burned, dev doxxed, chart https://dexscreener.com/solana/{GEM}"
SHILL_TEXT = "Stealth gem just launched, CA {ca}, LP locked and renounced, do not fade this one"
AIRDROP_TEXT = (
    "🚀🚀 FREE AIRDROP for early holders of {ca}!!!! claim now t.me/claimbot?start=ref{n} 🚀🚀"
)

SCENARIOS = {
    "good call with echoes passes": Scenario(
        call=("alpha", 0, GEM_TEXT),
        others=[
            ("beta", 40, f"aping {GEM} too, chart looks clean"),
            ("gamma", 75, f"{GEM} volume picking up, whales in"),
            ("delta", 100, f"CA {GEM} trending on dexscreener"),
        ],
        at_call=snapshot(
            "solana",
            GEM,
            price=0.0010,
            liquidity=110_000,
            volume=300_000,
            created=T0 - timedelta(hours=20),
            at_s=1,
        ),
        at_close=snapshot(
            "solana",
            GEM,
            price=0.00118,
            liquidity=140_000,
            volume=420_000,
            created=T0 - timedelta(hours=20),
            at_s=121,
        ),
        passed=True,
    ),
    "rug with falling price fails": Scenario(
        call=("beta", 0, f"Base gem just launched, send it https://dexscreener.com/base/{RUG}"),
        others=[("gamma", 50, f"careful with {RUG} on #base, dev wallet selling")],
        at_call=snapshot(
            "base",
            RUG,
            price=2e-6,
            liquidity=40_000,
            volume=90_000,
            created=T0 - timedelta(minutes=25),
            at_s=1,
        ),
        at_close=snapshot(
            "base",
            RUG,
            price=0.6e-6,
            liquidity=1_800,
            volume=95_000,
            created=T0 - timedelta(minutes=25),
            at_s=121,
        ),
        passed=False,
        rejections=("low_liquidity",),
    ),
    "coordinated shill wave fails even with a good chart": Scenario(
        call=("alpha", 0, SHILL_TEXT.format(ca=SHILLED)),
        others=[
            ("beta", 20, "🔥 " + SHILL_TEXT.format(ca=SHILLED)),
            ("gamma", 35, SHILL_TEXT.format(ca=SHILLED).upper()),
            ("delta", 50, SHILL_TEXT.format(ca=SHILLED) + " 🚀🚀"),
        ],
        at_call=snapshot(
            "solana",
            SHILLED,
            price=0.01,
            liquidity=200_000,
            volume=900_000,
            created=T0 - timedelta(days=3),
            at_s=1,
        ),
        at_close=snapshot(
            "solana",
            SHILLED,
            price=0.0125,
            liquidity=220_000,
            volume=1_000_000,
            created=T0 - timedelta(days=3),
            at_s=121,
        ),
        passed=False,
    ),
    "airdrop spam wave is rejected": Scenario(
        call=("gamma", 0, AIRDROP_TEXT.format(ca=AIRDROP, n=1)),
        others=[
            ("beta", 10, AIRDROP_TEXT.format(ca=AIRDROP, n=2)),
            ("delta", 30, AIRDROP_TEXT.format(ca=AIRDROP, n=3)),
        ],
        at_call=snapshot(
            "solana",
            AIRDROP,
            price=0.5,
            liquidity=60_000,
            volume=80_000,
            created=T0 - timedelta(hours=5),
            at_s=1,
        ),
        at_close=snapshot(
            "solana",
            AIRDROP,
            price=0.55,
            liquidity=60_000,
            volume=85_000,
            created=T0 - timedelta(hours=5),
            at_s=121,
        ),
        passed=False,
        rejections=("spam",),
    ),
    "token DexScreener does not list fails": Scenario(
        call=("alpha", 0, f"early: {make_mint(15)} launching in 10 min"),
        others=[],
        at_call=None,
        at_close=None,
        passed=False,
        rejections=("not_listed",),
    ),
}


def _event(index: int, channel: str, seconds: float, text: str) -> Event:
    return Event.from_message(
        source="replay",
        channel=channel,
        message_id=str(index),
        author="",
        text=text,
        ts=at(seconds),
    )


def validate(scenario: Scenario) -> tuple[CallFactors, object]:
    """What the validation op does for one call, once its window has closed."""
    events = [_event(i, *spec) for i, spec in enumerate([scenario.call, *scenario.others])]
    call_event = events[0]
    token = call_event.tokens[0]
    mentions = [
        Mention(e.message_id, e.channel, e.author, e.ts, base_token_key(t.chain, t.address))
        for e in events
        for t in e.tokens
    ]
    context = mention_context(mentions[0], mentions, window_s=WINDOW_S)
    waves = coordinated_waves(
        [WaveMessage(e.message_id, e.channel, e.ts, e.text) for e in events],
        window_s=SPAM.wave_window_s,
        min_channels=SPAM.wave_min_channels,
        similarity=SPAM.wave_similarity,
    )
    close_ts = call_event.ts + timedelta(seconds=WINDOW_S)
    reputation = source_reputation(HISTORY, channel=call_event.channel, as_of=close_ts)
    spam = spam_assessment(call_event.text, patterns=SPAM.patterns)
    first, last = scenario.at_call, scenario.at_close
    age = last.age(at=close_ts) if last else None
    factors = CallFactors(
        listed=last is not None,
        price_at_call=first.price_usd if first else None,
        price_at_close=last.price_usd if last else None,
        liquidity_usd=last.liquidity_usd if last else None,
        volume_24h_usd=last.volume_24h_usd if last else None,
        market_cap_usd=last.market_cap_usd if last else None,
        fdv_usd=last.fdv_usd if last else None,
        pair_age_h=None if age is None else age / 3600,
        channels=context.channels,
        authors=context.authors,
        mentions=context.mentions,
        channel_weight=CHANNEL_WEIGHTS[call_event.channel],
        reputation=reputation.score,
        spam_score=spam.score,
        wave_size=waves[call_event.message_id].size if call_event.message_id in waves else 0,
    )
    assert token.chain in ("solana", "base")
    return factors, score_call(factors)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(name: str) -> None:
    scenario = SCENARIOS[name]
    factors, result = validate(scenario)
    assert result.passed is scenario.passed, (factors, result)
    assert result.rejections == scenario.rejections, (factors, result)


def test_good_call_factors_are_what_a_reader_expects() -> None:
    factors, result = validate(SCENARIOS["good call with echoes passes"])
    assert factors.channels == 4 and factors.reaction_pct == pytest.approx(18.0)
    assert factors.reputation > 0.6 and factors.wave_size == 0 and factors.spam_score == 0.0
    assert result.score >= 0.6


def test_shill_wave_is_detected_and_penalised() -> None:
    factors, result = validate(SCENARIOS["coordinated shill wave fails even with a good chart"])
    assert factors.wave_size == 4 and factors.spam_score == 0.0
    assert result.raw_score >= 0.6 > result.score
