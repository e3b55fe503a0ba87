"""EMA-crossover scalper on seeded random markets: no look-ahead, many symbols at once equal one
by one, the cooldown."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from ml.strategies.ema_cross import EmaCrossConfig, detect_ema_cross
from ml.strategies.signal import MarketSignal, apply_cooldown
from tests.ml.strategies.ema_support import STEP, T0, random_market

SYMBOLS = [f"S{i}/USDT" for i in range(6)]
#: Every gate opened wide, so that a random market fires often (dozens of signals) and every code
#: path (both sides, capped and uncapped targets, 0-4 confirmations) runs under the test.
LOOSE = EmaCrossConfig(adx_min=0.0, volume_multiplier=0.5, rsi_long_min=50.0, rsi_short_max=50.0,
                       min_room_r=0.0, min_htf_confirmations=0, cooldown_minutes=0)


@pytest.fixture(scope="module")
def market() -> tuple[pl.DataFrame, pl.DataFrame]:
    return random_market(800, SYMBOLS, seed=3)


def alter_after(frame: pl.DataFrame, cut_close: object, step: timedelta, seed: int) -> pl.DataFrame:
    """Every candle closing after ``cut_close`` replaced by other valid prices and volumes (a
    seeded shock of up to +-20 %, volume x 0.1-10)."""
    rng = np.random.default_rng(seed)
    later = (pl.col("ts") + step) > cut_close
    price = pl.lit(rng.uniform(0.8, 1.2, frame.height))
    volume = pl.lit(rng.uniform(0.1, 10.0, frame.height))
    return frame.with_columns(
        *(pl.when(later).then(pl.col(c) * price).otherwise(pl.col(c)).alias(c) for c in ("open", "high", "low", "close")),
        pl.when(later).then(pl.col("volume") * volume).otherwise(pl.col("volume")).alias("volume"),
    )


def at_or_before(signals: list[MarketSignal], cut_close: object) -> list[MarketSignal]:
    return [s for s in signals if s.trigger_ts + STEP["15m"] <= cut_close]


@pytest.mark.parametrize("config", [LOOSE, EmaCrossConfig()], ids=["loose", "default"])
def test_no_look_ahead_changing_any_later_candle_changes_no_earlier_signal(
    market: tuple[pl.DataFrame, pl.DataFrame], config: EmaCrossConfig
) -> None:
    m15, h1 = market
    full = detect_ema_cross(m15, h1, config)
    rng = np.random.default_rng(11)
    checked = changed = 0
    for trial, k in enumerate(rng.integers(150, 780, 6)):
        cut_close = T0 + STEP["15m"] * (int(k) + 1)  # the close of 15m candle k
        a15 = alter_after(m15, cut_close, STEP["15m"], seed=trial)
        a1h = alter_after(h1, cut_close, STEP["1h"], seed=100 + trial)
        altered = detect_ema_cross(a15, a1h, config)
        assert at_or_before(altered, cut_close) == at_or_before(full, cut_close), f"cut after candle {k}"
        # dropping the later candles altogether changes nothing either
        kept = detect_ema_cross(m15.filter(pl.col("ts") + STEP["15m"] <= cut_close),
                                h1.filter(pl.col("ts") + STEP["1h"] <= cut_close), config)
        assert kept == at_or_before(full, cut_close), f"truncated after candle {k}"
        checked += len(at_or_before(full, cut_close))
        changed += altered != full
    assert changed > 0, "the alterations never changed a later signal: the test would prove nothing"
    if config is LOOSE:
        assert checked > 50, f"only {checked} signals before the cuts"
    else:
        assert checked > 0


def test_the_1h_candle_closing_with_the_trigger_is_used(market: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    """A trigger closing on the hour confirms on the 1h candle closing at that very moment: ten
    times its volume turns a failed 1h volume check into a passed one."""
    m15, h1 = market
    full = detect_ema_cross(m15, h1, LOOSE)
    warm = T0 + timedelta(hours=24)  # past the 1h volume average's 20-candle warm-up
    on_hour = [s for s in full if (s.trigger_ts + STEP["15m"]).minute == 0 and s.trigger_ts > warm
               and not s.factors["htf_volume"]]
    assert on_hour, "no trigger closing on the hour with a failed 1h volume check"
    signal = on_hour[0]
    hour_open = signal.trigger_ts + STEP["15m"] - STEP["1h"]
    pump = (pl.col("ts") == hour_open) & (pl.col("symbol") == signal.symbol)
    pumped = h1.with_columns(pl.when(pump).then(pl.col("volume") * 10).otherwise("volume").alias("volume"))
    (same,) = [s for s in detect_ema_cross(m15, pumped, LOOSE)
               if s.key == signal.key and s.trigger_ts == signal.trigger_ts]
    assert same.factors["htf_volume"] is True


#: Long level and swing windows: most signals then fall inside a window that would reach into the
#: previous symbol's rows if a window were not kept per symbol.
LONG_WINDOWS = LOOSE.model_copy(update={"sr_lookback": 300, "htf_structure_candles": 60})


@pytest.mark.parametrize("config", [LOOSE, LONG_WINDOWS], ids=["loose", "long-windows"])
def test_many_symbols_at_once_equal_one_by_one_in_any_row_order(
    market: tuple[pl.DataFrame, pl.DataFrame], config: EmaCrossConfig
) -> None:
    m15, h1 = market
    other15, other1h = random_market(400, ["S0/USDT", "X/USDT"], seed=5, exchange="okx")
    m15, h1 = pl.concat([m15, other15]), pl.concat([h1, other1h])
    together = detect_ema_cross(m15.sample(fraction=1.0, shuffle=True, seed=1), h1.reverse(), config)
    alone: list[MarketSignal] = []
    for (exchange, symbol), part in m15.group_by("exchange", "symbol"):
        mine = (pl.col("exchange") == exchange) & (pl.col("symbol") == symbol)
        alone += detect_ema_cross(part, h1.filter(mine), config)
    assert {s.exchange for s in together} == {"binance", "okx"}
    assert together == sorted(alone, key=lambda s: (s.trigger_ts, s.key))


def test_cooldown_keeps_one_signal_per_key_and_move(market: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    m15, h1 = market
    every = detect_ema_cross(m15, h1, LOOSE)
    hour = LOOSE.model_copy(update={"cooldown_minutes": 60})
    kept = detect_ema_cross(m15, h1, hour)
    assert kept == apply_cooldown(every, timedelta(minutes=60))
    assert len(kept) < len(every), "no two signals of one key within an hour: the cooldown went untested"
    last: dict[object, object] = {}
    for s in kept:
        assert s.key not in last or s.trigger_ts - last[s.key] >= timedelta(minutes=60)
        last[s.key] = s.trigger_ts
