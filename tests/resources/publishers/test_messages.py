"""Telegram HTML of market signals and funding alerts: every field shown, escaped, valid, in the limit.

Inputs are drawn as real :class:`MarketSignal` / :class:`FundingAlert` objects (their own checks
make every draw a valid signal) and rendered from ``to_record()``, the payload the live path
enqueues. Telegram's reading is the stand-in's independent port of its parser.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.strategies.funding import FundingAlert
from ml.strategies.signal import MarketSignal
from resources.publishers.messages import price, render_signal
from resources.publishers.render import (
    MESSAGE_LIMIT,
    utf16_length,
    validate_telegram_html,
    visible_text,
)
from tests.support.telegram_standin import parse_html

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)
_NAME = st.text(st.sampled_from([*"abcXYZ019_-/:", "<", ">", "&", '"', "'", "🚀", "ü", " "]), min_size=1, max_size=24)


@st.composite
def market_signals(draw: st.DrawFn) -> MarketSignal:
    direction = draw(st.sampled_from(["long", "short"]))
    sign = 1.0 if direction == "long" else -1.0
    entry = draw(st.floats(1e-6, 1e6, allow_nan=False))
    stop_pct = draw(st.floats(0.001, 0.5))
    steps = draw(st.lists(st.floats(0.001, 2.0), min_size=1, max_size=4))
    moves = [1 + sum(steps[: i + 1]) for i in range(len(steps))]  # nearest first, always positive prices
    targets = tuple(entry * m if direction == "long" else entry / m for m in moves)
    trigger = T0 + timedelta(minutes=draw(st.integers(0, 10**6)))
    return MarketSignal(
        strategy=draw(_NAME), exchange=draw(_NAME), symbol=draw(_NAME),
        timeframe=draw(st.sampled_from(["1m", "5m", "15m", "1h"])), direction=direction, trigger_ts=trigger,
        entry=entry, stop=entry * (1 - sign * stop_pct), targets=targets, confidence=draw(st.floats(0, 1)),
        risk_level=draw(st.sampled_from(["low", "medium", "high"])), size=draw(st.floats(0.01, 10)),
        expires_at=trigger + timedelta(minutes=draw(st.integers(1, 600))), factors={"note": draw(_NAME)},
    )


@settings(max_examples=200, deadline=None)
@given(signal=market_signals(), review=st.booleans())
def test_a_market_signal_shows_every_field(signal: MarketSignal, review: bool) -> None:
    record = signal.to_record()
    html = render_signal("market", record, confidence=signal.confidence, review=review)
    validate_telegram_html(html)
    shown = visible_text(html)
    assert parse_html(html)[0] == shown  # Telegram reads it as we do
    assert utf16_length(shown) <= MESSAGE_LIMIT and not shown.endswith("…")
    lines = shown.splitlines()
    assert lines[0] == ("Market signal (manual review)" if review else "Market signal")
    arrow, word = ("🟢", "LONG") if signal.direction == "long" else ("🔴", "SHORT")
    assert lines[1] == f"{arrow} {word} {signal.symbol} · {signal.exchange} · {signal.timeframe}"
    assert lines[2] == f"Entry {price(signal.entry)}"
    assert lines[3].startswith(f"Stop {price(signal.stop)} (")
    assert lines[4] == "Targets " + " · ".join(
        f"T{i} {price(t)} ({(t / signal.entry - 1) * 100:+.2f}%)" for i, t in enumerate(signal.targets, 1))
    assert lines[5] == (f"R:R {signal.risk_reward:.2f} · Confidence {signal.confidence:.0%} · "
                        f"Risk {signal.risk_level.upper()}")
    assert lines[6] == f"Size {signal.size:.0%} of the account · Strategy {signal.strategy}"
    assert lines[7] == (f"Trigger candle {signal.trigger_ts:%Y-%m-%d %H:%M} UTC · "
                        f"valid until {signal.expires_at:%Y-%m-%d %H:%M} UTC")
    # the stop is shown on the losing side of the entry, the targets on the winning side
    stop_move = float(lines[3].rsplit("(", 1)[1].rstrip("%)"))
    assert (stop_move <= 0) if signal.direction == "long" else (stop_move >= 0)


@st.composite
def funding_alerts(draw: st.DrawFn) -> FundingAlert:
    side = draw(st.sampled_from(["longs_pay", "shorts_pay"]))
    threshold = draw(st.floats(1e-5, 0.01))
    rate = threshold * draw(st.floats(1.0, 20.0)) * (1 if side == "longs_pay" else -1)
    ts = T0 + timedelta(hours=8 * draw(st.integers(0, 5000)))
    return FundingAlert(strategy="funding", exchange=draw(_NAME), symbol=draw(_NAME), ts=ts, side=side,
                        funding_rate=rate, threshold=threshold, annualised_pct=rate * 3 * 365 * 100,
                        next_funding_ts=draw(st.none() | st.just(ts + timedelta(hours=8))),
                        mark_price=draw(st.none() | st.floats(1e-6, 1e6)),
                        open_interest_value=draw(st.none() | st.floats(0, 1e11)))


@settings(max_examples=150, deadline=None)
@given(alert=funding_alerts())
def test_a_funding_alert_shows_every_field(alert: FundingAlert) -> None:
    html = render_signal("funding", alert.to_record(), confidence=0.5)
    validate_telegram_html(html)
    shown = visible_text(html)
    assert parse_html(html)[0] == shown
    lines = shown.splitlines()
    assert lines[0] == "Funding-rate alert"
    crowded = "Longs pay shorts (longs crowded)" if alert.side == "longs_pay" else "Shorts pay longs (shorts crowded)"
    assert lines[1] == f"{crowded} on {alert.symbol} · {alert.exchange}"
    assert lines[2] == (f"Funding {alert.funding_rate * 100:+.4f}% per interval ({alert.annualised_pct:+.1f}% a year)"
                        f" · threshold ±{alert.threshold * 100:.4f}%")
    mark = "n/a" if alert.mark_price is None else price(alert.mark_price)
    assert lines[3].startswith(f"Mark price {mark} · Open interest ")
    assert ("n/a" in lines[3]) == (alert.open_interest_value is None or alert.mark_price is None)
    following = "n/a" if alert.next_funding_ts is None else f"{alert.next_funding_ts:%Y-%m-%d %H:%M} UTC"
    assert lines[4] == f"Snapshot {alert.ts:%Y-%m-%d %H:%M} UTC · next funding {following}"


@settings(max_examples=300, deadline=None)
@given(value=st.floats(1e-9, 1e12))
def test_price_keeps_six_significant_digits_without_an_exponent(value: float) -> None:
    text = price(value)
    assert "e" not in text.lower()
    assert math.isclose(float(text.replace(",", "")), value, rel_tol=1e-5)


@pytest.mark.parametrize(
    ("value", "text"),
    [(65432.123, "65,432.1"), (1.5, "1.5"), (0.000012345678, "0.0000123457"), (100.0, "100"), (0, "0")],
)
def test_price_examples(value: float, text: str) -> None:
    assert price(value) == text


def test_a_long_symbol_is_cut_to_the_message_limit() -> None:
    signal = MarketSignal(strategy="bos", exchange="sim", symbol="X" * 5000, timeframe="1m", direction="long",
                          trigger_ts=T0, entry=100.0, stop=92.0, targets=(110.0,), confidence=0.7, risk_level="low",
                          size=0.5, expires_at=T0 + timedelta(minutes=90))
    html = render_signal("market", signal.to_record(), confidence=0.7)
    validate_telegram_html(html)
    shown = visible_text(html)
    assert utf16_length(shown) <= MESSAGE_LIMIT and shown.endswith("…")
    assert parse_html(html)[0] == shown


@pytest.mark.parametrize(
    ("kind", "change", "message"),
    [
        ("market", {"entry": None}, "lacks entry"),
        ("market", {"direction": "sideways"}, "direction must be long or short"),
        ("market", {"stop": -1.0}, "positive prices"),
        ("market", {"trigger_ts": "2024-05-01T12:00:00"}, "no timezone"),
        ("funding", {"side": "nobody_pays"}, "side must be longs_pay or shorts_pay"),
        ("funding", {"ts": None}, "lacks ts"),
        ("nonsense", {}, "no template for signal kind"),
    ],
)
def test_a_malformed_payload_is_a_clear_error(kind: str, change: dict, message: str) -> None:
    signal = MarketSignal(strategy="bos", exchange="sim", symbol="BTC/USDT", timeframe="1m", direction="long",
                          trigger_ts=T0, entry=100.0, stop=92.0, targets=(110.0,), confidence=0.7, risk_level="low",
                          size=0.5, expires_at=T0 + timedelta(minutes=90))
    alert = FundingAlert(strategy="funding", exchange="sim", symbol="BTC/USDT:USDT", ts=T0, side="longs_pay",
                         funding_rate=0.002, threshold=0.001, annualised_pct=219.0, next_funding_ts=None,
                         mark_price=None, open_interest_value=None)
    record = {**(alert.to_record() if kind == "funding" else signal.to_record()), **change}
    with pytest.raises(ValueError, match=message):
        render_signal(kind, record, confidence=0.7)
