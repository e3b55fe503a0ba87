from datetime import UTC, datetime, timedelta

import pytest

from ml.strategies.signal import MarketSignal, apply_cooldown

T0 = datetime(2024, 3, 1, 12, tzinfo=UTC)


def signal(minutes: int = 0, direction: str = "long", symbol: str = "BTC/USDT", **overrides: object) -> MarketSignal:
    long = direction == "long"
    fields = dict(strategy="bos", exchange="binance", symbol=symbol, timeframe="1m", direction=direction,
                  trigger_ts=T0 + timedelta(minutes=minutes), entry=100.0, stop=92.0 if long else 108.0,
                  targets=(112.0, 120.0) if long else (88.0, 80.0), confidence=0.6, risk_level="medium", size=0.5,
                  expires_at=T0 + timedelta(minutes=minutes + 90), factors={"strength": 1.007})
    fields.update(overrides)
    return MarketSignal(**fields)  # type: ignore[arg-type]


def test_risk_reward_and_record() -> None:
    long, short = signal(), signal(direction="short")
    assert long.risk_reward == pytest.approx(12 / 8) and short.risk_reward == pytest.approx(12 / 8)
    record = long.to_record()
    assert record["trigger_ts"] == "2024-03-01T12:00:00+00:00" and record["targets"] == [112.0, 120.0]
    assert record["risk_reward"] == pytest.approx(1.5) and record["factors"] == {"strength": 1.007}


@pytest.mark.parametrize(("overrides", "message"), [
    ({"stop": 101.0}, "wrong side"),
    ({"targets": (99.0,)}, "beyond the entry"),
    ({"targets": (120.0, 112.0)}, "nearest first"),
    ({"targets": ()}, "at least one target"),
    ({"confidence": 1.2}, "confidence"),
    ({"direction": "up"}, "direction"),
    ({"risk_level": "extreme"}, "risk level"),
    ({"expires_at": T0}, "expires_at"),
    ({"trigger_ts": datetime(2024, 3, 1)}, "timezone-aware"),
])
def test_inconsistent_signals_are_refused_naming_the_signal(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message) as error:
        signal(**overrides)
    assert "bos BTC/USDT" in str(error.value)


def test_cooldown_keeps_one_signal_per_move_and_key() -> None:
    signals = [signal(0), signal(1), signal(2, direction="short"), signal(1, symbol="ETH/USDT"), signal(5), signal(7)]
    kept = apply_cooldown(reversed(signals), timedelta(minutes=5))
    assert [(s.symbol, s.direction, s.trigger_ts.minute) for s in kept] == [
        ("BTC/USDT", "long", 0), ("ETH/USDT", "long", 1), ("BTC/USDT", "short", 2), ("BTC/USDT", "long", 5)]
    with pytest.raises(ValueError, match="negative"):
        apply_cooldown(signals, timedelta(minutes=-1))
