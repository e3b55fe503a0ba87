"""SimExchange: contract, determinism, closed candles only, exact aggregation, realism, errors.

Derivatives, venues and fault injection: ``test_sim_venues.py``; the world itself:
``test_sim_market.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from ml.marketdata.frames import MARKET_SCHEMA, OHLCV_SCHEMA
from resources.exchanges.base import ExchangeClient
from resources.exchanges.errors import UnknownSymbolError
from resources.exchanges.sim import SimExchange
from resources.exchanges.sim_market import GENESIS, SIM_ASSETS, SimMarket

NOW = datetime(2025, 6, 1, 12, 30, tzinfo=UTC)
HOUR = NOW.replace(minute=0)  # the last hour boundary before NOW
SPOT = [f"{a.base}/USDT" for a in SIM_ASSETS]
PERP = [f"{a.base}/USDT:USDT" for a in SIM_ASSETS if a.has_perp]
ALTS = [f"{base}/USDT" for base in ("ETH", "SOL", "XRP", "LINK", "ARB", "DOGE", "PEPE", "WIF")]


def make_exchange(venue: str = "sim", now: datetime = NOW, **options: object) -> SimExchange:
    return SimExchange(venue, seed=42, clock=lambda: now, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def sim() -> SimExchange:
    return make_exchange()


def fresh(now: datetime = NOW, **options: object) -> SimExchange:
    """An exchange on a brand-new world (no shared cache): proves purity, not caching."""
    return make_exchange(now=now, market=SimMarket(42), **options)


def hourly_log_returns(exchange: SimExchange, symbol: str, days: int = 60) -> np.ndarray:
    frame = exchange.fetch_ohlcv(symbol, "1h", NOW - timedelta(days=days), NOW)
    assert frame.height >= days * 24 - 1
    return np.diff(np.log(frame["close"].to_numpy()))


def pearson_kurtosis(x: np.ndarray) -> float:
    d = x - x.mean()
    return float(np.mean(d**4) / np.mean(d**2) ** 2)


# -- contract and universe ------------------------------------------------------------------------
def test_implements_the_exchange_client_protocol(sim: SimExchange) -> None:
    assert isinstance(sim, ExchangeClient)
    assert sim.name == "sim"
    assert sim.now() == NOW
    sim.close()


def test_universe_has_55_plus_assets_in_three_segments() -> None:
    assert len(SIM_ASSETS) >= 55
    segments = {a.segment for a in SIM_ASSETS}
    assert segments == {"major", "alt", "meme"}
    for segment in segments:
        assert sum(a.segment == segment for a in SIM_ASSETS) >= 10
    assert {"BTC", "ETH", "SOL", "BNB", "XRP", "DOGE", "PEPE", "WIF", "BONK"} <= {
        a.base for a in SIM_ASSETS
    }


def test_load_markets_lists_spot_and_perps(sim: SimExchange) -> None:
    markets = sim.load_markets()
    assert markets.schema == pl.Schema(MARKET_SCHEMA)
    listed = [a for a in SIM_ASSETS if a.listing_ms <= int(NOW.timestamp() * 1000)]
    spot = markets.filter(pl.col("is_spot"))
    swaps = markets.filter(pl.col("contract"))
    assert spot.height == len(listed)
    assert swaps.height == sum(a.has_perp for a in listed)
    assert swaps["market_type"].unique().to_list() == ["swap"]
    assert swaps["settle"].unique().to_list() == ["USDT"]
    assert swaps["symbol"].str.ends_with("/USDT:USDT").all()
    assert spot["settle"].is_null().all() and (spot["market_type"] == "spot").all()
    assert markets["active"].all() and markets["symbol"].is_unique().all()
    assert (markets["quote_volume_24h"] > 0).all()
    top = spot.sort("quote_volume_24h", descending=True)["base"].head(3).to_list()
    assert "BTC" in top


def test_quote_volume_is_the_last_24_closed_hours(sim: SimExchange) -> None:
    markets = sim.load_markets().filter(pl.col("symbol") == "ETH/USDT")
    hours = sim.fetch_ohlcv("ETH/USDT", "1h", NOW - timedelta(hours=24, minutes=30), NOW)
    assert hours.height == 24
    expected = (hours["volume"] * hours["close"]).sum()
    assert markets["quote_volume_24h"][0] == pytest.approx(expected, rel=1e-12)


# -- determinism ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("symbol", "timeframe", "days"), [("BTC/USDT", "1m", 1), ("PEPE/USDT:USDT", "1h", 5)]
)
def test_same_range_twice_gives_identical_frames(symbol: str, timeframe: str, days: int) -> None:
    start = NOW - timedelta(days=days, minutes=7)
    first = fresh().fetch_ohlcv(symbol, timeframe, start, NOW)
    again = fresh().fetch_ohlcv(symbol, timeframe, start, NOW)
    assert first.height > 0
    assert_frame_equal(first, again)
    assert_frame_equal(first, make_exchange().fetch_ohlcv(symbol, timeframe, start, NOW))


@pytest.mark.parametrize("timeframe", ["1m", "15m", "1h", "1d"])
def test_overlapping_ranges_agree_on_the_overlap(timeframe: str) -> None:
    span = timedelta(days=40) if timeframe == "1d" else timedelta(hours=30)
    a0, a1 = NOW - 2 * span, NOW - span / 2
    b0, b1 = NOW - span, NOW
    late_first = fresh()  # asks for the later range first: cache order must not matter
    b = late_first.fetch_ohlcv("SOL/USDT", timeframe, b0, b1)
    a = late_first.fetch_ohlcv("SOL/USDT", timeframe, a0, a1)
    a_alone = fresh().fetch_ohlcv("SOL/USDT", timeframe, a0, a1)
    assert_frame_equal(a, a_alone)
    overlap_a = a.filter(pl.col("ts") >= b0)
    overlap_b = b.filter(pl.col("ts") < a1)
    assert overlap_a.height > 0
    assert_frame_equal(overlap_a, overlap_b)


def test_backfill_far_in_the_past_is_reproducible() -> None:
    start = datetime(2020, 3, 12, tzinfo=UTC)
    one = fresh().fetch_ohlcv("ETH/USDT", "5m", start, start + timedelta(hours=6))
    two = fresh().fetch_ohlcv("ETH/USDT", "5m", start, start + timedelta(hours=6))
    assert one.height == 72
    assert_frame_equal(one, two)


def test_another_seed_is_another_world() -> None:
    start = NOW - timedelta(days=1)
    ours = make_exchange().fetch_ohlcv("BTC/USDT", "1h", start, NOW)
    theirs = SimExchange(seed=7, clock=lambda: NOW).fetch_ohlcv("BTC/USDT", "1h", start, NOW)
    assert ours.height == theirs.height
    assert not ours["close"].equals(theirs["close"])


# -- aggregation and continuity -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("timeframe", "every"), [("5m", "5m"), ("1h", "1h"), ("4h", "4h"), ("1d", "1d")]
)
def test_higher_timeframes_aggregate_the_minute_path_exactly(
    sim: SimExchange, timeframe: str, every: str
) -> None:
    start = datetime(2025, 5, 29, tzinfo=UTC)
    minutes = sim.fetch_ohlcv("DOGE/USDT:USDT", "1m", start, start + timedelta(days=2))
    bigger = sim.fetch_ohlcv("DOGE/USDT:USDT", timeframe, start, start + timedelta(days=2))
    expected = (
        minutes.group_by_dynamic("ts", every=every)
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("volume").sum(),
        )
        .select(list(OHLCV_SCHEMA))
    )
    assert_frame_equal(bigger.drop("volume"), expected.drop("volume"), check_exact=True)
    np.testing.assert_allclose(
        bigger["volume"].to_numpy(), expected["volume"].to_numpy(), rtol=1e-12
    )


def test_each_candle_opens_at_the_previous_close(sim: SimExchange) -> None:
    frame = sim.fetch_ohlcv("WIF/USDT", "1m", NOW - timedelta(days=2), NOW)
    assert (frame["open"].slice(1) == frame["close"].slice(0, frame.height - 1)).all()


# -- time -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("now", "timeframe", "last_open"),
    [
        (datetime(2025, 6, 1, 12, 0, tzinfo=UTC), "1h", datetime(2025, 6, 1, 11, 0, tzinfo=UTC)),
        (datetime(2025, 6, 1, 12, 30, tzinfo=UTC), "1h", datetime(2025, 6, 1, 11, 0, tzinfo=UTC)),
        (
            datetime(2025, 6, 1, 12, 59, 59, 999000, tzinfo=UTC),
            "1h",
            datetime(2025, 6, 1, 11, 0, tzinfo=UTC),
        ),
        (
            datetime(2025, 6, 1, 12, 30, 15, tzinfo=UTC),
            "1m",
            datetime(2025, 6, 1, 12, 29, tzinfo=UTC),
        ),
        (datetime(2025, 6, 1, 12, 30, tzinfo=UTC), "4h", datetime(2025, 6, 1, 8, 0, tzinfo=UTC)),
        (datetime(2025, 6, 1, 12, 30, tzinfo=UTC), "1d", datetime(2025, 5, 31, tzinfo=UTC)),
    ],
)
def test_only_closed_candles(now: datetime, timeframe: str, last_open: datetime) -> None:
    exchange = make_exchange(now=now)
    frame = exchange.fetch_ohlcv(
        "BTC/USDT", timeframe, now - timedelta(days=3), now + timedelta(days=3)
    )
    assert frame["ts"].max() == last_open
    later = make_exchange(now=now + timedelta(days=10))
    settled = later.fetch_ohlcv(
        "BTC/USDT", timeframe, now - timedelta(days=3), now + timedelta(days=3)
    )
    assert_frame_equal(
        frame, settled.filter(pl.col("ts") <= last_open)
    )  # closed candles never change


def test_nothing_before_genesis_or_listing(sim: SimExchange) -> None:
    early = sim.fetch_ohlcv(
        "BTC/USDT", "1d", datetime(2019, 6, 1, tzinfo=UTC), datetime(2020, 1, 5, tzinfo=UTC)
    )
    assert early["ts"].to_list() == [GENESIS + timedelta(days=d) for d in range(4)]
    weekly = sim.fetch_ohlcv(
        "BTC/USDT", "1w", datetime(2019, 6, 1, tzinfo=UTC), datetime(2020, 3, 1, tzinfo=UTC)
    )
    assert weekly["ts"].min() >= GENESIS
    pepe = sim.fetch_ohlcv(
        "PEPE/USDT", "1h", datetime(2023, 4, 10, tzinfo=UTC), datetime(2023, 4, 18, tzinfo=UTC)
    )
    assert pepe["ts"].min() == datetime(2023, 4, 17, tzinfo=UTC)
    assert (
        sim.fetch_ohlcv("BTC/USDT", "1h", NOW + timedelta(hours=1), NOW + timedelta(days=1)).height
        == 0
    )
    assert make_exchange(now=datetime(2019, 1, 1, tzinfo=UTC)).load_markets().height == 0


def test_naive_datetimes_are_rejected(sim: SimExchange) -> None:
    with pytest.raises(ValueError, match="naive"):
        sim.fetch_ohlcv("BTC/USDT", "1h", datetime(2025, 1, 1), datetime(2025, 1, 2))


# -- realism --------------------------------------------------------------------------------------
def test_hourly_returns_are_fat_tailed(sim: SimExchange) -> None:
    for symbol in ["BTC/USDT", "ETH/USDT", "SOL/USDT", "PEPE/USDT"]:
        assert pearson_kurtosis(hourly_log_returns(sim, symbol)) > 3.5, symbol


def test_alts_correlate_with_btc_hourly(sim: SimExchange) -> None:
    btc = hourly_log_returns(sim, "BTC/USDT")
    correlations = [float(np.corrcoef(btc, hourly_log_returns(sim, s))[0, 1]) for s in ALTS]
    assert np.mean(correlations) > 0.3
    assert min(correlations) > 0.15
    assert max(correlations) < 0.95  # alts have a life of their own


@pytest.mark.parametrize(
    ("symbol", "low", "high"),
    [("BTC/USDT", 1e4, 1e6), ("ETH/USDT", 300, 3e4), ("PEPE/USDT", 1e-7, 1e-3)],
)
def test_price_levels_are_realistic(sim: SimExchange, symbol: str, low: float, high: float) -> None:
    closes = sim.fetch_ohlcv(symbol, "1d", NOW - timedelta(days=200), NOW)["close"]
    assert low < closes.min() and closes.max() < high


# -- property: OHLC sanity over random symbols and ranges -----------------------------------------
TIMEFRAME_MINUTES = {"1m": 1, "5m": 5, "15m": 15, "1h": 60, "4h": 240, "1d": 1440}


@settings(max_examples=40, deadline=None)
@given(
    symbol=st.sampled_from(SPOT + PERP),
    timeframe=st.sampled_from(list(TIMEFRAME_MINUTES)),
    bars=st.integers(min_value=1, max_value=72),
    position=st.floats(min_value=0.0, max_value=1.0),
)
def test_ohlc_sanity(symbol: str, timeframe: str, bars: int, position: float) -> None:
    """Any range of ``bars`` candles between the symbol's listing and the last closed candle
    (start drawn anywhere in that span, aligned or not) holds exactly ``bars`` sane candles."""
    exchange = make_exchange()
    step = timedelta(minutes=TIMEFRAME_MINUTES[timeframe])
    listing = datetime.fromtimestamp(SimMarket(42).listing_ms(symbol.split("/")[0]) / 1000, tz=UTC)
    span = (NOW - (bars + 1) * step) - listing  # the last candle of the range closes by NOW
    start = listing + timedelta(seconds=int(span.total_seconds() * position))
    end = start + bars * step  # half-open: exactly ``bars`` candle opens fall inside
    frame = exchange.fetch_ohlcv(symbol, timeframe, start, end)
    assert frame.schema == pl.Schema(OHLCV_SCHEMA)
    assert frame.height == bars, (start, end)
    assert frame["ts"].is_sorted() and frame["ts"].is_unique().all()
    assert frame["ts"].min() >= start and frame["ts"].max() < end
    lo, hi = pl.min_horizontal("open", "close"), pl.max_horizontal("open", "close")
    bad = frame.filter(
        (pl.col("low") > lo) | (pl.col("high") < hi) | (pl.col("low") <= 0) | (pl.col("volume") < 0)
    )
    assert bad.height == 0
    assert frame.select(pl.all().exclude("ts").is_finite().all()).row(0) == (True,) * 5


# -- errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "symbol", ["NOPE/USDT", "BTC/EUR", "BTC/USDT:BTC", "KAS/USDT:USDT", "BTCUSDT", "", "btc/usdt"]
)
def test_unknown_symbol_raises_clearly(sim: SimExchange, symbol: str) -> None:
    with pytest.raises(
        UnknownSymbolError, match=r"not listed on simulated venue 'sim'.*load_markets"
    ):
        sim.fetch_ohlcv(symbol, "1h", NOW - timedelta(days=1), NOW)


def test_unknown_timeframe_raises_value_error(sim: SimExchange) -> None:
    with pytest.raises(ValueError, match="unknown timeframe"):
        sim.fetch_ohlcv("BTC/USDT", "7m", NOW - timedelta(days=1), NOW)


def test_symbol_not_listed_yet_is_unknown() -> None:
    early = make_exchange(now=datetime(2023, 1, 1, tzinfo=UTC))
    with pytest.raises(UnknownSymbolError, match="not listed yet"):
        early.fetch_ohlcv(
            "PEPE/USDT", "1h", datetime(2022, 12, 1, tzinfo=UTC), datetime(2023, 1, 1, tzinfo=UTC)
        )
    assert "PEPE/USDT" not in early.load_markets()["symbol"].to_list()


# -- speed sanity (no timing asserted: keeps the documented workloads exercised) ------------------
def test_a_day_of_minutes_for_150_symbols() -> None:
    exchange = make_exchange()
    symbols = (SPOT + PERP)[:150]
    assert len(symbols) == 150
    start = NOW - timedelta(days=1)
    heights = {s: exchange.fetch_ohlcv(s, "1m", start, NOW).height for s in symbols}
    assert set(heights.values()) == {1440}


def test_thirty_days_of_hours_for_60_symbols() -> None:
    exchange = make_exchange()
    start = HOUR - timedelta(days=30)
    for symbol in SPOT[:60]:
        assert exchange.fetch_ohlcv(symbol, "1h", start, NOW).height == 30 * 24
