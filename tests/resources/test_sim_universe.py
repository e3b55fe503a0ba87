"""The simulated universe's size (SIGNALWORKS_SIM_SYMBOLS): production-sized, deterministic,
prefix-stable, and as realistic in its generated tail as in the built-in assets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from orchestration.settings import settings_from_env
from resources.exchanges.resource import ExchangeResource
from resources.exchanges.sim import SimExchange
from resources.exchanges.sim_assets import DEFAULT_UNIVERSE, MAX_UNIVERSE, SIM_ASSETS, sim_universe
from resources.exchanges.sim_market import SimMarket

NOW = datetime(2025, 6, 1, 12, 30, tzinfo=UTC)
BIG = 420
DAY_MS = 86_400_000


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def kurtosis(returns: np.ndarray) -> float:
    centred = returns - returns.mean()
    return float(np.mean(centred**4) / np.mean(centred**2) ** 2)


@pytest.fixture(scope="module")
def big() -> SimMarket:
    return SimMarket(42, symbols=BIG)


def test_default_universe_is_the_built_in_one() -> None:
    assert DEFAULT_UNIVERSE == len(SIM_ASSETS) == 87
    assert sim_universe() == SIM_ASSETS
    assert SimMarket(42).assets == SIM_ASSETS
    assert sim_universe(10) == SIM_ASSETS[:10]


def test_a_large_universe_is_unique_and_prefix_stable() -> None:
    assets = sim_universe(BIG)
    assert len(assets) == BIG and assets[:DEFAULT_UNIVERSE] == SIM_ASSETS
    assert len({a.base for a in assets}) == BIG
    assert len({a.asset_id for a in assets}) == BIG
    assert sim_universe(300) == assets[:300]
    tail = assets[DEFAULT_UNIVERSE:]
    assert {a.segment for a in tail} == {"alt", "meme"}
    assert all(a.base.isalpha() and a.base.isupper() and "(generated)" in a.name for a in tail)
    caps = np.array([a.supply * a.anchor_price for a in tail])
    # a long tail: market caps fall with rank
    assert np.median(caps[:100]) > 3 * np.median(caps[-100:])
    for size in (0, MAX_UNIVERSE + 1):
        with pytest.raises(ValueError, match="1 to 2000"):
            sim_universe(size)


def test_an_exchange_lists_hundreds_of_symbols(big: SimMarket) -> None:
    exchange = SimExchange("sim", seed=42, clock=lambda: NOW, market=big)
    markets = exchange.load_markets()
    spot = markets.filter(pl.col("is_spot"))
    assert spot.height >= 400
    assert markets.filter(pl.col("contract")).height >= 250
    assert (markets["quote_volume_24h"] > 0).all()
    # the built-in majors stay the most liquid
    top = spot.sort("quote_volume_24h", descending=True)["base"].head(5).to_list()
    assert "BTC" in top and "ETH" in top
    venue = SimExchange("sim_bybit", seed=42, clock=lambda: NOW, market=big).load_markets()
    assert 250 <= venue.filter(pl.col("is_spot")).height < spot.height


def test_candles_do_not_depend_on_the_universe_size(big: SimMarket) -> None:
    small = SimExchange("sim", seed=42, clock=lambda: NOW, market=SimMarket(42))
    large = SimExchange("sim", seed=42, clock=lambda: NOW, market=big)
    start = NOW - timedelta(hours=6)
    for symbol in ("BTC/USDT", "DOGE/USDT:USDT"):
        assert_frame_equal(small.fetch_ohlcv(symbol, "1m", start, NOW), large.fetch_ohlcv(symbol, "1m", start, NOW))
    generated = sim_universe(BIG)[-1]
    listed = max(NOW - timedelta(days=2), datetime.fromtimestamp(generated.listing_ms / 1000, tz=UTC))
    fresh = SimExchange("sim", seed=42, clock=lambda: NOW, market=SimMarket(42, symbols=BIG))
    symbol = f"{generated.base}/USDT"
    first = large.fetch_ohlcv(symbol, "5m", listed, NOW)
    assert first.height > 0
    assert_frame_equal(first, fresh.fetch_ohlcv(symbol, "5m", listed, NOW))


def test_the_generated_tail_is_as_realistic_as_the_built_in_assets(big: SimMarket) -> None:
    """Per sampled generated asset over 30 days of 2025: hourly volatility 0.5-3 %, kurtosis > 4,
    BTC correlation 0.3-0.9 (real 2024 pairs: 0.59-0.83), open interest 0.2-10 % of market cap."""
    start, end = ms(datetime(2025, 3, 1, tzinfo=UTC)), ms(datetime(2025, 3, 31, tzinfo=UTC))
    btc = np.diff(np.log(big.candles("BTC", "1h", start, end).close))
    sample = [a for a in big.assets[DEFAULT_UNIVERSE:] if a.listing_ms < start - 20 * DAY_MS][::25]
    assert len(sample) >= 8
    for asset in sample:
        returns = np.diff(np.log(big.candles(asset.base, "1h", start, end).close))
        assert 0.005 <= returns.std() <= 0.03, (asset.base, returns.std())
        assert kurtosis(returns) > 4.0, asset.base
        assert 0.3 <= np.corrcoef(btc, returns)[0, 1] <= 0.9, asset.base
        if asset.has_perp:
            value = big.open_interest(asset.base, end) * big.price_at(asset.base, end, perp=True)
            assert 0.002 <= value / (asset.supply * big.price_at(asset.base, end)) <= 0.10, asset.base


def test_the_setting_reaches_the_exchange_resource() -> None:
    assert settings_from_env({}).sim_symbols == DEFAULT_UNIVERSE
    assert settings_from_env({"SIGNALWORKS_SIM_SYMBOLS": "400"}).sim_symbols == 400
    with pytest.raises(ValueError, match="SIGNALWORKS_SIM_SYMBOLS='many'"):
        settings_from_env({"SIGNALWORKS_SIM_SYMBOLS": "many"})
    with pytest.raises(ValueError):
        settings_from_env({"SIGNALWORKS_SIM_SYMBOLS": "0"})
    resource = ExchangeResource(exchanges=["sim"], sim_symbols=400, frozen_clock=NOW.isoformat())
    client = resource.client("sim")
    assert isinstance(client, SimExchange)
    assert len(client.market.assets) == 400
