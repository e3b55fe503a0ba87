"""Coordinated waves: exact, order-independent, near-linear; checked against a naive O(n²) loop."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.social import waves as waves_module
from ml.social.waves import WaveInfo, WaveMessage, coordinated_waves, wave_shingles, wave_text

from .builders import at, make_evm, make_mint, random_text

SHILL = (
    "Stealth launch just now! CA {ca} LP locked, renounced, 100x easy, get in before CEX listing"
)


def naive_waves(
    messages: list[WaveMessage],
    *,
    window_s: float,
    min_channels: int,
    similarity: float,
    shingle_size: int = 5,
    min_chars: int = 16,
) -> dict[str, WaveInfo]:
    """The definition, literally: every pair compared, then connected components."""
    shingles = [
        wave_shingles(m.text, shingle_size=shingle_size, min_chars=min_chars) for m in messages
    ]
    n = len(messages)
    neighbours: dict[int, list[int]] = defaultdict(list)
    for i in range(n):
        for j in range(i + 1, n):
            a, b = shingles[i], shingles[j]
            if not a or not b:
                continue
            close = abs((messages[i].ts - messages[j].ts).total_seconds()) <= window_s
            if close and len(a & b) / len(a | b) >= similarity:
                neighbours[i].append(j)
                neighbours[j].append(i)
    seen: set[int] = set()
    out: dict[str, WaveInfo] = {}
    for start in range(n):
        if start in seen or not shingles[start]:
            continue
        component, stack = [], [start]
        seen.add(start)
        while stack:
            i = stack.pop()
            component.append(i)
            for j in neighbours[i]:
                if j not in seen:
                    seen.add(j)
                    stack.append(j)
        channels = len({messages[i].channel for i in component})
        if channels >= min_channels:
            first = min(component, key=lambda i: (messages[i].ts, messages[i].event_id))
            for i in component:
                out[messages[i].event_id] = WaveInfo(
                    messages[first].event_id, channels, len(component)
                )
    return out


def _wave(spec: list[tuple[str, float, str]]) -> list[WaveMessage]:
    return [
        WaveMessage(f"e{i}", channel, at(seconds), text)
        for i, (channel, seconds, text) in enumerate(spec)
    ]


CA = make_mint(7)
CASES = {
    "three channels, same shill": (
        [
            ("a", 0, SHILL.format(ca=CA)),
            ("b", 30, SHILL.format(ca=CA)),
            ("c", 60, SHILL.format(ca=CA)),
        ],
        {"e0": WaveInfo("e0", 3, 3), "e1": WaveInfo("e0", 3, 3), "e2": WaveInfo("e0", 3, 3)},
    ),
    "emoji, case, numbers and addresses do not hide a wave": (
        [
            ("a", 0, SHILL.format(ca=CA)),
            ("b", 10, "🚀 " + SHILL.format(ca=make_evm(1)).upper()),
            ("c", 20, SHILL.format(ca=CA).replace("100x", "1000x") + " 🔥🔥"),
        ],
        {"e0": WaveInfo("e0", 3, 3), "e1": WaveInfo("e0", 3, 3), "e2": WaveInfo("e0", 3, 3)},
    ),
    "two channels are not enough": (
        [
            ("a", 0, SHILL.format(ca=CA)),
            ("b", 30, SHILL.format(ca=CA)),
            ("a", 60, SHILL.format(ca=CA)),
        ],
        {},
    ),
    "too far apart in time": (
        [
            ("a", 0, SHILL.format(ca=CA)),
            ("b", 200, SHILL.format(ca=CA)),
            ("c", 400, SHILL.format(ca=CA)),
        ],
        {},
    ),
    "chained within the window": (
        [
            ("a", 0, SHILL.format(ca=CA)),
            ("b", 100, SHILL.format(ca=CA)),
            ("c", 200, SHILL.format(ca=CA)),
        ],
        {"e0": WaveInfo("e0", 3, 3), "e1": WaveInfo("e0", 3, 3), "e2": WaveInfo("e0", 3, 3)},
    ),
    "different texts about the same token are not a wave": (
        [
            ("a", 0, f"{CA} looks strong, chart is clean, dev active in tg"),
            ("b", 10, f"aping {CA} small bag, risky, nfa"),
            ("c", 20, f"whales loading {CA}? volume doubled in the last hour"),
        ],
        {},
    ),
    "address-only posts are too short to fingerprint": (
        [("a", 0, CA), ("b", 1, CA), ("c", 2, f"CA: {CA}")],
        {},
    ),
    "one wave, one bystander": (
        [
            ("a", 0, SHILL.format(ca=CA)),
            ("b", 5, SHILL.format(ca=CA)),
            ("c", 9, SHILL.format(ca=CA)),
            ("d", 10, "gm, market looks slow today, waiting for btc to move"),
        ],
        {"e0": WaveInfo("e0", 3, 3), "e1": WaveInfo("e0", 3, 3), "e2": WaveInfo("e0", 3, 3)},
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_wave_cases(name: str) -> None:
    spec, expected = CASES[name]
    messages = _wave(spec)
    kwargs = {"window_s": 120, "min_channels": 3, "similarity": 0.9}
    assert coordinated_waves(messages, **kwargs) == expected
    assert naive_waves(messages, **kwargs) == expected


def test_masked_text() -> None:
    text = "🚀 BUY https://dexscreener.com/solana/" + CA + "?ref=abc now, 2.5x in 10 min!!"
    assert wave_text(text) == "buy dexscreener com now #x in # min"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window_s": 120, "min_channels": 3, "similarity": 0.0}, "similarity"),
        ({"window_s": -1, "min_channels": 3, "similarity": 0.9}, "window_s"),
        ({"window_s": 120, "min_channels": 0, "similarity": 0.9}, "min_channels"),
    ],
)
def test_invalid_parameters(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        coordinated_waves([], **kwargs)


def test_duplicate_event_ids_are_refused() -> None:
    message = WaveMessage("x", "a", at(0), SHILL)
    with pytest.raises(ValueError, match="unique"):
        coordinated_waves([message, message], window_s=120, min_channels=3, similarity=0.9)


_TEMPLATES = [
    "stealth launch now lp locked renounced get in early before the cex listing",
    "huge news partnership announced tomorrow load up before the pump starts",
    "stealth launch now lp locked renounced get in early before the dex listing",
    "market update btc ranging eth weak alts bleeding stay safe",
]
_EDITS = ["", " 🚀", " now", " lfg", "!!", " 100x", " moon soon", " ser"]


@st.composite
def _messages(draw: st.DrawFn) -> list[WaveMessage]:
    n = draw(st.integers(0, 30))
    out = []
    for i in range(n):
        template = draw(st.sampled_from(_TEMPLATES))
        if draw(st.booleans()):
            template = template[: draw(st.integers(10, len(template)))]
        text = template + draw(st.sampled_from(_EDITS)) + draw(st.sampled_from(_EDITS))
        out.append(
            WaveMessage(
                f"m{i}",
                draw(st.sampled_from("abcde")),
                at(draw(st.integers(0, 900)) + draw(st.sampled_from([0, 1e-6, 0.5]))),
                text,
            )
        )
    return out


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    messages=_messages(),
    window_s=st.sampled_from([0.0, 30.0, 120.0, 300.0]),
    min_channels=st.integers(1, 4),
    similarity=st.sampled_from([0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0]),
    shingle_size=st.integers(2, 6),
    seed=st.integers(0, 10),
)
def test_waves_equal_the_naive_loop_in_any_order(
    messages: list[WaveMessage],
    window_s: float,
    min_channels: int,
    similarity: float,
    shingle_size: int,
    seed: int,
) -> None:
    kwargs = {
        "window_s": window_s,
        "min_channels": min_channels,
        "similarity": similarity,
        "shingle_size": shingle_size,
    }
    expected = naive_waves(messages, **kwargs)
    assert coordinated_waves(messages, **kwargs) == expected
    shuffled = list(messages)
    random.Random(seed).shuffle(shuffled)
    assert coordinated_waves(shuffled, **kwargs) == expected


def _big_stream(n: int, seed: int = 42) -> list[WaveMessage]:
    """``n`` messages over a day: 90 % unrelated chatter, 10 % shill campaigns with variants."""
    rng = random.Random(seed)
    campaigns = [random_text(rng, 14) for _ in range(n // 100)]
    out = []
    for i in range(n):
        ts = at(rng.uniform(0, 86_400))
        if rng.random() < 0.1:
            text = rng.choice(campaigns) + rng.choice(_EDITS) + f" {make_mint(rng.randint(0, 5))}"
        else:
            text = random_text(rng, rng.randint(4, 25))
        out.append(WaveMessage(f"m{i}", f"ch{rng.randint(0, 200)}", ts, text))
    return out


def _pairs_verified(messages: list[WaveMessage], monkeypatch: pytest.MonkeyPatch) -> int:
    """How many message pairs the join verifies (each a Jaccard computation) to find the waves."""
    calls = 0
    jaccard = waves_module._jaccard

    def counting(a: frozenset[int], b: frozenset[int]) -> float:
        nonlocal calls
        calls += 1
        return jaccard(a, b)

    monkeypatch.setattr(waves_module, "_jaccard", counting)
    waves = coordinated_waves(messages, window_s=3_600, min_channels=3, similarity=0.9)
    monkeypatch.setattr(waves_module, "_jaccard", jaccard)
    assert waves, "the campaigns should form waves"
    return calls


def test_thousands_of_messages_scale_linearly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counted, not timed: 4x the messages verifies far fewer than the 16x pairs of comparing
    every pair, and a small share of them; 3200 messages are 5 million pairs for the naive loop."""
    small = _pairs_verified(_big_stream(800), monkeypatch)
    large = _pairs_verified(_big_stream(3_200), monkeypatch)
    print(f"pairs verified: {small} for 800 messages, {large} for 3200")
    assert large < 0.01 * 3_200 * 3_199 / 2, f"{large} pairs verified for 3200 messages"
    assert large < 12 * max(small, 1), f"{small} -> {large} pairs verified for 4x the messages (16x: quadratic)"


@pytest.mark.slow
def test_big_stream_equals_naive_loop() -> None:
    messages = _big_stream(400, seed=7)
    kwargs = {"window_s": 7_200, "min_channels": 2, "similarity": 0.8}
    assert coordinated_waves(messages, **kwargs) == naive_waves(messages, **kwargs)
