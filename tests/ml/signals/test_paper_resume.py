"""Resuming a paper account from its stored marks gives what one simulation over everything gives."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from ml.signals.paper import PaperConfig, PaperResult, simulate, state_after
from ml.strategies.signal import MarketSignal

MINUTE = timedelta(minutes=1)
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "DOGE/USDT", "UNI/USDT", "LINK/USDT")


def scenario(start: datetime, seed: int, minutes: int = 300, count: int = 60) -> tuple[list[MarketSignal], pl.DataFrame]:
    """Random-walk 1m candles of six markets and ``count`` signals with 1 % stops and 1.5 % targets."""
    rng = random.Random(seed)
    rows, closes = [], {}
    for symbol in SYMBOLS:
        price = 100.0
        closes[symbol] = []
        for i in range(minutes):
            close = price * (1 + rng.gauss(0, 0.004))
            rows.append({"exchange": "binance", "symbol": symbol, "ts": start + i * MINUTE, "open": price,
                         "high": max(price, close) * 1.003, "low": min(price, close) * 0.997, "close": close})
            closes[symbol].append(close)
            price = close
    signals = []
    for _ in range(count):
        symbol, minute = rng.choice(SYMBOLS), rng.randrange(minutes - 20)
        direction = rng.choice(("long", "short"))
        entry, sign = closes[symbol][minute], (1 if direction == "long" else -1)
        signals.append(MarketSignal(
            strategy="bos", exchange="binance", symbol=symbol, timeframe="1m", direction=direction,  # type: ignore[arg-type]
            trigger_ts=start + minute * MINUTE, entry=entry, stop=entry * (1 - sign * 0.01),
            targets=(entry * (1 + sign * 0.015),), confidence=0.6, risk_level="medium", size=0.4,
            expires_at=start + (minute + rng.randrange(5, 40)) * MINUTE))
    return signals, pl.DataFrame(rows, schema_overrides={"ts": pl.Datetime("us", "UTC")})


def without_repeats(equity: pl.DataFrame) -> pl.DataFrame:
    """Marks without those repeating the mark before them (what the warehouse stores)."""
    changed = pl.any_horizontal([pl.col(c) != pl.col(c).shift(1) for c in ("equity", "cash", "open_positions")])
    return equity.filter(changed.fill_null(True))


def flat_points(result: PaperResult) -> list[datetime]:
    """Mark times no trade spans (entry before, exit after)."""
    spans = list(result.trades.select("entry_ts", "exit_ts").iter_rows())
    return [ts for ts in result.equity["ts"].to_list() if not any(a < ts < b for a, b in spans)]


@pytest.mark.parametrize(("start", "seed", "config"), [
    # Crosses midnight with a tight daily limit: the day's halt and the next day's reset.
    (datetime(2024, 3, 1, 21, 0, tzinfo=UTC), 3, PaperConfig(max_open_positions=3, daily_loss_limit=0.01)),
    # A tight drawdown stop that ends all entries part-way through.
    (datetime(2024, 3, 1, 9, 0, tzinfo=UTC), 11, PaperConfig(max_open_positions=4, max_drawdown=0.02)),
])
def test_resuming_at_any_flat_point_equals_one_simulation(start: datetime, seed: int, config: PaperConfig) -> None:
    signals, candles = scenario(start, seed)
    whole = simulate(signals, candles, config)
    reasons = set(whole.rejections["reason"])
    assert reasons & {"daily_loss_limit", "drawdown_stop"}, reasons  # the state being carried matters
    points = flat_points(whole)
    assert len(points) > 20
    decided = {**{tuple(r[:5]): r[5] for r in whole.trades.select(
        "strategy", "exchange", "symbol", "direction", "trigger_ts", "entry_ts").iter_rows()},
               **{tuple(r[:5]): r[5] for r in whole.rejections.select(
                   "strategy", "exchange", "symbol", "direction", "trigger_ts", "decided_at").iter_rows()}}
    for at in points[:: max(1, len(points) // 25)]:
        later = [s for s in signals if decided[(s.strategy, s.exchange, s.symbol, s.direction, s.trigger_ts)] >= at]
        resumed = simulate(later, candles, config, resume=state_after(whole.equity, at, config))
        assert resumed.trades.equals(whole.trades.filter(pl.col("entry_ts") >= at)), at
        assert resumed.rejections.equals(whole.rejections.filter(pl.col("decided_at") >= at)), at
        expected = without_repeats(whole.equity).filter(pl.col("ts") > at)
        got = without_repeats(pl.concat([whole.equity.filter(pl.col("ts") <= at), resumed.equity]))
        assert got.filter(pl.col("ts") > at).equals(expected), at


def test_state_after_refuses_an_open_account() -> None:
    signals, candles = scenario(datetime(2024, 3, 1, 9, 0, tzinfo=UTC), 5)
    whole = simulate(signals, candles)
    busy = whole.equity.filter(pl.col("open_positions") > 0)["ts"][0]
    with pytest.raises(ValueError, match="open at"):
        state_after(whole.equity, busy)
