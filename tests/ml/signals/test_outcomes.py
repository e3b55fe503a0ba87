"""Signal outcomes: hand-built 1m candles with known answers, the entry rule at minute boundaries,
missing candles, stop and target in one candle, costs, no look-ahead, many signals = one by one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from ml.evaluation.costs import DEFAULT_COSTS, NO_COSTS, TradingCosts
from ml.signals.outcomes import horizon_returns, trade_outcomes
from tests.support.builders import make_candles

T0 = datetime(2024, 3, 1, 12, tzinfo=UTC)
C = DEFAULT_COSTS.per_unit_traded  # 0.0015 per side
Bar = tuple[float, float, float, float]  # open, high, low, close


def candles(rows: list[Bar | None], symbol: str = "BTC/USDT", start: datetime = T0) -> pl.DataFrame:
    """One 1m candle per minute from ``start``; ``None`` leaves that minute out (a gap)."""
    kept = [(start + timedelta(minutes=i), r) for i, r in enumerate(rows) if r is not None]
    return pl.DataFrame({
        "exchange": "binance", "symbol": symbol, "timeframe": "1m",
        "ts": [t for t, _ in kept], "open": [r[0] for _, r in kept], "high": [r[1] for _, r in kept],
        "low": [r[2] for _, r in kept], "close": [r[3] for _, r in kept], "volume": 1.0,
    }).with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")))


def published(*rows: tuple[str, str, datetime], symbol: str = "BTC/USDT", exchange: str = "binance"
              ) -> pl.DataFrame:
    return pl.DataFrame({
        "signal_id": [r[0] for r in rows], "exchange": exchange, "symbol": symbol,
        "direction": [r[1] for r in rows], "published_at": [r[2] for r in rows],
    }).with_columns(pl.col("published_at").cast(pl.Datetime("us", "UTC")))


def net(direction: str, p0: float, p1: float, c: float = C) -> float:
    gross = p1 / p0 - 1 if direction == "long" else 1 - p1 / p0
    return gross - c * (1 + p1 / p0)


# Minute 0 opens at 100; closes 101, 102, ..., 115 at minutes 0..15.
RAMP: list[Bar | None] = [(100.0 + i, 100.0 + i + 1.5, 100.0 + i - 0.5, 101.0 + i) for i in range(16)]


@pytest.mark.parametrize("direction", ["long", "short"])
def test_horizon_returns_known_answers(direction: str) -> None:
    out = horizon_returns(published(("s1", direction, T0)), candles(RAMP))
    row = out.row(0, named=True)
    assert row["entry_ts"] == T0 and row["entry_price"] == 100.0
    for h in (1, 2, 3, 5, 10, 15):
        assert row[f"return_{h}m"] == pytest.approx(net(direction, 100.0, 100.0 + h)), h
    assert row["return_5m"] == pytest.approx(0.05 - C * 2.05 if direction == "long" else -0.05 - C * 2.05)


@pytest.mark.parametrize(("published_at", "entry_minute"), [
    (T0, 0),                                                   # exactly on the open: that candle
    (T0 + timedelta(microseconds=1), 1),                       # a hair later: the next one
    (T0 + timedelta(milliseconds=500), 1),                     # sub-millisecond precision kept
    (T0 + timedelta(seconds=59, microseconds=999_999), 1),
    (T0 + timedelta(minutes=1), 1),
])
def test_entry_is_the_first_candle_opening_at_or_after_publication(published_at: datetime,
                                                                   entry_minute: int) -> None:
    row = horizon_returns(published(("s", "long", published_at)), candles(RAMP)).row(0, named=True)
    assert row["entry_ts"] == T0 + timedelta(minutes=entry_minute)
    assert row["entry_price"] == 100.0 + entry_minute
    assert row["return_1m"] == pytest.approx(net("long", 100.0 + entry_minute, 101.0 + entry_minute))


def test_missing_candles_give_null_never_a_forward_fill() -> None:
    rows = list(RAMP)
    rows[4] = None  # the +5 exit candle is missing
    out = horizon_returns(published(("s", "long", T0)), candles(rows[:11])).row(0, named=True)
    assert out["return_5m"] is None  # a gap, not the close of minute 3
    assert out["return_3m"] == pytest.approx(net("long", 100.0, 103.0))
    assert out["return_10m"] == pytest.approx(net("long", 100.0, 110.0))
    assert out["return_15m"] is None  # not closed yet


def test_no_entry_candle_within_the_delay_gives_all_null() -> None:
    late = candles(RAMP, start=T0 + timedelta(minutes=6))
    row = horizon_returns(published(("s", "long", T0)), late).row(0, named=True)
    assert row["entry_ts"] is None and all(row[f"return_{h}m"] is None for h in (1, 2, 3, 5, 10, 15))
    row = horizon_returns(published(("s", "long", T0)), late, max_entry_delay=timedelta(minutes=6)).row(0, named=True)
    assert row["entry_ts"] == T0 + timedelta(minutes=6)


def test_costs_are_a_round_trip() -> None:
    flat = [(100.0, 100.5, 99.5, 100.0)] * 3
    out = horizon_returns(published(("a", "long", T0), ("b", "short", T0)), candles(flat), horizons=(3,))
    assert out["return_3m"].to_list() == pytest.approx([-2 * C, -2 * C])
    free = horizon_returns(published(("a", "long", T0)), candles(flat), horizons=(3,), costs=NO_COSTS)
    assert free["return_3m"][0] == 0.0
    dear = TradingCosts(fee_per_side=0.01, slippage=0.0)
    assert horizon_returns(published(("a", "long", T0)), candles(flat), horizons=(3,),
                           costs=dear)["return_3m"][0] == pytest.approx(-0.02)


def test_horizon_h_depends_only_on_candles_up_to_entry_plus_h_minus_1() -> None:
    base = make_candles(40, "1m", start=T0, seed=7)
    signal = published(("s", "short", T0 + timedelta(seconds=30)), exchange="sim")
    before = horizon_returns(signal, base).row(0, named=True)
    rng = np.random.default_rng(3)
    for h in (1, 2, 3, 5, 10, 15):
        cut = T0 + timedelta(minutes=1 + h - 1)  # entry is minute 1; exit candle opens at cut
        future = pl.col("ts") > cut
        altered = base.with_columns(
            *(pl.when(future).then(pl.col(c) * float(rng.uniform(0.5, 2.0))).otherwise(pl.col(c)).alias(c)
              for c in ("open", "high", "low", "close")))
        after = horizon_returns(signal, altered).row(0, named=True)
        assert after[f"return_{h}m"] == before[f"return_{h}m"], h
        assert after["return_15m"] != before["return_15m"] or h == 15


def test_many_signals_at_once_equal_one_by_one() -> None:
    market = pl.concat([make_candles(60, "1m", start=T0, symbols=(s,), seed=i)
                        for i, s in enumerate(("BTC/USDT", "ETH/USDT"))])
    rng = np.random.default_rng(11)
    rows = pl.DataFrame({
        "signal_id": [f"s{i}" for i in range(12)], "exchange": "sim",
        "symbol": rng.choice(["BTC/USDT", "ETH/USDT"], 12).tolist(),
        "direction": rng.choice(["long", "short"], 12).tolist(),
        "published_at": [T0 + timedelta(seconds=int(s)) for s in rng.integers(0, 3000, 12)],
    }).with_columns(pl.col("published_at").cast(pl.Datetime("us", "UTC")))
    # Levels around the last close before publication, 0.5 % to 5 % away, so all exits occur.
    width = pl.Series("width", rng.uniform(0.005, 0.05, 12))
    last = market.select("symbol", pl.col("ts").cast(pl.Datetime("us", "UTC")).alias("minute"), "close")
    sign = pl.when(pl.col("direction") == "long").then(1.0).otherwise(-1.0)
    levels = (rows.with_columns(width, minute=pl.col("published_at").dt.truncate("1m"))
              .join(last, on=["symbol", "minute"]).with_columns(
                  stop=pl.col("close") * (1 - sign * pl.col("width")),
                  target=pl.col("close") * (1 + sign * pl.col("width")))
              .drop("close", "minute", "width"))
    together = horizon_returns(rows, market)
    assert together["signal_id"].to_list() == rows["signal_id"].to_list()
    def own(frame: pl.DataFrame) -> pl.DataFrame:  # only the candles of that signal's market
        return market.filter(pl.col("symbol") == frame["symbol"][0])

    one_by_one = pl.concat([horizon_returns(rows[i:i + 1], own(rows[i:i + 1])) for i in range(rows.height)])
    assert together.equals(one_by_one)
    assert together["return_15m"].null_count() < rows.height
    trades = trade_outcomes(levels, market, trade_time=10)
    single = pl.concat([trade_outcomes(levels[i:i + 1], own(levels[i:i + 1]), trade_time=10)
                        for i in range(levels.height)])
    assert trades.equals(single)
    assert set(trades["exit_reason"]) == {"stop", "target", "time"}, trades["exit_reason"].to_list()


def trade(direction: str, stop: float, target: float, rows: list[Bar | None], trade_time: int = 5,
          costs: TradingCosts = DEFAULT_COSTS) -> dict:
    frame = published(("t", direction, T0)).with_columns(stop=pl.lit(stop), target=pl.lit(target))
    return trade_outcomes(frame, candles(rows), trade_time=trade_time, costs=costs).row(0, named=True)


QUIET: Bar = (100.0, 100.5, 99.5, 100.0)


@pytest.mark.parametrize(("direction", "stop", "target", "hit", "reason", "price"), [
    ("long", 98.0, 103.0, (100.0, 103.5, 99.8, 103.0), "target", 103.0),
    ("long", 98.0, 103.0, (100.0, 100.2, 97.0, 97.5), "stop", 98.0),
    ("long", 98.0, 103.0, (97.0, 97.2, 96.0, 96.5), "stop", 97.0),      # gapped through: the open
    ("short", 102.0, 97.0, (100.0, 100.2, 96.5, 97.0), "target", 97.0),
    ("short", 102.0, 97.0, (100.0, 102.5, 99.8, 102.2), "stop", 102.0),
    ("short", 102.0, 97.0, (103.0, 104.0, 102.5, 103.5), "stop", 103.0),  # gapped through: the open
    ("long", 98.0, 103.0, (100.0, 103.5, 97.5, 100.0), "stop", 98.0),     # both in one candle: stop
    ("short", 102.0, 97.0, (100.0, 102.5, 96.5, 100.0), "stop", 102.0),
])
def test_trade_exits_at_stop_or_target(direction: str, stop: float, target: float, hit: Bar,
                                       reason: str, price: float) -> None:
    out = trade(direction, stop, target, [QUIET, QUIET, hit, QUIET, QUIET, QUIET])
    assert (out["exit_reason"], out["exit_price"], out["exit_ts"]) == (reason, price, T0 + timedelta(minutes=2))
    assert out["pnl"] == pytest.approx(net(direction, 100.0, price))
    assert out["missing_candles"] == 0


def test_trade_ends_at_time_and_is_open_without_enough_candles() -> None:
    rows = [QUIET, QUIET, QUIET, QUIET, (100.0, 101.0, 99.0, 100.8), (100.8, 110.0, 90.0, 101.0)]
    out = trade("long", 98.0, 103.0, rows, trade_time=5)
    assert (out["exit_reason"], out["exit_price"], out["exit_ts"]) == ("time", 100.8, T0 + timedelta(minutes=4))
    assert out["pnl"] == pytest.approx(net("long", 100.0, 100.8))
    pending = trade("long", 98.0, 103.0, rows[:4], trade_time=5)
    assert pending["exit_reason"] == "open" and pending["pnl"] is None and pending["exit_price"] is None
    gap = trade("long", 98.0, 103.0, [QUIET, None, QUIET, QUIET, QUIET], trade_time=5)
    assert gap["exit_reason"] == "time" and gap["missing_candles"] == 1


def test_trade_costs_and_no_look_ahead_past_the_exit() -> None:
    rows = [QUIET, (100.0, 103.5, 99.8, 103.0), QUIET]
    free = trade("long", 98.0, 103.0, rows, costs=NO_COSTS)
    assert free["pnl"] == pytest.approx(0.03)
    assert trade("long", 98.0, 103.0, rows)["pnl"] == pytest.approx(0.03 - C * 2.03)
    crash = [QUIET, (100.0, 103.5, 99.8, 103.0), (103.0, 103.0, 50.0, 60.0)]
    assert trade("long", 98.0, 103.0, crash) == trade("long", 98.0, 103.0, rows)


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="direction"):
        horizon_returns(published(("s", "up", T0)), candles(RAMP))
    with pytest.raises(ValueError, match="duplicate signal_id"):
        horizon_returns(published(("s", "long", T0), ("s", "long", T0)), candles(RAMP))
    with pytest.raises(ValueError, match="other timeframes"):
        horizon_returns(published(("s", "long", T0)), candles(RAMP).with_columns(timeframe=pl.lit("5m")))
    with pytest.raises(ValueError, match="timezone-aware"):
        horizon_returns(published(("s", "long", T0)).with_columns(pl.col("published_at").dt.replace_time_zone(None)),
                        candles(RAMP))
    with pytest.raises(ValueError, match="beyond the stop"):
        trade("long", 103.0, 98.0, RAMP)


def test_a_trade_outcome_depends_only_on_candles_up_to_its_exit() -> None:
    market = make_candles(60, "1m", start=T0, seed=5)
    rng = np.random.default_rng(8)
    starts = [T0 + timedelta(minutes=int(m)) for m in rng.integers(0, 40, 10)]
    width = rng.uniform(0.005, 0.08, 10)
    frame = pl.DataFrame({
        "signal_id": [f"s{i}" for i in range(10)], "exchange": "sim", "symbol": "BTC/USDT",
        "direction": ["long", "short"] * 5, "published_at": starts,
    }).with_columns(pl.col("published_at").cast(pl.Datetime("us", "UTC")))
    entry = market.filter(pl.col("ts").is_in(starts)).select(pl.col("ts").alias("published_at"), "open")
    frame = frame.join(entry.with_columns(pl.col("published_at").cast(pl.Datetime("us", "UTC"))),
                       on="published_at", how="left", maintain_order="left")
    sign = np.where(frame["direction"].to_numpy() == "long", 1.0, -1.0)
    frame = frame.with_columns(stop=frame["open"] * (1 - sign * width),
                               target=frame["open"] * (1 + sign * width)).drop("open")
    before = trade_outcomes(frame, market, trade_time=15)
    assert set(before["exit_reason"]) == {"stop", "target", "time"}, before["exit_reason"].to_list()
    for row in before.iter_rows(named=True):
        altered = market.with_columns(
            *(pl.when(pl.col("ts") > row["exit_ts"]).then(pl.col(c) * 3.0).otherwise(pl.col(c)).alias(c)
              for c in ("open", "high", "low", "close")))
        after = trade_outcomes(frame.filter(pl.col("signal_id") == row["signal_id"]), altered, trade_time=15)
        assert after.row(0, named=True) == row
