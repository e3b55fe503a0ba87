"""SimExchange: derivatives, venues and fault injection (the failure drills callers rely on)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from ml.marketdata.frames import DERIVATIVES_SCHEMA
from resources.exchanges.errors import PermanentError, RateLimitedError, TransientError
from resources.exchanges.sim import SimExchange, venue_basis

NOW = datetime(2025, 6, 1, 12, 30, tzinfo=UTC)
HOUR = NOW.replace(minute=0)  # the last hour boundary before NOW


def make_exchange(venue: str = "sim", now: datetime = NOW, **options: object) -> SimExchange:
    return SimExchange(venue, seed=42, clock=lambda: now, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def sim() -> SimExchange:
    return make_exchange()


# -- derivatives ----------------------------------------------------------------------------------
def test_derivatives_rows_and_error_isolation(sim: SimExchange) -> None:
    asked = [
        "BTC/USDT:USDT",
        "ETH/USDT",
        "NOPE/USDT:USDT",
        "PEPE/USDT:USDT",
        "KAS/USDT:USDT",
        "SOL/USDT:USDT",
    ]
    frame, errors = sim.fetch_derivatives(asked)
    assert frame.schema == pl.Schema(DERIVATIVES_SCHEMA)
    assert frame["symbol"].to_list() == ["BTC/USDT:USDT", "PEPE/USDT:USDT", "SOL/USDT:USDT"]
    assert set(errors) == {"ETH/USDT", "NOPE/USDT:USDT", "KAS/USDT:USDT"}
    assert "spot market" in errors["ETH/USDT"]
    assert "not listed" in errors["NOPE/USDT:USDT"]
    assert (frame["ts"] == datetime(2025, 6, 1, 12, tzinfo=UTC)).all()
    assert (frame["next_funding_ts"] == datetime(2025, 6, 1, 16, tzinfo=UTC)).all()
    assert frame["funding_rate"].abs().max() <= 0.0075
    assert (frame["open_interest"] > 0).all()
    np.testing.assert_allclose(
        frame["open_interest_value"], frame["open_interest"] * frame["mark_price"]
    )
    spot_btc = sim.fetch_ohlcv("BTC/USDT", "1m", NOW - timedelta(minutes=1), NOW)["close"][0]
    assert frame["mark_price"][0] == pytest.approx(spot_btc, rel=0.01)


def test_funding_is_mostly_the_neutral_rate_and_next_funding_rolls(sim: SimExchange) -> None:
    rates = []
    for hours in range(0, 24 * 20, 5):
        moment = NOW - timedelta(hours=hours)
        frame, errors = make_exchange(now=moment).fetch_derivatives(["BTC/USDT:USDT"])
        assert not errors
        rates.append(frame["funding_rate"][0])
        next_funding = frame["next_funding_ts"][0]
        assert next_funding > moment and next_funding - moment <= timedelta(hours=8)
        assert next_funding.hour in (0, 8, 16) and next_funding.minute == 0
    rates_arr = np.asarray(rates)
    assert np.all(np.abs(rates_arr) <= 0.0075)
    assert np.mean(rates_arr == 0.0001) > 0.3


# -- venues ---------------------------------------------------------------------------------------
def test_venue_subsets_are_deterministic_and_sim_lists_everything() -> None:
    everything = set(make_exchange("sim").load_markets()["symbol"])
    binance = make_exchange("sim_binance").load_markets()
    again = make_exchange("sim_binance").load_markets()
    assert_frame_equal(binance, again)
    assert set(binance["symbol"]) < everything
    assert set(binance["symbol"]) != set(make_exchange("sim_okx").load_markets()["symbol"])
    assert {"BTC/USDT", "ETH/USDT", "BTC/USDT:USDT"} <= set(binance["symbol"])


def test_venues_share_the_world_with_a_tiny_basis() -> None:
    start = NOW - timedelta(hours=6)
    sim_frame = make_exchange("sim").fetch_ohlcv("BTC/USDT", "1h", start, NOW)
    venue_frame = make_exchange("sim_bybit").fetch_ohlcv("BTC/USDT", "1h", start, NOW)
    ratio = (venue_frame["close"] / sim_frame["close"]).to_numpy()
    assert np.all(np.abs(ratio - 1) < 5e-4)
    assert not np.all(ratio == 1.0)
    assert np.allclose(ratio, venue_basis("sim_bybit", "BTC"), rtol=1e-12)


# -- fault injection ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("failure", "error"),
    [
        ("transient", TransientError),
        ("rate_limited", RateLimitedError),
        ("permanent", PermanentError),
    ],
)
def test_failing_symbols_fail_alone(failure: str, error: type[Exception]) -> None:
    exchange = make_exchange(
        failing_symbols=frozenset({"SOL/USDT", "SOL/USDT:USDT"}), failure=failure
    )
    with pytest.raises(error, match="injected"):
        exchange.fetch_ohlcv("SOL/USDT", "1h", NOW - timedelta(days=1), NOW)
    assert exchange.fetch_ohlcv("ETH/USDT", "1h", HOUR - timedelta(days=1), NOW).height == 24
    frame, errors = exchange.fetch_derivatives(["SOL/USDT:USDT", "ETH/USDT:USDT"])
    assert frame["symbol"].to_list() == ["ETH/USDT:USDT"] and "injected" in errors["SOL/USDT:USDT"]
    assert "SOL/USDT" in exchange.load_markets()["symbol"].to_list()


def test_missing_candles_leave_a_real_gap() -> None:
    gone = datetime(2025, 6, 1, 3, tzinfo=UTC)
    exchange = make_exchange(
        missing_candles=frozenset(
            {("ETH/USDT", gone), ("ETH/USDT", int(gone.timestamp() * 1000) + 3_600_000)}
        )
    )
    frame = exchange.fetch_ohlcv(
        "ETH/USDT", "1h", gone - timedelta(hours=3), gone + timedelta(hours=5)
    )
    assert frame.height == 6
    assert gone not in frame["ts"].to_list()
    assert (
        make_exchange(missing_candles=frozenset({("ETH/USDT", gone)}))
        .fetch_ohlcv("BTC/USDT", "1h", gone - timedelta(hours=3), gone + timedelta(hours=5))
        .height
        == 8
    )


def test_an_outage_removes_minutes_and_the_candles_inside_it() -> None:
    down, up = datetime(2025, 6, 1, 2, 0, tzinfo=UTC), datetime(2025, 6, 1, 3, 30, tzinfo=UTC)
    exchange = make_exchange(outages=[(down, up)])
    minutes = exchange.fetch_ohlcv(
        "BTC/USDT", "1m", down - timedelta(hours=1), up + timedelta(hours=1)
    )
    assert minutes.height == 120
    assert minutes.filter(pl.col("ts").is_between(down, up, closed="left")).height == 0
    hours = exchange.fetch_ohlcv(
        "BTC/USDT", "1h", down - timedelta(hours=1), up + timedelta(hours=1)
    )
    assert hours["ts"].to_list() == [
        down - timedelta(hours=1),
        up - timedelta(minutes=30),
        up + timedelta(minutes=30),
    ]
    normal = make_exchange().fetch_ohlcv(
        "BTC/USDT", "1h", up - timedelta(minutes=30), up + timedelta(minutes=30)
    )
    partial = hours.filter(pl.col("ts") == up - timedelta(minutes=30))
    assert partial["volume"][0] < normal["volume"][0]
    assert partial["close"][0] == normal["close"][0]
