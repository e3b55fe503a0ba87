"""Candle partitions through Dagster against real ccxt and a loopback Binance (real recorded answers).

The loopback server replays the real 1m BTC/USDT candles of 4 to 14 November 2017 (served under
ETH/USDT too, so two symbols are tracked), and can die at its N-th request: from then on it
closes every connection unanswered. The clock is frozen after the data, retries do not wait, and
every figure below comes from the real candles, counted row by row.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance, Definitions, MultiPartitionKey

from orchestration.definitions import build_definitions
from orchestration.settings import Settings
from resources.exchanges.resource import ExchangeResource
from resources.warehouse.store import Warehouse
from tests.support.exchange_replay import ExchangeReplay, Fault, guard_loopback

pytestmark = [pytest.mark.fixtures, pytest.mark.timeout(120)]

NOW = datetime(2017, 11, 15, tzinfo=UTC)  # every candle of the data has closed
DAYS = [f"2017-11-{d:02d}" for d in range(4, 15)]  # the 11 days the real candles cover
SYMBOLS = ["BTC/USDT", "ETH/USDT"]
KLINES = r"api\.binance\.com/api/v3/klines"
SPOT_MARKETS = r"api\.binance\.com/api/v3/exchangeInfo"
FUTURES = r"fapi\.binance\.com/"
ATTEMPTS = 3
#: The run tags of a single-run backfill's partition range (as the backfill daemon sets them).
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def _key(day: str) -> str:
    return str(MultiPartitionKey({"date": day, "exchange": "binance"}))


def _range(first: str, last: str) -> dict[str, str]:
    return {RANGE_START: _key(first), RANGE_END: _key(last)}


def real_per_day(replay: ExchangeReplay) -> Counter[str]:
    """The real 1m candles of each UTC day, counted one by one."""
    return Counter(datetime.fromtimestamp(c[0] / 1000, tz=UTC).date().isoformat() for c in replay.candles)


@pytest.fixture
def replay(monkeypatch: pytest.MonkeyPatch) -> Iterator[ExchangeReplay]:
    guard_loopback(monkeypatch)
    with ExchangeReplay(kline_symbols={"api.binance.com": {"ETHUSDT"}}) as server:
        yield server


@pytest.fixture
def binance(tmp_path: Path, replay: ExchangeReplay) -> tuple[Definitions, Warehouse]:
    settings = Settings(home=tmp_path, exchanges=("binance",), start_date=date(2017, 11, 1), candles_1m_symbols=2)
    exchanges = ExchangeResource(
        exchanges=["binance"], frozen_clock=NOW.isoformat(), url_overrides=replay.url_overrides(),
        retry_attempts=ATTEMPTS, retry_base_delay_s=0.0, unreachable_after=3,
    )
    return build_definitions(settings, {"exchanges": exchanges}), Warehouse.from_url(settings.warehouse_url)


@pytest.fixture
def universe(binance: tuple[Definitions, Warehouse], replay: ExchangeReplay, instance: DagsterInstance) -> int:
    """The real ``markets`` asset ran against the replay; returns how many requests it made."""
    defs, warehouse = binance
    assert defs.resolve_job_def("markets_job").execute_in_process(instance=instance).success
    spot = warehouse.read_markets("binance").filter(pl.col("market_type") == "spot")
    assert sorted(spot.get_column("symbol").to_list()) == SYMBOLS
    return len(replay.requests)


def _candles_run(defs: Definitions, instance: DagsterInstance, first: str, last: str, **run_config: object):
    job = defs.resolve_job_def("candles_1m_job")
    config = {"ops": {"candles_1m": {"config": run_config}}} if run_config else None
    return job.execute_in_process(instance=instance, tags=_range(first, last), run_config=config,
                                  raise_on_error=False)


def _run_log(instance: DagsterInstance, run_id: str, level: int) -> list[str]:
    return [e.user_message for e in instance.all_logs(run_id) if e.dagster_event is None and e.level >= level]


def _statuses(instance: DagsterInstance, defs: Definitions) -> dict[str, str]:
    partitions = defs.resolve_assets_def("candles_1m").partitions_def
    assert partitions is not None
    found = instance.get_status_by_partition(AssetKey("candles_1m"), [_key(d) for d in DAYS], partitions)
    assert found is not None
    return {key.split("|")[0]: status.value if status else "MISSING" for key, status in found.items()}


def test_an_exchange_that_dies_mid_backfill_leaves_only_the_stored_days_materialised(
    binance: tuple[Definitions, Warehouse], replay: ExchangeReplay, instance: DagsterInstance, universe: int
) -> None:
    defs, warehouse = binance
    # 1: the spot markets; 2-3 BTC on the 4th, 4-5 ETH on the 4th, 6-7 BTC on the 5th, 8 ETH's first
    # page on the 5th; the 9th request and every one after it is dropped unanswered
    replay.inject(".", forever=Fault.dropped(), after=8)
    result = _candles_run(defs, instance, DAYS[0], DAYS[-1])

    assert not result.success
    sent = replay.requests[universe:]
    dropped = [r for r in sent if r.fault == "drop"]
    # ETH on the 5th, then BTC and ETH on the 6th: three symbol-days through every retry, then no more
    assert (len(sent), len(dropped)) == (8 + 3 * ATTEMPTS, 3 * ATTEMPTS)

    real = real_per_day(replay)
    stored = warehouse.read_candles(timeframe="1m", exchange="binance")
    per_day = Counter(ts.date().isoformat() for ts in stored.get_column("ts").to_list())
    assert per_day == Counter({DAYS[0]: 2 * real[DAYS[0]], DAYS[1]: real[DAYS[1]]})  # 78 and 1196

    assert sorted(str(p) for p in instance.get_materialized_partitions(AssetKey("candles_1m"))) == [
        _key(DAYS[0]), _key(DAYS[1])]
    assert _statuses(instance, defs) == {DAYS[0]: "MATERIALIZED", DAYS[1]: "MATERIALIZED",
                                         **{day: "FAILED" for day in DAYS[2:]}}
    events = result.asset_materializations_for_node("candles_1m")
    assert [str(e.partition) for e in events] == [_key(DAYS[0]), _key(DAYS[1])]  # in time order
    first, second = (e.metadata for e in events)
    assert (first["rows"].value, first["symbols_fetched"].value, first["symbols_failed"].value) == (78, 2, 0)
    assert (second["rows"].value, second["symbols_fetched"].value, second["symbols_failed"].value) == (1196, 1, 1)
    assert first["first_candle"].value == "2017-11-04T23:02:00+00:00"
    assert second["last_candle"].value == "2017-11-05T23:59:00+00:00"
    assert set(second["failures"].value) == {"ETH/USDT"}

    error = str(result.get_step_failure_events()[0].event_specific_data.error)
    assert "candles_1m: no data stored for 9 of 11 partitions (2 stored" in error
    assert "binance: unreachable since 2017-11-15T00:00:00+00:00 (3 symbol-days in a row failed for a transient reason)" in error
    assert "NetworkError" in error  # the last error
    assert f"{_key(DAYS[2])}: every symbol failed\n{_key(DAYS[3])}: 2 not attempted: binance unreachable" in error

    warnings = _run_log(instance, result.run_id, logging.WARNING)
    assert sum("failed (" in m and "retry" in m for m in warnings) == 3 * (ATTEMPTS - 1)
    assert any("ETH/USDT 2017-11-05 failed" in m for m in warnings)
    assert any(m.startswith("binance: unreachable since") for m in warnings)
    tally = "binance 1m: 2 of 11 days stored, 1274 candles; 22 symbol-days (11 days x 2 symbols): 3 fetched, " \
            "3 failed, 16 not attempted"
    assert tally in _run_log(instance, result.run_id, logging.INFO)


def test_an_exchange_down_from_the_start_fails_fast_with_one_message(
    binance: tuple[Definitions, Warehouse], replay: ExchangeReplay, instance: DagsterInstance, universe: int
) -> None:
    defs, warehouse = binance
    replay.inject(".", forever=Fault.dropped())
    result = _candles_run(defs, instance, DAYS[0], DAYS[-1])

    assert not result.success
    sent = replay.requests[universe:]
    assert [r.target for r in sent] == ["api.binance.com/api/v3/exchangeInfo"] * ATTEMPTS  # no symbol-day asked
    error = str(result.get_step_failure_events()[0].event_specific_data.error)
    assert ("binance: unreachable since 2017-11-15T00:00:00+00:00 (its markets could not be loaded in "
            f"{ATTEMPTS} attempts); stopped asking it. Last error: binance: load_markets: NetworkError") in error
    assert error.count("unreachable since") == 1
    assert warehouse.read_candles(timeframe="1m").is_empty()
    assert instance.get_materialized_partitions(AssetKey("candles_1m")) == set()
    assert set(_statuses(instance, defs).values()) == {"FAILED"}
    infos = _run_log(instance, result.run_id, logging.INFO)
    assert "binance 1m: 0 of 11 days stored, 0 candles; 22 symbol-days (11 days x 2 symbols): 0 fetched, " \
           "1 failed, 21 not attempted" in infos


def test_a_full_backfill_reports_each_day_with_its_own_figures(
    binance: tuple[Definitions, Warehouse], replay: ExchangeReplay, instance: DagsterInstance, universe: int
) -> None:
    defs, warehouse = binance
    result = _candles_run(defs, instance, DAYS[0], DAYS[-1])
    assert result.success
    real = real_per_day(replay)
    events = {str(e.partition): e.metadata for e in result.asset_materializations_for_node("candles_1m")}
    assert set(events) == {_key(day) for day in DAYS}
    for day in DAYS:
        metadata = events[_key(day)]
        assert metadata["rows"].value == 2 * real[day], day
        assert (metadata["symbols_fetched"].value, metadata["symbols_failed"].value) == (2, 0)
        assert metadata["first_candle"].value.startswith(day) and metadata["last_candle"].value.startswith(day)
    assert warehouse.read_candles(timeframe="1m").height == 2 * sum(real.values())
    assert set(_statuses(instance, defs).values()) == {"MATERIALIZED"}


def test_a_spot_only_run_never_asks_for_the_futures_markets(
    binance: tuple[Definitions, Warehouse], replay: ExchangeReplay, instance: DagsterInstance, universe: int
) -> None:
    defs, _ = binance
    assert replay.requests_to(FUTURES)  # the universe itself lists perpetuals too
    result = _candles_run(defs, instance, DAYS[5], DAYS[6])
    assert result.success
    per_endpoint = Counter(r.target for r in replay.requests[universe:])
    assert per_endpoint["api.binance.com/api/v3/exchangeInfo"] == 1  # once per run, not per symbol-day
    assert per_endpoint["api.binance.com/api/v3/klines"] == 2 * 2 * 2  # 2 days x 2 symbols x 2 pages
    assert set(per_endpoint) == {"api.binance.com/api/v3/exchangeInfo", "api.binance.com/api/v3/klines"}


def test_a_run_tracking_a_perpetual_loads_the_futures_markets(
    binance: tuple[Definitions, Warehouse], replay: ExchangeReplay, instance: DagsterInstance, universe: int
) -> None:
    """The other side of the spot-only test: the futures listing is asked for when it is needed."""
    defs, _ = binance
    result = _candles_run(defs, instance, DAYS[5], DAYS[5], market_types=["swap"])
    assert result.success
    per_endpoint = Counter(r.target for r in replay.requests[universe:])
    assert per_endpoint["fapi.binance.com/fapi/v1/exchangeInfo"] == 1
    assert "api.binance.com/api/v3/exchangeInfo" not in per_endpoint


def test_derivatives_load_only_the_futures_markets_and_log_to_the_run(
    binance: tuple[Definitions, Warehouse], replay: ExchangeReplay, instance: DagsterInstance, universe: int
) -> None:
    defs, warehouse = binance
    result = defs.resolve_job_def("derivatives_job").execute_in_process(instance=instance)
    assert result.success
    per_endpoint = Counter(r.target for r in replay.requests[universe:])
    assert per_endpoint["fapi.binance.com/fapi/v1/exchangeInfo"] == 1
    assert not [target for target in per_endpoint if target.startswith("api.binance.com/")]
    assert warehouse.read_derivatives("binance").get_column("symbol").to_list() == ["BTC/USDT:USDT"]
    # no ETHUSDT funding body was recorded: that perpetual fails alone, and the run log says so
    warnings = _run_log(instance, result.run_id, logging.WARNING)
    assert any(m.startswith("binance: derivatives for ETH/USDT:USDT failed") for m in warnings)
