"""EMA-crossover scalper on hand-built sequences with known answers (see ema_support)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
import pytest
import talib

from ml.strategies.ema_cross import EmaCrossConfig, detect_ema_cross, limit_targets, risk_level
from tests.ml.strategies.ema_support import CROSS, H1_USED, STEP, T0, candles_1h, candles_15m

CHECKS = ("htf_trend", "htf_volume", "htf_momentum", "htf_structure")


def flags(signal: object) -> dict[str, bool]:
    return {c: signal.factors[c] for c in CHECKS}  # type: ignore[attr-defined]


def test_long_cross_with_every_confirmation_fires_once_at_the_cross_with_talib_levels() -> None:
    m15 = candles_15m()
    signals = detect_ema_cross(m15, candles_1h())
    assert len(signals) == 1
    signal = signals[0]
    close, high, low = (m15.get_column(c).to_numpy() for c in ("close", "high", "low"))
    atr = talib.ATR(high, low, close, 14)[CROSS]
    fast, slow = talib.EMA(close, 9), talib.EMA(close, 21)
    assert fast[CROSS] > slow[CROSS] and fast[CROSS - 1] <= slow[CROSS - 1]
    assert (fast[:CROSS] <= slow[:CROSS])[~np.isnan(slow[:CROSS])].all()  # the first cross
    entry, r = close[CROSS], 1.5 * atr
    assert (signal.direction, signal.trigger_ts, signal.timeframe) == ("long", T0 + CROSS * STEP["15m"], "15m")
    assert signal.entry == entry and signal.stop == pytest.approx(entry - r, rel=1e-12)
    assert signal.targets == pytest.approx((entry + r, entry + 2 * r), rel=1e-12)
    assert signal.risk_reward == pytest.approx(1.0)
    assert signal.factors["resistance"] == pytest.approx(high[CROSS - 48:CROSS].max())
    assert signal.factors["rsi"] == pytest.approx(talib.RSI(close, 14)[CROSS], rel=1e-12)
    assert signal.factors["adx"] == pytest.approx(talib.ADX(high, low, close, 14)[CROSS], rel=1e-12)
    assert signal.factors["volume_ratio"] == pytest.approx(1.6)
    assert signal.factors["htf_confirmations"] == 4 and all(flags(signal).values())
    # ATR 0.63 % of the price (one point), 4 of 4 confirmations (none): medium
    assert signal.factors["atr_pct"] == pytest.approx(100 * atr / entry) and signal.risk_level == "medium"
    # 0.30 + 0.4 + 0.15 * min(1, (77.5 - 20) / 25) + 0.10 * min(1, 1.6 / 1.1 - 1)
    assert signal.confidence == pytest.approx(0.30 + 0.4 + 0.15 + 0.10 * (1.6 / 1.1 - 1), abs=1e-6)
    assert signal.size == 0.5 and signal.expires_at == signal.trigger_ts + timedelta(minutes=15 + 45)


def test_short_side_mirrors_the_long_side() -> None:
    signals = detect_ema_cross(candles_15m(mirror=True), candles_1h(mirror=True))
    assert [(s.direction, s.trigger_ts) for s in signals] == [("short", T0 + CROSS * STEP["15m"])]
    signal = signals[0]
    assert signal.stop > signal.entry > signal.targets[0] > signal.targets[1]
    assert signal.factors["htf_confirmations"] == 4 and all(flags(signal).values())
    assert signal.factors["support"] < signal.targets[-1]  # far below: no cap


@pytest.mark.parametrize("mirror", [False, True], ids=["long", "short"])
@pytest.mark.parametrize(("overrides", "rising_volume"), [
    ({}, 105.0),  # volume 105 / SMA20 below 1.10
    ({"rsi_long_min": 70.0, "rsi_short_max": 30.0}, 200.0),  # RSI 69 at the cross
    ({"adx_min": 80.0}, 200.0),  # ADX 77.5 at the cross
    ({"sr_lookback": 30}, 200.0),  # the 30 candles before: the level 0.35 R beyond the entry, no room
], ids=["volume", "rsi", "adx", "no-room"])
def test_each_missing_15m_confirmation_suppresses_the_signal(
    overrides: dict[str, float], rising_volume: float, mirror: bool
) -> None:
    m15, h1 = candles_15m(rising_volume=rising_volume, mirror=mirror), candles_1h(mirror=mirror)
    assert detect_ema_cross(m15, h1, EmaCrossConfig(**overrides)) == []
    assert len(detect_ema_cross(candles_15m(mirror=mirror), h1)) == 1  # the same data otherwise fires


@pytest.mark.parametrize("mirror", [False, True], ids=["long", "short"])
@pytest.mark.parametrize(("shape", "low_volume", "high_wick", "failing"), [
    ("all", False, False, set()),
    ("all", True, False, {"htf_volume"}),
    ("all", False, True, {"htf_structure"}),
    ("no_momentum", False, False, {"htf_momentum"}),
    ("no_trend", False, False, {"htf_trend"}),
    ("all", True, True, {"htf_volume", "htf_structure"}),
    ("no_trend", True, False, {"htf_trend", "htf_volume"}),
    ("no_momentum", True, False, {"htf_momentum", "htf_volume"}),
    ("no_trend", True, True, {"htf_trend", "htf_volume", "htf_structure"}),
    ("no_momentum", True, True, {"htf_momentum", "htf_volume", "htf_structure"}),
])
def test_each_missing_1h_check_lowers_the_count_and_two_of_four_decide(
    shape: str, low_volume: bool, high_wick: bool, failing: set[str], mirror: bool
) -> None:
    h1 = candles_1h(shape, low_volume=low_volume, high_wick=high_wick, mirror=mirror)
    signals = detect_ema_cross(candles_15m(mirror=mirror), h1)
    passed = 4 - len(failing)
    if passed < 2:
        assert signals == []
        loose = detect_ema_cross(candles_15m(mirror=mirror), h1, EmaCrossConfig(min_htf_confirmations=passed))
        assert [flags(s) for s in loose] == [{c: c not in failing for c in CHECKS}]
        return
    assert len(signals) == 1
    signal = signals[0]
    assert flags(signal) == {c: c not in failing for c in CHECKS}
    assert signal.factors["htf_confirmations"] == passed
    # ATR 0.63 %: one point; exactly the minimum of 2 confirmations: one more
    assert signal.risk_level == ("high" if passed == 2 else "medium")
    strict = detect_ema_cross(candles_15m(mirror=mirror), h1, EmaCrossConfig(min_htf_confirmations=passed + 1)) \
        if passed < 4 else signals
    assert (strict == []) == (passed < 4)


def test_a_1h_candle_counts_once_it_has_closed_by_the_trigger_close() -> None:
    """Trigger 16:00-16:15 confirms on the 1h candle 15:00-16:00. A 1h candle closing later
    (16:00-17:00) changes nothing; moving the 15m candles 15 min earlier (trigger closing at
    16:00 exactly) still uses 15:00-16:00, 30 min earlier (closing 15:45) uses 14:00-15:00."""
    h1 = candles_1h()
    spoiled = candles_1h(low_volume=True).with_columns(  # volume halves from H1_USED on ...
        pl.when(pl.int_range(pl.len()) == H1_USED).then(100.0).otherwise(pl.col("volume")).alias("volume"))
    m15 = candles_15m()
    assert detect_ema_cross(m15, spoiled) == detect_ema_cross(m15, h1)  # ... but only after it
    for shift, uses_spoiled in ((timedelta(minutes=15), True), (timedelta(minutes=30), False)):
        earlier = m15.with_columns(pl.col("ts") - shift)
        volume_flag = detect_ema_cross(earlier, candles_1h(low_volume=True))[0].factors["htf_volume"]
        assert volume_flag is (not uses_spoiled)


@pytest.mark.parametrize("mirror", [False, True], ids=["long", "short"])
def test_a_near_level_limits_the_targets(mirror: bool) -> None:
    m15, h1 = candles_15m(mirror=mirror), candles_1h(mirror=mirror)
    # 35 candles back, the level lies between 1 R and 2 R: it replaces the 2 R target
    (signal,) = detect_ema_cross(m15, h1, EmaCrossConfig(sr_lookback=35))
    level = signal.factors["support" if mirror else "resistance"]
    r = abs(signal.entry - signal.stop)
    assert 1.0 < abs(level - signal.entry) / r < 2.0
    assert signal.targets == pytest.approx((signal.entry + (r if not mirror else -r), level), rel=1e-12)
    # 30 candles back it lies 0.35 R away: suppressed unless no room is required, then the only target
    assert detect_ema_cross(m15, h1, EmaCrossConfig(sr_lookback=30)) == []
    (near,) = detect_ema_cross(m15, h1, EmaCrossConfig(sr_lookback=30, min_room_r=0.0))
    assert near.targets == (near.factors["support" if mirror else "resistance"],)
    assert 0.3 < near.risk_reward < 0.4


@pytest.mark.parametrize(("level", "expected"), [
    (None, (101.0, 102.0)),
    (99.0, (101.0, 102.0)),  # the level is behind the entry: no limit
    (103.0, (101.0, 102.0)),  # beyond the ladder
    (101.5, (101.0, 101.5)),  # inside: the level replaces the targets beyond it
    (102.0, (101.0, 102.0)),  # on the last target: kept once
    (101.0, (101.0,)),  # exactly 1 R away: the room is enough, the level is the only target
    (100.5, None),  # less than 1 R of room
])
def test_targets_are_limited_by_the_level(level: float | None, expected: tuple[float, ...] | None) -> None:
    assert limit_targets(100.0, 1.0, 1.0, level, EmaCrossConfig()) == expected
    mirrored = None if level is None else 200.0 - level
    short = limit_targets(100.0, 1.0, -1.0, mirrored, EmaCrossConfig())
    assert short == (None if expected is None else tuple(200.0 - t for t in expected))


@pytest.mark.parametrize(("atr_pct", "confirmations", "level"), [
    (0.3, 4, "low"), (0.3, 3, "low"), (0.3, 2, "medium"), (0.7, 3, "medium"), (0.7, 2, "high"),
    (1.2, 4, "high"), (1.2, 2, "high"), (0.5, 3, "medium"), (1.0, 3, "high"),
])
def test_risk_level_rule(atr_pct: float, confirmations: int, level: str) -> None:
    assert risk_level(atr_pct, confirmations, EmaCrossConfig()) == level


@pytest.mark.parametrize(("change", "message"), [
    (lambda f: f.with_columns(pl.when(pl.col("ts") == T0 + STEP["15m"] * 7).then(None)
                              .otherwise(pl.col("close")).alias("close")), "ETH/USDT candle at 2024-03-01 01:45.* null"),
    (lambda f: f.with_columns(pl.when(pl.col("ts") == T0).then(float("nan"))
                              .otherwise(pl.col("volume")).alias("volume")), "ETH/USDT candle at 2024-03-01 00:00.* non-finite"),
    (lambda f: f.with_columns(pl.when(pl.col("ts") == T0).then(0.5)
                              .otherwise(pl.col("high")).alias("high")), "ETH/USDT candle at 2024-03-01 00:00.* high/low"),
    (lambda f: pl.concat([f, f.tail(1)]), "ETH/USDT candle at 2024-03-01 19:45.* duplicated"),
    (lambda f: f.with_columns(pl.lit("5m").alias("timeframe")), "ETH/USDT candle .* not a 15m candle"),
])
def test_bad_candles_are_refused_naming_symbol_and_row(change: object, message: str) -> None:
    good = candles_15m()
    bad = change(candles_15m(symbol="ETH/USDT"))  # type: ignore[operator]
    with pytest.raises(ValueError, match=message):
        detect_ema_cross(pl.concat([good, bad], how="diagonal"), candles_1h())
    with pytest.raises(ValueError, match="1h candles: binance ETH/USDT"):
        detect_ema_cross(good, candles_1h(symbol="ETH/USDT").with_columns(pl.lit(-1.0).alias("low")))


def test_missing_columns_are_named() -> None:
    with pytest.raises(ValueError, match=r"15m candles lack columns \['volume'\]"):
        detect_ema_cross(candles_15m().drop("volume"), candles_1h())


def test_config_refuses_inconsistent_parameters() -> None:
    for bad in ({"fast_ema": 21, "slow_ema": 9}, {"target_r_multiples": (2.0, 1.0)},
                {"risk_atr_pct_medium": 2.0}, {"timeframe": "5m"}, {"unknown": 1}):
        with pytest.raises(ValueError):
            EmaCrossConfig(**bad)
    config = EmaCrossConfig()
    with pytest.raises(ValueError, match="frozen"):
        config.fast_ema = 5  # type: ignore[misc]
    assert config.indicator_params().ema_crosses == ((9, 21),)


def test_no_1h_candles_means_no_confirmation() -> None:
    m15 = candles_15m()
    assert detect_ema_cross(m15, candles_1h().clear()) == []
    fired = detect_ema_cross(m15, candles_1h().clear(), EmaCrossConfig(min_htf_confirmations=0))
    assert len(fired) == 1 and fired[0].factors["htf_confirmations"] == 0
    assert detect_ema_cross(m15.clear(), candles_1h()) == []


def test_a_missing_latest_1h_candle_is_not_replaced_by_an_older_one() -> None:
    h1 = candles_1h()
    gap = h1.filter(pl.col("ts") != h1["ts"][H1_USED])
    assert detect_ema_cross(candles_15m(), gap) == []  # 1h candle 54 closed an hour before: stale
    (signal,) = detect_ema_cross(candles_15m(), gap, EmaCrossConfig(min_htf_confirmations=0))
    assert signal.factors["htf_confirmations"] == 0
    # the trigger closing at 16:00 exactly: the missing 15:00-16:00 candle is due, 14:00-15:00 is stale
    on_hour = candles_15m().with_columns(pl.col("ts") - STEP["15m"])
    assert detect_ema_cross(on_hour, gap) == []
    assert len(detect_ema_cross(on_hour, h1)) == 1
