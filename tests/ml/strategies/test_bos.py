"""Break of structure: hand-built candles with known answers, every filter, the cooldown, many
markets at once, no look-ahead on random frames, and a run on real Binance 5m candles."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from ml.marketdata.frames import CANDLE_SCHEMA, TS
from ml.strategies.bos import BosConfig, detect_bos
from ml.strategies.signal import MarketSignal
from tests.support.builders import make_candles
from tests.support.fixtures import shared_fixtures_dir

T0 = datetime(2024, 3, 1, 12, tzinfo=UTC)
Candle = tuple[float, float, float, float, float]  # open, high, low, close, volume

# Three quiet candles, a swing high at 101 (row 3), three lower candles confirming it (rows 4-6),
# then the break (row 7): strength 1.009, volume 1.95x the mean of rows 0-6, body 1.6 / 2.0 = 0.8,
# each half-way between its threshold and its saturation, so confidence = 0.45 + 0.5 * 0.35.
QUIET: Candle = (99.7, 100.0, 99.4, 99.8, 100.0)
SWING: Candle = (100.0, 101.0, 99.8, 100.4, 100.0)
CONFIRM: Candle = (100.2, 100.5, 99.9, 100.1, 100.0)
BREAK_CLOSE = 101 * 1.009
BREAK: Candle = (BREAK_CLOSE - 1.6, BREAK_CLOSE + 0.2, BREAK_CLOSE - 1.8, BREAK_CLOSE, 195.0)
AFTER: Candle = (BREAK_CLOSE, BREAK_CLOSE + 0.6, BREAK_CLOSE - 0.1, BREAK_CLOSE + 0.5, 250.0)
CLEAN_UP = [QUIET] * 3 + [SWING] + [CONFIRM] * 3 + [BREAK, AFTER]


def frame(rows: list[Candle], symbol: str = "BTC/USDT", timeframe: str = "1m", start: datetime = T0
          ) -> pl.DataFrame:
    step = {"1m": 1, "5m": 5}[timeframe]
    return pl.DataFrame(
        {"exchange": "binance", "symbol": symbol, "timeframe": timeframe,
         "ts": [start + timedelta(minutes=step * i) for i in range(len(rows))],
         **{name: [float(r[k]) for r in rows] for k, name in enumerate(("open", "high", "low", "close", "volume"))}},
    ).select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()])


def mirrored(rows: list[Candle]) -> list[Candle]:
    """Prices p -> 10000 / p: highs become lows, an up-break a down-break of the same strength."""
    return [(1e4 / o, 1e4 / lo, 1e4 / hi, 1e4 / c, v) for o, hi, lo, c, v in rows]


def test_a_clean_up_break_fires_once_at_the_break_candle() -> None:
    [signal] = detect_bos(frame(CLEAN_UP))
    assert (signal.strategy, signal.symbol, signal.direction, signal.timeframe) == ("bos", "BTC/USDT", "long", "1m")
    assert signal.trigger_ts == T0 + timedelta(minutes=7)
    assert signal.entry == pytest.approx(BREAK_CLOSE)
    assert signal.stop == pytest.approx(BREAK_CLOSE * 0.92)
    assert signal.targets == pytest.approx((BREAK_CLOSE * 1.08, BREAK_CLOSE * 1.16))
    assert signal.risk_reward == pytest.approx(1.0)
    assert signal.confidence == pytest.approx(0.45 + 0.5 * 0.35)
    assert signal.risk_level == "medium" and signal.size == pytest.approx(0.5)
    assert signal.expires_at == T0 + timedelta(minutes=8 + 90)  # trigger close + trade_time
    assert signal.factors == pytest.approx({"event": "BOS_UP", "swing_level": 101.0, "strength": 1.009,
                                            "volume_multiple": 1.95, "body_ratio": 0.8, "score": 0.5})


def test_confidence_grows_with_each_factor_and_stays_in_its_band() -> None:
    strong = list(CLEAN_UP)
    close = 101 * 1.02
    strong[7] = (close - 2.0, close, close - 2.0, close, 400.0)  # saturates strength, volume and body
    [top] = detect_bos(frame(strong))
    assert top.confidence == pytest.approx(0.80) and top.risk_level == "low"
    bigger_volume = list(CLEAN_UP)
    bigger_volume[7] = (*BREAK[:4], 220.0)
    [base], [more] = detect_bos(frame(CLEAN_UP)), detect_bos(frame(bigger_volume))
    assert 0.45 < base.confidence < more.confidence < 0.80
    bigger_volume[7] = (*BREAK[:4], 227.5)  # 2.275x: three quarters of the way to saturation
    [known] = detect_bos(frame(bigger_volume))
    assert known.confidence == pytest.approx(0.45 + 0.35 * (0.5 + 0.75 + 0.5) / 3)
    leveraged = detect_bos(frame(strong), BosConfig(leverage=3))
    assert leveraged[0].risk_level == "high" and leveraged[0].size == pytest.approx(1.5)


@pytest.mark.parametrize(("break_candle", "config", "why"), [
    ((99.9, 101.7, 99.7, 101.5, 195.0), BosConfig(), "weak strength: 101.5 / 101 < 1.006"),
    ((*BREAK[:4], 120.0), BosConfig(), "low volume: 1.2x < 1.3x"),
    ((BREAK[0], BREAK_CLOSE + 1.8, BREAK[2], BREAK_CLOSE, 195.0), BosConfig(), "small body: 1.6 / 3.6"),
    ((BREAK_CLOSE + 1.6, BREAK_CLOSE + 1.8, BREAK_CLOSE - 0.2, BREAK_CLOSE, 195.0), BosConfig(),
     "body against the break (a red candle)"),
    (BREAK, BosConfig(min_candles=9), "too little history: 8 candles < 9"),
    (BREAK, BosConfig(event_filter_type="BOS_DOWN"), "wrong direction filter"),
    (BREAK, BosConfig(bos_strength_threshold=1.01), "a stricter strength threshold"),
])
def test_each_failing_filter_suppresses_the_break(break_candle: Candle, config: BosConfig, why: str) -> None:
    rows = list(CLEAN_UP)
    rows[7] = break_candle
    assert detect_bos(frame(rows), config) == [], why
    assert detect_bos(frame(CLEAN_UP), config.model_copy(update={"event_filter_type": "BOTH", "min_candles": 8,
                                                                  "bos_strength_threshold": 1.006})), why


def test_a_level_breaks_once_and_an_unconfirmed_swing_is_not_used() -> None:
    weak_then_strong = [*CLEAN_UP[:7], (99.9, 101.7, 99.7, 101.5, 195.0), BREAK]
    assert detect_bos(frame(weak_then_strong)) == []  # the weak first close through 101 used the level up
    early = [*CLEAN_UP[:4], CONFIRM, CONFIRM, BREAK]  # row 3 is not confirmed before row 6 closes
    assert detect_bos(frame(early)) == []


def test_history_and_levels_are_counted_per_market() -> None:
    config = BosConfig(min_candles=9)
    earlier_market = frame([QUIET] * 20, symbol="AAA/USDT")
    assert detect_bos(pl.concat([earlier_market, frame(CLEAN_UP)]), config) == []  # BTC has 8 candles at the break
    assert len(detect_bos(pl.concat([earlier_market, frame([QUIET, *CLEAN_UP])]), config)) == 1


def test_bos_down_mirrors_bos_up() -> None:
    down_rows = mirrored(CLEAN_UP)
    assert detect_bos(frame(down_rows)) == []  # the default listens to BOS_UP only
    [short] = detect_bos(frame(down_rows), BosConfig(event_filter_type="BOS_DOWN"))
    entry = 1e4 / BREAK_CLOSE
    assert short.direction == "short" and short.trigger_ts == T0 + timedelta(minutes=7)
    assert short.entry == pytest.approx(entry) and short.stop == pytest.approx(entry * 1.08)
    assert short.targets == pytest.approx((entry * 0.92, entry * 0.84))
    assert short.factors["strength"] == pytest.approx(1.009) and short.factors["swing_level"] == pytest.approx(1e4 / 101)
    assert short.factors["event"] == "BOS_DOWN" and 0.45 <= short.confidence <= 0.80
    both = detect_bos(pl.concat([frame(CLEAN_UP), frame(down_rows, symbol="ETH/USDT")]),
                      BosConfig(event_filter_type="BOTH"))
    assert [(s.symbol, s.direction) for s in both] == [("BTC/USDT", "long"), ("ETH/USDT", "short")]


def staircase(breaks: int) -> list[Candle]:
    """A break every four candles: each break candle becomes the swing the next one breaks."""
    rows = [QUIET] * 3 + [SWING] + [CONFIRM] * 3
    level = SWING[1]
    for _ in range(breaks):
        close = level * 1.012
        rows.append((close - 1.6, close + 0.2, close - 1.8, close, 300.0))
        level = close + 0.2
        rows += [(level - 0.9, level - 0.5, level - 1.1, level - 0.7, 100.0)] * 3
    return rows


def test_the_cooldown_keeps_one_signal_per_move() -> None:
    rows = staircase(4)
    every = detect_bos(frame(rows))
    assert [s.trigger_ts for s in every] == [T0 + timedelta(minutes=m) for m in (7, 11, 15, 19)]
    spaced = detect_bos(frame(rows), BosConfig(min_event_interval_minutes=5))
    assert [s.trigger_ts for s in spaced] == [T0 + timedelta(minutes=m) for m in (7, 15)]
    other_symbol = detect_bos(pl.concat([frame(rows), frame(rows, symbol="ETH/USDT")]),
                              BosConfig(min_event_interval_minutes=5))
    assert Counter(s.symbol for s in other_symbol) == {"BTC/USDT": 2, "ETH/USDT": 2}  # per symbol


def random_candles(seed: int, symbols: int = 4, n: int = 300) -> pl.DataFrame:
    names = tuple(f"C{i}/USDT" for i in range(symbols))
    return make_candles(n, "1m", symbols=names, exchange="binance", seed=seed)


BOTH = BosConfig(event_filter_type="BOTH")


def test_many_symbols_at_once_equal_one_by_one() -> None:
    # markets at prices far apart, so a swing read across two markets' rows would show
    candles = random_candles(7, symbols=6).with_columns(
        pl.col(c) * 3.0 ** pl.col("symbol").str.slice(1, 1).cast(pl.Int64) for c in ("open", "high", "low", "close"))
    together = detect_bos(candles.sample(fraction=1.0, shuffle=True, seed=3), BOTH)
    alone = [s for symbol in candles.get_column("symbol").unique().sort()
             for s in detect_bos(candles.filter(pl.col("symbol") == symbol), BOTH)]
    assert len(together) >= 6, "the random frame should hold breaks"
    assert together == sorted(alone, key=lambda s: (s.trigger_ts, s.key))


def naive_breaks(candles: pl.DataFrame, config: BosConfig) -> dict[tuple[str, str, datetime], tuple[float, ...]]:
    """The module docstring's definitions as a per-row loop: (symbol, direction, ts) -> (swing
    level, strength, volume multiple, body ratio), before the cooldown."""
    lookback, found = config.lookback, {}
    for (symbol,), market in candles.sort("ts").group_by("symbol"):
        ts, o, h, lo, c, v = (market.get_column(n).to_list() for n in ("ts", "open", "high", "low", "close", "volume"))
        n = len(ts)
        for i in range(n):
            earlier = v[max(0, i - config.volume_window):i]
            multiple = v[i] / (sum(earlier) / len(earlier)) if earlier and sum(earlier) > 0 else 0.0
            body = (c[i] - o[i]) / (h[i] - lo[i]) if h[i] > lo[i] else 0.0
            for direction, price, sign in (("long", h, 1), ("short", lo, -1)):
                swings = [j for j in range(lookback, i - lookback + 1)
                          if all(sign * price[j] >= sign * price[k] for k in range(j - lookback, j + lookback + 1))]
                if not swings:
                    continue
                j = swings[-1]
                level = price[j]
                beyond = [sign * c[k] > sign * level for k in range(j + 1, i + 1)]
                strength = (c[i] / level) if sign > 0 else (level / c[i])
                if (beyond[-1] and not any(beyond[:-1]) and strength >= config.bos_strength_threshold
                        and multiple >= config.min_volume_multiplier and sign * body >= config.require_body_ratio
                        and sign * body > 0 and i + 1 >= config.min_candles):
                    found[symbol, direction, ts[i]] = (level, strength, multiple, sign * body)
    return found


@pytest.mark.parametrize("config", [
    BosConfig(event_filter_type="BOTH", min_event_interval_minutes=0),
    BosConfig(event_filter_type="BOTH", min_event_interval_minutes=0, lookback=1, volume_window=4,
              min_volume_multiplier=1.0, bos_strength_threshold=1.002),
    BosConfig(event_filter_type="BOTH", min_event_interval_minutes=0, lookback=5, min_candles=40,
              require_body_ratio=0.3, min_volume_multiplier=0.8),
])
def test_vectorised_rules_equal_a_per_row_loop(config: BosConfig) -> None:
    candles = random_candles(21, symbols=5)
    expected = naive_breaks(candles, config)
    got = {(s.symbol, s.direction, s.trigger_ts): tuple(s.factors[k] for k in
                                                        ("swing_level", "strength", "volume_multiple", "body_ratio"))
           for s in detect_bos(candles, config)}
    assert len(expected) >= 5 and {d for _, d, _ in expected} == {"long", "short"}
    assert got.keys() == expected.keys()
    assert all(got[k] == pytest.approx(expected[k], rel=1e-12) for k in expected)


def signals_until(signals: list[MarketSignal], t: datetime) -> list[MarketSignal]:
    return [s for s in signals if s.trigger_ts <= t]


def test_no_look_ahead_changing_the_future_changes_no_past_signal() -> None:
    rng = np.random.default_rng(11)
    checked = changed_future = 0
    for seed in range(20):
        candles = random_candles(seed, symbols=6)
        original = detect_bos(candles, BOTH)
        # a random cut, and a cut at a trigger candle (where a swing read too early would show)
        t = candles.get_column("ts").sort()[int(rng.integers(60, 290))]
        if original and seed % 2:
            t = original[int(rng.integers(len(original)))].trigger_ts
        future = pl.col("ts") > t
        factor = pl.lit(rng.uniform(0.9, 1.1, candles.height))
        altered = candles.with_columns(
            *(pl.when(future).then(pl.col(c) * factor).otherwise(pl.col(c)) for c in ("open", "close")),
            pl.when(future).then(pl.col("volume") * pl.lit(rng.uniform(0, 5, candles.height)))
            .otherwise(pl.col("volume")),
        ).with_columns(  # keep the altered candles valid
            pl.max_horizontal("open", "close", "high").alias("high"), pl.min_horizontal("open", "close", "low").alias("low"),
        )
        after_change = detect_bos(altered, BOTH)
        truncated = detect_bos(candles.filter(~future), BOTH)
        assert signals_until(after_change, t) == signals_until(original, t), f"seed {seed}, t {t}"
        assert truncated == signals_until(original, t), f"seed {seed}, t {t}"
        checked += len(signals_until(original, t))
        changed_future += original != after_change
    assert checked >= 20 and changed_future >= 15, (checked, changed_future)  # the check has teeth


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda f: f.drop("volume"), "lack the columns"),
    (lambda f: f.with_columns(pl.when(pl.col("ts") == T0).then(pl.lit("5m")).otherwise("timeframe")
                              .alias("timeframe")), "BTC/USDT row 0: timeframe '5m'"),
    (lambda f: pl.concat([f, f.slice(4, 1)]), "binance BTC/USDT row 4: duplicate candle at 2024-03-01 12:04"),
    (lambda f: f.with_columns(pl.when(pl.col("ts") == T0 + timedelta(minutes=2)).then(0.0).otherwise("low")
                              .alias("low")), "BTC/USDT row 2 .*prices must be positive"),
    (lambda f: f.with_columns(pl.when(pl.col("ts") == T0 + timedelta(minutes=5)).then(None).otherwise("close")
                              .alias("close")), "BTC/USDT row 5 .*prices must be positive"),
    (lambda f: f.with_columns(pl.col("ts").dt.replace_time_zone(None)), "timezone-aware"),
])
def test_bad_input_is_refused_naming_symbol_and_row(mutate: Callable[[pl.DataFrame], pl.DataFrame], message: str
                                                    ) -> None:
    with pytest.raises(ValueError, match=message):
        detect_bos(mutate(frame(CLEAN_UP)))


def test_config_refuses_inconsistent_values_and_keeps_the_seed_defaults() -> None:
    config = BosConfig()
    assert (config.interval, config.lookback, config.min_candles, config.event_filter_type) == ("1m", 3, 5, "BOS_UP")
    assert (config.trade_time, config.max_signal_age, config.min_event_interval_minutes) == (90, 60, 2)
    for bad in ({"interval": "7m"}, {"confidence_min": 0.9}, {"bos_strength_threshold": 1.0},
                {"target_r_multiples": (2.0, 1.0)}, {"allocation_pct": 1.0, "leverage": 11}):
        with pytest.raises(ValidationError):
            BosConfig(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        config.lookback = 5  # type: ignore[misc]
    assert detect_bos(pl.DataFrame(schema=CANDLE_SCHEMA)) == []


@pytest.fixture(scope="module")
def binance_5m() -> pl.DataFrame:
    folder = shared_fixtures_dir() / "binance_2024"
    frames = [
        pl.read_ipc(folder / f"{base}_USDT-5m.feather").select(
            pl.lit("binance").alias("exchange"), pl.lit(f"{base}/USDT").alias("symbol"),
            pl.lit("5m").alias("timeframe"), pl.col("date").cast(TS).alias("ts"),
            "open", "high", "low", "close", "volume")
        for base in ("BTC", "ETH", "SOL")
    ]
    return pl.concat(frames).select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()])


def test_real_binance_5m_candles_fire_a_plausible_number_of_signals(binance_5m: pl.DataFrame) -> None:
    # Jan-Sep 2024, ~72k candles per pair: a 0.6 % close through a 5m swing on 1.3x volume with a
    # 60 % body is a rare, sizeable move, seen a few times a week per pair, more often on SOL.
    config = BosConfig(interval="5m", event_filter_type="BOTH")
    signals = detect_bos(binance_5m, config)
    per_symbol = Counter((s.symbol, s.direction) for s in signals)
    assert 150 <= len(signals) <= 1500, per_symbol
    assert all(n >= 15 for n in per_symbol.values()) and len(per_symbol) == 6, per_symbol
    sol = per_symbol["SOL/USDT", "long"] + per_symbol["SOL/USDT", "short"]
    btc = per_symbol["BTC/USDT", "long"] + per_symbol["BTC/USDT", "short"]
    assert sol > btc, per_symbol
    for s in signals:
        assert s.factors["strength"] >= 1.006 and s.factors["volume_multiple"] >= 1.3
        assert s.factors["body_ratio"] >= 0.6 and 0.45 <= s.confidence <= 0.80
    closes = {(symbol, ts): close for symbol, ts, close in binance_5m.select("symbol", "ts", "close").iter_rows()}
    assert all(s.entry == closes[s.symbol, s.trigger_ts] for s in signals)
    assert Counter(s.risk_level for s in signals).keys() >= {"low", "medium"}
    alone = [s for symbol in ("BTC/USDT", "ETH/USDT", "SOL/USDT")
             for s in detect_bos(binance_5m.filter(pl.col("symbol") == symbol), config)]
    assert signals == sorted(alone, key=lambda s: (s.trigger_ts, s.key))
    # a live buffer starting mid-history finds, a day in, exactly what the full history finds
    cut = datetime(2024, 6, 1, tzinfo=UTC)
    buffer = detect_bos(binance_5m.filter(pl.col("ts") >= cut), config)
    settled = cut + timedelta(days=1)
    assert [s for s in buffer if s.trigger_ts >= settled] == [s for s in signals if s.trigger_ts >= settled]
