"""scan_markets: windows scanned one after another keep what one scan of the history keeps;
one bad market is reported and changes nothing for the others; 1h candles completed from 1m."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from ml.marketdata.frames import CANDLE_SCHEMA
from ml.marketdata.resample import resample
from ml.strategies.bos import BosConfig
from ml.strategies.scan import closes_at, complete_hours, scan_markets
from tests.support.planted_candles import planted_candles

START = datetime(2024, 1, 1, tzinfo=UTC)
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
#: Loose thresholds and both directions, so a few hundred minutes hold many breaks; a cooldown long
#: enough that it drops some of them.
LOOSE = BosConfig(bos_strength_threshold=1.002, min_volume_multiplier=0.5, require_body_ratio=0.3,
                  event_filter_type="BOTH", min_event_interval_minutes=45, stoploss_pct=0.02)


def minutes(n: int, seed: int = 3) -> pl.DataFrame:
    """Seeded 1m candles (the planted generator's bars, one minute apart)."""
    frame = planted_candles(n, symbols=SYMBOLS, seed=seed, switch=0.05)
    return frame.with_columns(pl.lit("1m").alias("timeframe"),
                              (pl.lit(START) + pl.duration(minutes=pl.int_range(pl.len()).over("symbol")))
                              .cast(CANDLE_SCHEMA["ts"]).alias("ts"))


EMPTY = pl.DataFrame(schema=CANDLE_SCHEMA)


def test_consecutive_windows_keep_what_one_scan_of_the_history_keeps() -> None:
    candles = minutes(600)
    whole = scan_markets(candles_1m=candles, candles_15m=EMPTY, candles_1h=EMPTY, bos=LOOSE)
    assert len(whole.signals) >= 10
    unlimited = scan_markets(candles_1m=candles, candles_15m=EMPTY, candles_1h=EMPTY,
                             bos=LOOSE.model_copy(update={"min_event_interval_minutes": 0}))
    assert len(unlimited.signals) > len(whole.signals)  # the cooldown bites, so the seeding matters
    kept: list = []
    since: dict = {}
    for end in range(120, 601, 37):  # windows of 37 minutes after a first one of 2 hours
        now = START + timedelta(minutes=end)
        buffer = candles.filter(pl.col("ts") < now)
        step = scan_markets(candles_1m=buffer, candles_15m=EMPTY, candles_1h=EMPTY, bos=LOOSE, since=since,
                            kept=[((*s.key,), s.trigger_ts) for s in kept])
        assert all(closes_at(s) <= now for s in step.signals)
        assert all(closes_at(s) > since.get((s.exchange, s.symbol), START) for s in step.signals)
        kept += step.signals
        since = {("sim", symbol): now for symbol in SYMBOLS}
    last = START + timedelta(minutes=max(range(120, 601, 37)))
    assert kept == [s for s in whole.signals if closes_at(s) <= last]


def test_a_bad_market_is_reported_and_the_others_get_what_they_get_alone() -> None:
    candles = minutes(400)
    bad = candles.with_columns(pl.when((pl.col("symbol") == "ETH/USDT") & (pl.col("ts") == START + timedelta(minutes=50)))
                               .then(0.0).otherwise(pl.col("close")).alias("close"))
    result = scan_markets(candles_1m=bad, candles_15m=EMPTY, candles_1h=EMPTY, bos=LOOSE)
    assert list(result.errors) == ["sim ETH/USDT"]
    assert "prices must be positive" in result.errors["sim ETH/USDT"]
    for symbol in ("BTC/USDT", "SOL/USDT"):
        alone = scan_markets(candles_1m=candles.filter(pl.col("symbol") == symbol), candles_15m=EMPTY,
                             candles_1h=EMPTY, bos=LOOSE)
        assert [s for s in result.signals if s.symbol == symbol] == alone.signals and alone.signals
    assert not [s for s in result.signals if s.symbol == "ETH/USDT"]


def test_strategies_switched_off_produce_nothing() -> None:
    result = scan_markets(candles_1m=minutes(300), candles_15m=EMPTY, candles_1h=EMPTY)
    assert result.signals == [] and result.alerts == [] and result.errors == {}


@pytest.mark.parametrize("stored_hours", [0, 2, 3])
def test_hours_not_stored_yet_are_built_from_complete_minutes(stored_hours: int) -> None:
    candles = minutes(60 * 3 + 20)  # three complete hours and 20 minutes of the fourth
    now = START + timedelta(minutes=200)
    built, _ = resample(candles, "1h", now=now, source="1m")
    assert built.height == 3 * len(SYMBOLS)
    stored = built.filter(pl.col("ts") < START + timedelta(hours=stored_hours)).with_columns(
        pl.col("volume") * 2)  # the exchange's own candle, told apart by its volume
    hours = complete_hours(stored, candles, now=now)
    assert hours.height == 3 * len(SYMBOLS)  # the open fourth hour is never a candle
    doubled = hours.filter(pl.col("ts") < START + timedelta(hours=stored_hours))
    assert doubled.equals(stored.sort("exchange", "symbol", "ts"))
    rest = hours.filter(pl.col("ts") >= START + timedelta(hours=stored_hours))
    assert rest.equals(built.filter(pl.col("ts") >= START + timedelta(hours=stored_hours)))


@pytest.mark.parametrize(("since_minute", "latest_minute", "expected"), [
    (None, 7, True), (14, 15, True), (15, 16, False), (16, 29, False), (16, 30, True), (10, 50, True)])
def test_an_ema_scan_is_needed_only_when_a_15m_candle_closed(since_minute: int | None, latest_minute: int,
                                                             expected: bool) -> None:
    from ml.strategies.scan import closes_quarter

    since = None if since_minute is None else START + timedelta(minutes=since_minute)
    assert closes_quarter(since, START + timedelta(minutes=latest_minute)) is expected
