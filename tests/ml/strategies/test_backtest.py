"""The strategy backtest (pure): outcome clocks, taken trades, period returns, random entries, and the
walk-forward over a grid on the real 2024 Binance 5m candles."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from ml.evaluation.strategy import (
    DEFAULT_GRIDS,
    StrategyBacktestConfig,
    StrategyGrid,
    strategy_backtest,
)
from ml.marketdata.frames import CANDLE_SCHEMA, TS
from ml.strategies.backtest import (
    aggregate_candles,
    period_returns,
    period_starts,
    random_entry_signals,
    run_strategy,
    signal_outcomes,
    strategy_config,
    taken_trades,
)
from ml.strategies.bos import detect_bos
from tests.support.fixtures import shared_fixtures_dir

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def minute_walk(minutes: int, *, seed: int, symbol: str = "AAA/USDT") -> pl.DataFrame:
    """1m candles of a seeded random walk with occasional jumps and volume bursts (BOS triggers)."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0, 0.0015, minutes) + np.where(rng.random(minutes) < 0.01, 0.01, 0.0)
    close = 100 * np.exp(np.cumsum(steps))
    open_ = np.r_[100.0, close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.0005, minutes))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.0005, minutes))
    volume = rng.uniform(1, 2, minutes) * np.where(steps > 0.005, 4.0, 1.0)
    return pl.DataFrame({
        "exchange": "sim", "symbol": symbol, "timeframe": "1m",
        "ts": [T0 + timedelta(minutes=i) for i in range(minutes)],
        "open": open_, "high": high, "low": low, "close": close, "volume": volume,
    }).select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()])


def test_aggregate_builds_complete_buckets_only() -> None:
    minutes = minute_walk(30, seed=1).filter(pl.col("ts") != T0 + timedelta(minutes=17))  # bucket 15..29 lacks one
    built = aggregate_candles(minutes, "15m")
    assert built["ts"].to_list() == [T0]
    first = minutes.head(15)
    assert built.row(0, named=True) == {
        "exchange": "sim", "symbol": "AAA/USDT", "timeframe": "15m", "ts": T0, "open": first["open"][0],
        "high": first["high"].max(), "low": first["low"].min(), "close": first["close"][14],
        "volume": pytest.approx(first["volume"].sum())}
    with pytest.raises(ValueError, match="cannot be built from 1m"):
        aggregate_candles(minutes, "1m")


def test_outcomes_on_own_candles_equal_the_1m_outcomes_at_h_times_t_minutes() -> None:
    """Horizon h on 5m candles (scaled clock) = horizon 5h minutes on the 1m candles they are built from."""
    minutes = minute_walk(5 * 3000, seed=7)
    five = aggregate_candles(minutes, "5m")
    config = strategy_config("bos", {"event_filter_type": "BOTH", "bos_strength_threshold": 1.002,
                                     "min_volume_multiplier": 1.0}, timeframe="5m")
    signals = run_strategy("bos", config, five)
    assert len(signals) >= 10
    own, own_clock = signal_outcomes(signals, five)
    exact, exact_clock = signal_outcomes(signals, five, minute_candles=minutes)
    assert own_clock.scale_ms == 300_000 and exact_clock.scale_ms == 60_000
    columns = [f"return_{m}m" for m in (5, 10, 15, 25, 50, 75)]
    assert [c for c in own.columns if c.startswith("return_")] == columns
    assert own.select("entry_ts", *columns).equals(exact.select("entry_ts", *columns))
    assert (own["entry_ts"] == own["trigger_ts"] + timedelta(minutes=5)).all()  # next candle's open
    still_open = own.filter(pl.col("exit_reason") == "open")  # only where the data ends inside the trade
    assert (still_open["entry_ts"] > five["ts"].max() - timedelta(minutes=90)).all()  # type: ignore[operator]
    # a time exit after 90 minutes: the close of the 18th 5m candle = of the 90th minute
    timed = own.join(exact, on="signal_id").filter((pl.col("exit_reason") == "time")
                                                   & (pl.col("exit_reason_right") == "time"))
    assert timed.height and (timed["exit_close_ts"] == timed["entry_ts"] + timedelta(minutes=90)).all()
    assert (timed["pnl"] - timed["pnl_right"]).abs().max() < 1e-12  # type: ignore[operator]


def _outcome(signal_id: int, symbol: str, entry_min: int, exit_min: int | None, pnl: float | None) -> dict:
    entry = T0 + timedelta(minutes=entry_min)
    return {"signal_id": signal_id, "exchange": "sim", "symbol": symbol, "entry_ts": entry, "size": 0.5,
            "exit_close_ts": None if exit_min is None else T0 + timedelta(minutes=exit_min), "pnl": pnl}


def test_taken_trades_keep_one_open_position_per_market() -> None:
    outcomes = pl.DataFrame([
        _outcome(0, "A", 0, 30, 0.01),
        _outcome(1, "A", 10, 40, 0.02),   # A busy until 30: skipped
        _outcome(2, "B", 10, 20, -0.01),  # other market: taken
        _outcome(3, "A", 30, 60, 0.03),   # A free again at 30: taken
        _outcome(4, "B", 25, None, None),  # never closed: not taken, blocks nothing
        _outcome(5, "B", 26, 50, 0.04),
    ], schema_overrides={"entry_ts": TS, "exit_close_ts": TS})
    taken = taken_trades(outcomes)
    assert taken["signal_id"].to_list() == [2, 0, 5, 3]  # by exit time
    starts = period_starts(T0, T0 + timedelta(hours=1), timedelta(minutes=30))
    returns = period_returns(taken, starts, timedelta(minutes=30), markets=2)
    # period 0 (00:00-00:30): B -0.01; period 1: A 0.01 (exits 00:30) + B 0.04 + A 0.03 (exits 01:00 -> outside)
    np.testing.assert_allclose(returns, [0.5 * -0.01 / 2, 0.5 * (0.01 + 0.04) / 2])


def test_random_entries_keep_counts_distances_and_the_seed() -> None:
    five = aggregate_candles(minute_walk(5 * 3000, seed=7), "5m")
    config = strategy_config("bos", {"event_filter_type": "BOTH", "bos_strength_threshold": 1.002}, timeframe="5m")
    signals = run_strategy("bos", config, five)
    drawn = random_entry_signals(signals, five, seed=3)
    assert drawn == random_entry_signals(signals, five, seed=3) != random_entry_signals(signals, five, seed=4)
    count = lambda items: sorted((s.symbol, s.direction) for s in items)  # noqa: E731
    assert count(drawn) == count(signals)
    closes = dict(zip(five["ts"].to_list(), five["close"].to_list(), strict=True))
    for signal in drawn:
        assert signal.entry == closes[signal.trigger_ts]
        assert math.isclose(signal.stop / signal.entry, 1 - config.stoploss_pct, rel_tol=1e-12) or \
            math.isclose(signal.stop / signal.entry, 1 + config.stoploss_pct, rel_tol=1e-12)


def test_run_strategy_is_the_live_scan_and_names_bad_markets() -> None:
    five = aggregate_candles(minute_walk(5 * 2000, seed=2), "5m")
    config = strategy_config("bos", {"bos_strength_threshold": 1.002}, timeframe="5m")
    assert run_strategy("bos", config, five) == detect_bos(five, config)
    broken = five.with_columns(pl.when(pl.int_range(pl.len()) == 50).then(-1.0).otherwise(pl.col("close"))
                               .alias("close"))
    with pytest.raises(ValueError, match=r"sim AAA/USDT: bos: .*prices must be positive"):
        run_strategy("bos", config, broken)


@pytest.fixture(scope="module")
def real_5m() -> pl.DataFrame:
    folder = shared_fixtures_dir() / "binance_2024"
    frames = [pl.read_ipc(folder / f"{base}_USDT-5m.feather").filter(pl.col("date") < datetime(2024, 4, 1, tzinfo=UTC))
              .select(pl.lit("binance").alias("exchange"), pl.lit(f"{base}/USDT").alias("symbol"),
                      pl.lit("5m").alias("timeframe"), pl.col("date").alias("ts"), "open", "high", "low", "close",
                      "volume") for base in ("BTC", "ETH")]
    return pl.concat(frames).select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()])


def test_walk_forward_on_real_candles_picks_each_window_by_in_sample_sharpe(real_5m: pl.DataFrame) -> None:
    config = StrategyBacktestConfig(train_length=timedelta(days=28), test_length=timedelta(days=14))
    result = strategy_backtest("bos", real_5m, start=T0, end=datetime(2024, 4, 1, tzinfo=UTC), config=config,
                               grid=DEFAULT_GRIDS["bos"])
    report = result.to_dict()
    assert len(result.trials) == 9 and result.seed_trial == 4  # the seed is the grid's middle
    assert report["parameters"]["bos_strength_threshold"] == 1.006 and report["parameters"]["interval"] == "5m"
    assert [w["test_start"] for w in report["windows"]] == [
        (T0 + timedelta(days=28 + 14 * k)).isoformat() for k in range(4)]
    starts = period_starts(T0, datetime(2024, 4, 1, tzinfo=UTC), timedelta(days=1)).to_list()
    matrix = np.column_stack([t.returns for t in result.trials])
    for window in report["windows"]:
        train = [window["train_start"] <= s.isoformat() < window["train_end"] for s in starts]
        block = matrix[np.array(train)]
        spread = block.std(axis=0, ddof=1)
        sharpes = np.where(spread > 0, block.mean(axis=0) / np.where(spread > 0, spread, 1), 0.0)
        assert window["chosen_trial"] == int(np.argmax(sharpes))
    assert report["overall"]["periods"] == 4 * 14 == result.portfolio.height
    assert 0.0 <= report["selection"]["pbo"] <= 1.0 and report["grid"]["cscv_blocks"] == 16
    assert set(report["baselines"]) == {"buy_and_hold", "always_flat", "random_entries"}
    assert report["verdict"]["text"].startswith(("edge after fees", "no edge after fees"))
    trades = report["trades"]
    assert trades["signals"] == result.trials[4].signals == result.outcomes.height > 0
    assert sum(trades["exit_reasons"].values()) == trades["signals"]
    assert [h["minutes"] for h in report["horizons"]] == [5, 10, 15, 25, 50, 75]
    # period returns book each taken trade's size x pnl / markets in its exit period
    seed = result.trials[4]
    assert math.isclose(seed.returns.sum(), float((seed.taken["size"] * seed.taken["pnl"]).sum()) / 2, rel_tol=1e-9)


def test_a_grid_without_the_seed_adds_it_and_short_ranges_are_refused(real_5m: pl.DataFrame) -> None:
    grid = StrategyGrid((("bos_strength_threshold", ({"bos_strength_threshold": 1.01},)),))
    config = StrategyBacktestConfig(train_length=timedelta(days=28), test_length=timedelta(days=28))
    result = strategy_backtest("bos", real_5m, start=T0, end=datetime(2024, 3, 1, tzinfo=UTC), config=config,
                               grid=grid)
    assert [t.overrides for t in result.trials] == [{"bos_strength_threshold": 1.01}, {}] and result.seed_trial == 1
    with pytest.raises(ValueError, match="shorter than one window"):
        strategy_backtest("bos", real_5m, start=T0, end=datetime(2024, 1, 20, tzinfo=UTC), config=config)
