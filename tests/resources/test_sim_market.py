"""SimMarket, the pure world behind the ``sim`` venues: daily view, derivatives, caches."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from resources.exchanges.sim_assets import GENESIS_MS
from resources.exchanges.sim_market import GENESIS, SIM_ASSETS, SimMarket, shared_market

DAY_MS = 86_400_000


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@pytest.fixture(scope="module")
def market() -> SimMarket:
    return SimMarket(42)


def test_assets_are_sane() -> None:
    for asset in SIM_ASSETS:
        assert asset.start_price > 0 and asset.anchor_price > 0, asset.base
        assert 0 < asset.vol < 0.2 and 0.5 <= asset.beta <= 2.0, asset.base
        assert asset.max_supply is None or asset.max_supply >= asset.supply, asset.base
        assert asset.listing_ms >= GENESIS_MS and asset.listing_ms % DAY_MS == 0, asset.base


def test_daily_process_does_not_depend_on_how_far_it_was_extended() -> None:
    gradual = SimMarket(42)
    short_ts, short_close = gradual.daily_closes("DOGE", date(2020, 9, 1))
    gradual.daily_closes("DOGE", date(2024, 1, 1))
    long_ts, long_close = gradual.daily_closes("DOGE", date(2025, 6, 1))
    at_once_ts, at_once_close = SimMarket(42).daily_closes("DOGE", date(2025, 6, 1))
    np.testing.assert_array_equal(long_close, at_once_close)
    np.testing.assert_array_equal(long_ts, at_once_ts)
    np.testing.assert_array_equal(short_close, at_once_close[: short_close.size])
    assert short_ts[-1] == ms(datetime(2020, 9, 1, tzinfo=UTC))


def test_listing_day_opens_at_start_price(market: SimMarket) -> None:
    for base in ["BTC", "PEPE", "HYPE"]:
        asset = market.asset(base)
        first = market.daily_ohlc(base, GENESIS.date(), date(2026, 1, 1))
        assert first.ts[0] == asset.listing_ms
        assert first.open[0] == pytest.approx(asset.start_price, rel=1e-12)


def test_daily_ohlc_matches_the_minute_path(market: SimMarket) -> None:
    start, end = date(2024, 3, 1), date(2024, 3, 15)
    cheap = market.daily_ohlc("SOL", start, end)
    exact = market.daily_ohlc("SOL", start, end, exact=True)
    candles = market.candles(
        "SOL", "1d", ms(datetime(2024, 3, 1, tzinfo=UTC)), ms(datetime(2024, 3, 15, tzinfo=UTC))
    )
    assert len(cheap) == len(exact) == len(candles) == 14
    np.testing.assert_array_equal(exact.high, candles.high)
    np.testing.assert_array_equal(cheap.ts, candles.ts)
    np.testing.assert_allclose(cheap.open, candles.open, rtol=1e-12)
    np.testing.assert_allclose(cheap.close, candles.close, rtol=1e-12)
    assert np.all(cheap.high >= np.maximum(cheap.open, cheap.close))
    assert np.all(cheap.low <= np.minimum(cheap.open, cheap.close))
    # the estimates follow the same law as the path's extremes: same order of magnitude
    ratio = np.log(cheap.high / cheap.low).mean() / np.log(candles.high / candles.low).mean()
    assert 0.5 < ratio < 2.0
    assert 0.3 < cheap.volume.sum() / candles.volume.sum() < 3.0


def test_daily_ohlc_is_cheap_over_the_whole_history(market: SimMarket) -> None:
    for asset in SIM_ASSETS:
        bars = market.daily_ohlc(asset.base, GENESIS.date(), date(2026, 1, 1))
        assert len(bars) == (date(2026, 1, 1) - (asset.listed_from or GENESIS.date())).days
        assert np.all(bars.low > 0) and np.all(np.isfinite(bars.high))
        assert np.all(bars.open[1:] == bars.close[:-1])


def test_price_at_is_the_last_closed_minute(market: SimMarket) -> None:
    moment = ms(datetime(2025, 2, 3, 4, 5, 6, tzinfo=UTC))
    minute = moment - moment % 60_000
    for perp in (False, True):
        bars = market.minutes("ETH", minute - 60_000, minute + 60_000, perp=perp)
        assert market.price_at("ETH", moment, perp=perp) == bars.close[0] == bars.open[1]
    with pytest.raises(ValueError, match="does not trade"):
        market.price_at("PEPE", ms(datetime(2022, 1, 1, tzinfo=UTC)))
    with pytest.raises(KeyError, match="not a simulated asset"):
        market.price_at("NOPE", moment)


def test_perp_tracks_spot_with_a_small_premium(market: SimMarket) -> None:
    start = ms(datetime(2025, 4, 1, tzinfo=UTC))
    spot = market.candles("BTC", "1h", start, start + 3 * DAY_MS)
    perp = market.candles("BTC", "1h", start, start + 3 * DAY_MS, perp=True)
    basis = perp.close / spot.close - 1
    assert np.all(np.abs(basis) <= market.params.premium_cap)
    assert np.abs(basis).mean() < 0.005
    assert perp.volume.sum() == pytest.approx(
        market.params.perp_volume_factor * spot.volume.sum(), rel=1e-9
    )


def test_funding_and_open_interest(market: SimMarket) -> None:
    start = ms(datetime(2024, 1, 1, tzinfo=UTC))
    moments = [start + h * 3_600_000 for h in range(0, 24 * 60, 7)]
    for base in ["BTC", "PEPE"]:
        rates = np.array([market.funding_rate(base, t) for t in moments])
        interest = np.array([market.open_interest(base, t) for t in moments])
        assert np.all(np.abs(rates) <= 0.0075)
        assert np.median(rates) == pytest.approx(0.0001)
        assert np.all(interest > 0)
        values = interest * np.array([market.price_at(base, t, perp=True) for t in moments])
        assert values.std() > 0  # open interest moves


def test_memory_is_bounded_by_the_cache_not_the_range() -> None:
    small = SimMarket(42, cache_days=64)
    year = small.candles(
        "BTC", "1d", ms(datetime(2023, 1, 1, tzinfo=UTC)), ms(datetime(2024, 1, 1, tzinfo=UTC))
    )
    assert len(year) == 365
    assert small.cached_day_paths <= 64


def test_shared_market_is_one_per_seed() -> None:
    assert shared_market(42) is shared_market(42)
    assert shared_market(42) is not shared_market(43)
    with pytest.raises(ValueError, match="non-negative"):
        SimMarket(-1)


def test_window_before_listing_is_empty(market: SimMarket) -> None:
    before = ms(datetime(2023, 4, 16, tzinfo=UTC))
    assert len(market.minutes("PEPE", before - DAY_MS, before)) == 0
    assert len(market.candles("PEPE", "1h", before - DAY_MS, before + 2 * DAY_MS)) == 24
    assert len(market.daily_ohlc("PEPE", date(2023, 1, 1), date(2023, 4, 17))) == 0
    assert market.candles("PEPE", "1h", before, before + DAY_MS + 1).ts[0] == before + DAY_MS
    assert timedelta(milliseconds=int(market.listing_ms("PEPE") - before)) == timedelta(days=1)
