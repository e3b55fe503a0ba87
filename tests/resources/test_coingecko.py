"""CoinGeckoClient against a loopback replay of real recorded responses, and the SimCoinGecko twin.

Tests marked ``fixtures`` read ``../shared/fixtures/coingecko`` (skipped when it is absent, failed
under CI). Nothing here leaves 127.0.0.1, and no test really sleeps for a back-off.
"""

from __future__ import annotations

import json
import logging
import random
import socket
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import polars as pl
import pytest

from ml.marketdata.frames import COINGECKO_SCHEMA
from resources.coingecko import (
    DEMO_KEY_HEADER,
    PRO_BASE_URL,
    PRO_KEY_HEADER,
    PUBLIC_BASE_URL,
    CoinGeckoClient,
)
from resources.coingecko_sim import SimCoinGecko
from resources.exchanges.errors import PermanentError, RetriesExhaustedError
from resources.exchanges.sim_market import SimMarket
from resources.retry import RetryPolicy
from tests.support.coingecko_replay import CoinGeckoReplay, Fault, recorded_market_universe
from tests.support.fixtures import shared_fixtures_dir

API_KEY = "CG-test-key-0123456789abcdef"
NOW = datetime(2021, 5, 15, 16, 0, 37, 250000, tzinfo=UTC)
MARKETS = "/coins/markets"


@pytest.fixture
def coingecko_dir() -> Path:
    return shared_fixtures_dir() / "coingecko"


@pytest.fixture
def replay(coingecko_dir: Path) -> Iterator[CoinGeckoReplay]:
    with CoinGeckoReplay(coingecko_dir) as server:
        yield server


@pytest.fixture
def waits() -> list[float]:
    """Every back-off the retry policy asked for (recorded instead of slept)."""
    return []


@pytest.fixture
def client(replay: CoinGeckoReplay, waits: list[float]) -> Iterator[CoinGeckoClient]:
    with make_client(replay.base_url, waits) as live:
        yield live


def make_client(base_url: str, waits: list[float], **overrides: object) -> CoinGeckoClient:
    options: dict[str, object] = {
        "base_url": base_url,
        "api_key": API_KEY,
        "timeout_s": 2.0,
        "retry": RetryPolicy(attempts=4, base_delay=0.01, sleep=waits.append, rng=random.Random(7)),
        "clock": lambda: NOW,
    }
    options.update(overrides)
    return CoinGeckoClient(**options)  # type: ignore[arg-type]


def recorded_bitcoin(coingecko_dir: Path) -> dict[str, object]:
    body = (
        coingecko_dir / "responses" / "coingecko_api_v3_coins_markets__qb7461b.json"
    ).read_text()
    return json.loads(body)[0]


def iso_utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def error_text(error: BaseException) -> str:
    """Everything a log or traceback could show about an error, its causes included."""
    return "".join(traceback.format_exception(error))


# -- parsing -----------------------------------------------------------------------------------


@pytest.mark.fixtures
def test_parses_the_recorded_markets_response(
    replay: CoinGeckoReplay, client: CoinGeckoClient, coingecko_dir: Path
) -> None:
    recorded = recorded_bitcoin(coingecko_dir)
    replay.serve_market_pages([recorded])

    frame = client.top_markets(10)

    assert frame.schema == pl.Schema(COINGECKO_SCHEMA)
    assert frame.height == 1
    row = frame.row(0, named=True)
    assert row["snapshot_ts"] == datetime(2021, 5, 15, 16, 0, tzinfo=UTC)
    assert (row["coin_id"], row["symbol"], row["name"]) == ("bitcoin", "btc", "Bitcoin")
    assert row["market_cap_rank"] == recorded["market_cap_rank"] == 1
    assert row["price_usd"] == recorded["current_price"] == 49053
    assert row["market_cap_usd"] == recorded["market_cap"] == 917825524991
    assert row["fdv_usd"] == recorded["fully_diluted_valuation"]
    assert row["total_volume_usd"] == recorded["total_volume"]
    assert row["circulating_supply"] == recorded["circulating_supply"]
    assert row["total_supply"] == recorded["total_supply"]
    assert row["max_supply"] == recorded["max_supply"] == 21_000_000
    assert row["price_change_pct_24h"] == recorded["price_change_percentage_24h"] == -4.37931
    assert row["ath_usd"] == recorded["ath"] == 64805
    assert row["ath_ts"] == datetime(2021, 4, 14, 11, 54, 46, 763000, tzinfo=UTC)
    assert row["atl_usd"] == recorded["atl"] == 67.81
    assert row["atl_ts"] == iso_utc(str(recorded["atl_date"]))
    assert row["last_updated"] == datetime(2021, 5, 15, 15, 59, 43, 867000, tzinfo=UTC)

    (request,) = replay.requests_to(MARKETS)
    assert request.query == {
        "vs_currency": "usd",
        "order": "market_cap_desc",
        "per_page": "250",
        "page": "1",
        "sparkline": "false",
        "price_change_percentage": "24h",
    }


@pytest.mark.fixtures
def test_parses_nulls_of_a_real_coin_without_max_supply(
    replay: CoinGeckoReplay, client: CoinGeckoClient, coingecko_dir: Path
) -> None:
    tether = recorded_market_universe(coingecko_dir, 2)[1]
    replay.serve_market_pages([tether])
    row = client.top_markets(5).row(0, named=True)
    assert row["coin_id"] == "tether"
    assert row["fdv_usd"] is None and row["max_supply"] is None
    assert row["price_usd"] == tether["current_price"]
    assert row["ath_ts"] == datetime(2018, 7, 24, tzinfo=UTC)


@pytest.mark.fixtures
def test_replay_serves_recorded_bodies_verbatim(
    replay: CoinGeckoReplay, coingecko_dir: Path
) -> None:
    """The support server itself: path + query match, recorded status and bytes."""
    responses = coingecko_dir / "responses"
    with httpx.Client(base_url=replay.base_url) as http:
        ok = http.get(MARKETS, params={"vs_currency": "usd", "ids": "bitcoin"})
        eth = http.get(MARKETS, params={"ids": "bitcoin, ethereum", "vs_currency": "eth"})
        missing = http.get(MARKETS)
    assert ok.status_code == 200
    assert ok.content == (responses / "coingecko_api_v3_coins_markets__qb7461b.json").read_bytes()
    assert [c["id"] for c in eth.json()] == ["bitcoin", "ethereum"]
    assert missing.status_code == 422
    assert missing.json() == {"error": "Missing parameter vs_currency"}


# -- paging ------------------------------------------------------------------------------------


@pytest.mark.fixtures
def test_pages_to_n_and_drops_coins_repeated_across_pages(
    replay: CoinGeckoReplay, waits: list[float], coingecko_dir: Path
) -> None:
    universe = recorded_market_universe(coingecko_dir, 400)
    replay.serve_market_pages(universe, overlap=5)  # ranks shift by 5 after page 1

    with make_client(replay.base_url, waits, per_page=100) as client:
        frame = client.top_markets(250)

    assert frame.height == 250
    assert frame["coin_id"].is_unique().all()
    assert frame["coin_id"].to_list() == [c["id"] for c in universe[:250]]
    assert [r.query["page"] for r in replay.requests_to(MARKETS)] == ["1", "2", "3"]
    assert {r.query["per_page"] for r in replay.requests_to(MARKETS)} == {"100"}
    # the five coins seen on page 1 and again on page 2 keep their first (page 1) row
    assert frame["market_cap_rank"][95:100].to_list() == [96, 97, 98, 99, 100]
    assert frame["market_cap_rank"].is_unique().all()
    assert frame["snapshot_ts"].unique().to_list() == [datetime(2021, 5, 15, 16, 0, tzinfo=UTC)]


@pytest.mark.parametrize(
    ("universe_size", "per_page", "n", "expected_rows", "expected_pages"),
    [
        (120, 50, 2000, 120, 3),  # a short page ends the listing
        (100, 50, 2000, 100, 3),  # an empty page ends the listing
        (300, 100, 150, 150, 2),  # stops as soon as n coins are in
        (300, 100, 0, 0, 0),  # nothing asked, nothing fetched
    ],
)
@pytest.mark.fixtures
def test_stops_at_n_or_at_the_end_of_the_listing(
    replay: CoinGeckoReplay,
    waits: list[float],
    coingecko_dir: Path,
    universe_size: int,
    per_page: int,
    n: int,
    expected_rows: int,
    expected_pages: int,
) -> None:
    replay.serve_market_pages(recorded_market_universe(coingecko_dir, universe_size))
    with make_client(replay.base_url, waits, per_page=per_page) as client:
        frame = client.top_markets(n)
    assert frame.height == expected_rows
    assert frame.schema == pl.Schema(COINGECKO_SCHEMA)
    assert len(replay.requests_to(MARKETS)) == expected_pages


# -- transient faults, retried -----------------------------------------------------------------


@pytest.mark.fixtures
def test_429_waits_for_retry_after(
    replay: CoinGeckoReplay, client: CoinGeckoClient, waits: list[float], coingecko_dir: Path
) -> None:
    replay.serve_market_pages([recorded_bitcoin(coingecko_dir)])
    replay.inject(MARKETS, Fault.rate_limited(7))
    frame = client.top_markets(10)
    assert frame["coin_id"].to_list() == ["bitcoin"]
    assert waits == [7.0]
    assert len(replay.requests_to(MARKETS)) == 2


@pytest.mark.parametrize(
    "fault_name", ["recorded_500", "synthetic_503", "truncated_json", "timeout"]
)
@pytest.mark.fixtures
def test_transient_fault_then_success(
    replay: CoinGeckoReplay, waits: list[float], coingecko_dir: Path, fault_name: str
) -> None:
    faults = {
        "recorded_500": replay.recorded_fault("/coins/bitcoin/ohlc", 500),  # the real 500 body
        "synthetic_503": Fault.status_code(503, "<html>Service Unavailable</html>"),
        "truncated_json": Fault.truncated_json(),
        "timeout": Fault.delay(1.0),
    }
    replay.serve_market_pages([recorded_bitcoin(coingecko_dir)])
    replay.inject(MARKETS, faults[fault_name])
    with make_client(replay.base_url, waits, timeout_s=0.25) as client:
        frame = client.top_markets(10)
    assert frame["price_usd"].to_list() == [49053.0]
    assert len(waits) == 1
    assert len(replay.requests_to(MARKETS)) == 2


def test_connection_refused_is_retried_then_exhausted(waits: list[float]) -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with (
        make_client(f"http://127.0.0.1:{port}/api/v3", waits) as client,
        pytest.raises(RetriesExhaustedError) as caught,
    ):
        client.top_markets(10)
    assert len(waits) == 3
    assert "ConnectError" in str(caught.value)


@pytest.mark.parametrize(
    ("fault", "hint"),
    [
        (
            Fault.status_code(500, {"status": 500, "error": "Internal Server Error"}),
            "status.coingecko.com",
        ),
        (Fault.rate_limited(1), "SIGNALWORKS_COINGECKO_API_KEY"),
        (Fault.truncated_json(), "base URL in use"),
    ],
)
@pytest.mark.fixtures
def test_persistent_fault_exhausts_retries_and_says_what_to_check(
    replay: CoinGeckoReplay,
    client: CoinGeckoClient,
    waits: list[float],
    coingecko_dir: Path,
    fault: Fault,
    hint: str,
) -> None:
    replay.serve_market_pages([recorded_bitcoin(coingecko_dir)])
    replay.fail_always(MARKETS, fault)
    with pytest.raises(RetriesExhaustedError) as caught:
        client.top_markets(10)
    message = str(caught.value)
    assert hint in message
    assert "4 attempts" in message
    assert replay.base_url in message
    assert len(replay.requests_to(MARKETS)) == 4
    assert len(waits) == 3
    assert API_KEY not in error_text(caught.value)


# -- permanent faults, not retried -------------------------------------------------------------


@pytest.mark.fixtures
def test_422_is_permanent_and_quotes_the_recorded_error(
    replay: CoinGeckoReplay, client: CoinGeckoClient, waits: list[float]
) -> None:
    replay.inject(MARKETS, replay.recorded_fault(MARKETS, 422))
    with pytest.raises(PermanentError) as caught:
        client.top_markets(10)
    assert "HTTP 422" in str(caught.value)
    assert "Missing parameter vs_currency" in str(caught.value)
    assert waits == []
    assert len(replay.requests_to(MARKETS)) == 1


@pytest.mark.parametrize("status", [401, 403])
@pytest.mark.fixtures
def test_auth_failure_says_to_check_the_key_and_plan(
    replay: CoinGeckoReplay, client: CoinGeckoClient, waits: list[float], status: int
) -> None:
    # CoinGecko's documented auth error shape (synthetic: no 401 was recorded); it echoes the key
    body = {"status": {"error_code": 10002, "error_message": f"Invalid API key {API_KEY}"}}
    replay.inject(MARKETS, Fault.status_code(status, body))
    with pytest.raises(PermanentError) as caught:
        client.top_markets(10)
    assert "SIGNALWORKS_COINGECKO_API_KEY" in str(caught.value)
    assert "plan" in str(caught.value)
    assert API_KEY not in error_text(caught.value)
    assert waits == []


@pytest.mark.fixtures
def test_unexpected_body_shape_is_permanent(
    replay: CoinGeckoReplay, client: CoinGeckoClient, coingecko_dir: Path
) -> None:
    detail = (coingecko_dir / "responses" / "coingecko_api_v3_global.json").read_text()
    replay.inject(MARKETS, Fault.status_code(200, detail))  # a real body, for the wrong endpoint
    with pytest.raises(PermanentError, match="expected a list"):
        client.top_markets(10)


# -- the API key -------------------------------------------------------------------------------


@pytest.mark.fixtures
def test_api_key_travels_in_its_header_and_nowhere_else(
    replay: CoinGeckoReplay,
    client: CoinGeckoClient,
    coingecko_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    replay.serve_market_pages([recorded_bitcoin(coingecko_dir)])
    replay.inject(MARKETS, Fault.rate_limited(2), Fault.truncated_json())
    client.top_markets(10)
    requests = replay.requests_to(MARKETS)
    assert len(requests) == 3
    assert all(r.headers.get(DEMO_KEY_HEADER) == API_KEY for r in requests)
    assert all(API_KEY not in json.dumps(r.query) for r in requests)
    assert API_KEY not in caplog.text
    assert API_KEY not in repr(client)


@pytest.mark.fixtures
def test_no_key_no_header(replay: CoinGeckoReplay, waits: list[float], coingecko_dir: Path) -> None:
    replay.serve_market_pages([recorded_bitcoin(coingecko_dir)])
    with make_client(replay.base_url, waits, api_key=None) as client:
        client.top_markets(1)
    (request,) = replay.requests_to(MARKETS)
    assert DEMO_KEY_HEADER not in request.headers and PRO_KEY_HEADER not in request.headers


@pytest.mark.fixtures
def test_pro_plan_sends_the_pro_header(
    replay: CoinGeckoReplay, waits: list[float], coingecko_dir: Path
) -> None:
    replay.serve_market_pages([recorded_bitcoin(coingecko_dir)])
    with make_client(replay.base_url, waits, plan="pro") as client:
        client.top_markets(1)
    (request,) = replay.requests_to(MARKETS)
    assert request.headers.get(PRO_KEY_HEADER) == API_KEY
    assert DEMO_KEY_HEADER not in request.headers


@pytest.mark.parametrize(
    ("options", "base_url", "header", "plan"),
    [
        ({}, PUBLIC_BASE_URL, DEMO_KEY_HEADER, "demo"),
        ({"plan": "pro"}, PRO_BASE_URL, PRO_KEY_HEADER, "pro"),
        ({"base_url": PRO_BASE_URL}, PRO_BASE_URL, PRO_KEY_HEADER, "pro"),
        ({"api_key_header": "x-custom"}, PUBLIC_BASE_URL, "x-custom", "demo"),
        ({"api_key": None}, PUBLIC_BASE_URL, DEMO_KEY_HEADER, "public"),
    ],
)
def test_plan_picks_base_url_and_header(
    options: dict[str, object], base_url: str, header: str, plan: str
) -> None:
    settings: dict[str, object] = {"api_key": API_KEY, **options}
    with CoinGeckoClient(**settings) as client:  # type: ignore[arg-type]  # no request is made
        assert (client.base_url, client.api_key_header, client.plan) == (base_url, header, plan)


def test_rejects_an_impossible_page_size() -> None:
    with pytest.raises(ValueError, match="per_page"):
        CoinGeckoClient(per_page=251)


@pytest.mark.fixtures
def test_snapshot_ts_needs_an_aware_clock(
    replay: CoinGeckoReplay, waits: list[float], coingecko_dir: Path
) -> None:
    replay.serve_market_pages([recorded_bitcoin(coingecko_dir)])
    naive = NOW.replace(tzinfo=None)
    with (
        make_client(replay.base_url, waits, clock=lambda: naive) as client,
        pytest.raises(ValueError, match="timezone-aware"),
    ):
        client.top_markets(1)
    assert replay.requests_to(MARKETS) == []


# -- the offline twin --------------------------------------------------------------------------

SIM_NOW = datetime(2025, 11, 20, 10, 17, 42, tzinfo=UTC)


class MovableClock:
    """A clock a test moves forward by hand."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture(scope="module")
def sim_snapshot() -> pl.DataFrame:
    return SimCoinGecko(seed=42, clock=lambda: SIM_NOW).top_markets(2000)


def test_twin_has_the_live_schema_unique_ids_and_ranks_by_market_cap(
    sim_snapshot: pl.DataFrame,
) -> None:
    frame = sim_snapshot
    assert frame.schema == pl.Schema(COINGECKO_SCHEMA)
    assert frame.height == 2000
    assert frame["coin_id"].is_unique().all()
    assert frame["market_cap_rank"].to_list() == list(range(1, 2001))
    caps = frame["market_cap_usd"].to_numpy()
    assert (caps[:-1] >= caps[1:]).all()
    assert caps[-1] > 100_000  # a plausible rank-2000 market cap, not dust
    assert frame.filter(pl.col("coin_id").str.contains(r"^simcoin-\d{4}$")).height > 1500
    snapshot = datetime(2025, 11, 20, 10, 17, tzinfo=UTC)
    assert frame["snapshot_ts"].unique().to_list() == [snapshot]
    assert (frame["last_updated"] == snapshot).all()
    # nothing is dated after the snapshot: ATH and ATL come from closed days only
    assert (frame["ath_ts"] < snapshot).all() and (frame["atl_ts"] < snapshot).all()
    assert (frame["ath_usd"] >= frame["atl_usd"]).all()
    required = [c for c in COINGECKO_SCHEMA if c not in ("max_supply",)]
    assert frame.select(required).null_count().sum_horizontal().item() == 0


def test_twin_is_deterministic_for_seed_and_clock(sim_snapshot: pl.DataFrame) -> None:
    again = SimCoinGecko(seed=42, clock=lambda: SIM_NOW).top_markets(2000)
    assert again.equals(sim_snapshot)


def test_twin_head_is_the_top_of_a_longer_listing(sim_snapshot: pl.DataFrame) -> None:
    top = SimCoinGecko(seed=42, clock=lambda: SIM_NOW).top_markets(100)
    assert top.equals(sim_snapshot.head(100))


def test_twin_prices_sim_assets_from_the_sim_market(sim_snapshot: pl.DataFrame) -> None:
    market = SimMarket(seed=42)  # a fresh market, not the twin's shared one
    snap_ms = int(datetime(2025, 11, 20, 10, 17, tzinfo=UTC).timestamp() * 1000)
    btc = sim_snapshot.filter(pl.col("coin_id") == "bitcoin").row(0, named=True)
    asset = market.asset("BTC")
    assert btc["symbol"] == "btc" and btc["market_cap_rank"] == 1
    assert btc["price_usd"] == market.price_at("BTC", snap_ms)
    assert btc["market_cap_usd"] == pytest.approx(btc["price_usd"] * asset.supply)
    assert btc["fdv_usd"] == pytest.approx(btc["price_usd"] * asset.max_supply)
    assert btc["price_change_pct_24h"] == pytest.approx(
        (btc["price_usd"] / market.price_at("BTC", snap_ms - 86_400_000) - 1) * 100
    )
    eth = sim_snapshot.filter(pl.col("coin_id") == "ethereum").row(0, named=True)
    assert eth["max_supply"] is None
    assert eth["fdv_usd"] == pytest.approx(eth["market_cap_usd"])  # uncapped: total = circulating


def test_twin_ath_is_at_or_above_the_price_for_most_coins(sim_snapshot: pl.DataFrame) -> None:
    share_below_ath = (sim_snapshot["price_usd"] <= sim_snapshot["ath_usd"]).mean()
    share_above_atl = (sim_snapshot["price_usd"] >= sim_snapshot["atl_usd"]).mean()
    assert share_below_ath is not None and share_below_ath >= 0.95
    assert share_above_atl is not None and share_above_atl >= 0.95


@pytest.mark.parametrize(
    "first",
    [SIM_NOW, datetime(2024, 3, 13, 23, 50, tzinfo=UTC)],  # the second pair crosses midnight UTC
    ids=["same-day", "across-midnight"],
)
def test_twin_snapshots_30_minutes_apart_are_consistent(first: datetime) -> None:
    clock = MovableClock(first)
    twin = SimCoinGecko(seed=42, clock=clock)
    before = twin.top_markets(2000)
    clock.moment = first + timedelta(minutes=30)
    after = twin.top_markets(2000)

    assert after["snapshot_ts"][0] - before["snapshot_ts"][0] == timedelta(minutes=30)
    both = before.join(after, on="coin_id", suffix="_later")
    assert both.height >= 0.98 * before.height  # only the very bottom of the listing reshuffles
    assert (both["ath_usd_later"] >= both["ath_usd"]).all()
    assert (both["atl_usd_later"] <= both["atl_usd"]).all()
    assert (both["ath_ts_later"] >= both["ath_ts"]).all()
    assert ((both["price_usd_later"] / both["price_usd"] - 1).abs() < 0.15).all()
    assert ((both["market_cap_rank_later"] - both["market_cap_rank"]).abs() <= 50).all()
    assert (both["circulating_supply_later"] == both["circulating_supply"]).all()
