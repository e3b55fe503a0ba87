"""CcxtExchange against real ccxt and a loopback replay of real recorded exchange responses.

Candles come from the real freqtrade 1m file served in each exchange's wire format; nothing
leaves 127.0.0.1 (name lookups and connections elsewhere fail) and no test sleeps for real:
the retry policy's ``sleep`` only records the waits it is asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import polars as pl
import pytest

from ml.marketdata.frames import MARKET_SCHEMA, OHLCV_SCHEMA
from resources.exchanges.base import ExchangeClient
from resources.exchanges.ccxt_client import CcxtExchange
from resources.exchanges.errors import (
    ExchangeUnreachableError,
    PermanentError,
    RetriesExhaustedError,
    UnknownExchangeError,
    UnknownSymbolError,
)
from resources.retry import RetryPolicy
from tests.support.exchange_replay import ExchangeReplay, Fault, guard_loopback

pytestmark = [pytest.mark.fixtures, pytest.mark.timeout(60)]

MINUTE = 60_000
#: Unified symbol and kline route per exchange for the candle tests.
KLINES = {
    "binance": ("BTC/USDT", r"api\.binance\.com/api/v3/klines"),
    "okx": ("BTC/USDT:USDT", r"www\.okx\.com/api/v5/market/(history-)?candles"),
    "bybit": ("BTC/USDT", r"api\.bybit\.com/v5/market/kline"),
}


class RecordingSleep:
    """Stands in for ``time.sleep`` in the retry policy: records, never waits."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def make_client(
    replay: ExchangeReplay,
    name: str,
    *,
    now_ms: int,
    sleep: RecordingSleep | None = None,
    attempts: int = 4,
    timeout_ms: int = 2_000,
    market_types: tuple[str, ...] = ("spot", "swap"),
) -> CcxtExchange:
    retry = RetryPolicy(
        attempts=attempts, base_delay=0.01, max_delay=30.0, sleep=sleep or RecordingSleep()
    )
    return CcxtExchange(
        name,
        url_overrides=replay.url_overrides(),
        retry=retry,
        clock=lambda: at(now_ms),
        timeout_ms=timeout_ms,
        rate_limit_ms=1,
        market_types=market_types,
    )


def expected_candles(
    candles: Sequence[Sequence[float]], start_ms: int, end_ms: int, now_ms: int
) -> pl.DataFrame:
    """The real candles in ``[start, end)`` closed at ``now``, built row by row."""
    rows = [c for c in candles if start_ms <= c[0] < end_ms and c[0] + MINUTE <= now_ms]
    columns = list(zip(*rows, strict=True)) if rows else [[]] * 6
    frame = pl.DataFrame({name: list(col) for name, col in zip(OHLCV_SCHEMA, columns, strict=True)})
    return frame.with_columns(
        pl.col("ts").cast(pl.Int64).cast(OHLCV_SCHEMA["ts"]),
        *(pl.col(c).cast(pl.Float64) for c in list(OHLCV_SCHEMA)[1:]),
    )


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    guard_loopback(monkeypatch)


@pytest.fixture
def replay() -> Iterator[ExchangeReplay]:
    with ExchangeReplay() as server:
        yield server


@pytest.fixture
def span(replay: ExchangeReplay) -> tuple[int, int, int]:
    """``(start, end, now)``: 2,500 minutes inside the data (with real gaps), all closed."""
    start = replay.candles[200][0] + 30_000  # mid-candle: the first candle must be the next one
    end = start + 2_500 * MINUTE
    return start, end, replay.candles[-1][0] + MINUTE


# --- universe ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "symbols", "market_requests"),
    [
        (
            "binance",
            {"BTC/USDT", "ETH/USDT", "BTC/USDT:USDT", "ETH/USDT:USDT"},
            ["api.binance.com/api/v3/exchangeInfo", "fapi.binance.com/fapi/v1/exchangeInfo"],
        ),
        (
            "bybit",
            {"BTC/USDT", "BTC/USDT:USDT"},
            ["api.bybit.com/v5/market/instruments-info"] * 3,
        ),  # spot, linear, linear PreLaunch
        (
            "okx",
            {"BTC/USDT:USDT", "ETH/USDT:USDT"},  # recorded spot is USD-quoted; BTC-USD-SWAP inverse
            ["www.okx.com/api/v5/public/instruments"] * 2,
        ),
        (
            "mexc",
            {"BROCK/USDT", "BTC/USDT:USDT", "ETH/USDT:USDT"},
            ["api.mexc.com/api/v3/exchangeInfo", "contract.mexc.com/api/v1/contract/detail"],
        ),
    ],
)
def test_load_markets_keeps_spot_and_usdt_linear_perpetuals(
    replay: ExchangeReplay, name: str, symbols: set[str], market_requests: list[str]
) -> None:
    client = make_client(replay, name, now_ms=1_700_000_000_000)
    assert isinstance(client, ExchangeClient)
    markets = client.load_markets()
    assert markets.schema == pl.Schema(MARKET_SCHEMA)
    assert set(markets["symbol"]) == symbols
    assert markets.filter(pl.col("is_spot"))["settle"].null_count() == markets["is_spot"].sum()
    assert set(markets.filter(~pl.col("is_spot"))["settle"]) <= {"USDT"}
    assert markets.filter((pl.col("market_type") == "spot") != pl.col("is_spot")).is_empty()
    assert markets.filter(pl.col("contract") == pl.col("is_spot")).is_empty()
    assert set(markets["quote"]) == {"USDT"}
    sent = sorted(r.target for r in replay.requests if "ticker" not in r.target)
    assert sent == sorted(market_requests)


def test_load_markets_counts_on_full_binance_listings() -> None:
    bodies = [
        "binance/spot/exchangeInfo_2024-09-08.json",
        "binance/usdm/fapi_v1_exchangeInfo_2022-05-04.json",
    ]
    with ExchangeReplay(bodies=bodies) as replay:
        markets = make_client(replay, "binance", now_ms=1_725_817_008_719).load_markets()
    counts = dict(markets.group_by("market_type").len().iter_rows())
    # from the raw bodies: 376 spot symbols quoted in USDT; 144 USDT-margined PERPETUAL contracts
    # plus BTCSTUSDT, whose contractType is "" while it is delisted (PENDING_TRADING) but whose
    # deliveryDate is the perpetual sentinel (2100-12-25): a perpetual, inactive
    assert counts == {"spot": 376, "swap": 145}
    assert markets.filter(pl.col("symbol") == "BTCST/USDT:USDT")["active"].item() is False
    assert markets.filter(pl.col("market_type") == "swap")["symbol"].str.ends_with(":USDT").all()
    assert markets["quote_volume_24h"].null_count() == markets.height  # no ticker bodies recorded


def test_load_markets_counts_on_full_bitget_listings() -> None:
    bodies = [
        "bitget/v2_spot_public_symbols_2025-07-04.json",
        "bitget/v2_mix_market_contracts_USDT-FUTURES_2025-07-04.json",
        "bitget/jkorf/Spot_Margin_GetMarginSymbols.json",
    ]
    with ExchangeReplay(bodies=bodies) as replay:
        for product in (
            "COIN-FUTURES",
            "USDC-FUTURES",
            "SUSDT-FUTURES",
            "SCOIN-FUTURES",
            "SUSDC-FUTURES",
        ):
            # ccxt asks every product type; only USDT-FUTURES was recorded: answer "none" (synthetic)
            replay.add_json_route(
                "api.bitget.com",
                "/api/v2/mix/market/contracts",
                {"code": "00000", "msg": "success", "data": []},
                productType=product,
            )
        markets = make_client(replay, "bitget", now_ms=1_751_619_594_162).load_markets()
    counts = dict(markets.group_by("market_type").len().iter_rows())
    assert counts == {"spot": 711, "swap": 492}  # USDT-quoted spot symbols; USDT perpetuals


@pytest.mark.parametrize(
    ("name", "symbol", "volume"),
    [
        ("bybit", "BTC/USDT", 243765620.65899866),  # turnover24h of the recorded spot ticker
        ("mexc", "BTC/USDT:USDT", 124905007.4428),
    ],  # amount24 of the recorded contract ticker
)
def test_quote_volume_comes_from_tickers(
    replay: ExchangeReplay, name: str, symbol: str, volume: float
) -> None:
    markets = make_client(replay, name, now_ms=1_700_000_000_000).load_markets()
    assert markets.filter(pl.col("symbol") == symbol)["quote_volume_24h"].item() == pytest.approx(
        volume
    )


@pytest.mark.parametrize(
    "fault",
    [Fault.rate_limited("1"), Fault.server_error(503), Fault.truncated_json(), Fault.delay(1.5)],
    ids=["429", "503", "truncated", "timeout"],
)
def test_load_markets_retries_a_transient_fault(replay: ExchangeReplay, fault: Fault) -> None:
    replay.inject(r"fapi\.binance\.com/fapi/v1/exchangeInfo", fault)
    sleep = RecordingSleep()
    client = make_client(replay, "binance", now_ms=1_700_000_000_000, sleep=sleep, timeout_ms=500)
    markets = client.load_markets()
    assert set(markets["symbol"]) == {"BTC/USDT", "ETH/USDT", "BTC/USDT:USDT", "ETH/USDT:USDT"}
    assert len(replay.requests_to(r"fapi/v1/exchangeInfo")) == 2
    assert len(sleep.waits) == 1


def test_failing_tickers_keep_the_universe_with_null_volume(
    replay: ExchangeReplay, caplog: pytest.LogCaptureFixture
) -> None:
    replay.inject(r"/v5/market/tickers", forever=Fault.server_error(503))
    with caplog.at_level(logging.WARNING):
        markets = make_client(replay, "bybit", now_ms=1_700_000_000_000).load_markets()
    assert set(markets["symbol"]) == {"BTC/USDT", "BTC/USDT:USDT"}
    assert markets["quote_volume_24h"].null_count() == 2
    assert any("null volume" in r.getMessage() for r in caplog.records)


# --- candles ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(KLINES))
def test_fetch_ohlcv_pages_forward_and_returns_exactly_the_real_candles(
    replay: ExchangeReplay, span: tuple[int, int, int], name: str
) -> None:
    symbol, route = KLINES[name]
    start, end, now = span
    frame = make_client(replay, name, now_ms=now).fetch_ohlcv(symbol, "1m", at(start), at(end))
    expected = expected_candles(replay.candles, start, end, now)
    assert expected.height > 2_000  # the span has real gaps: fewer than 2,500 candles
    assert frame.equals(expected)
    pages = replay.requests_to(route)
    assert len(pages) > 1
    assert not replay.unmatched()


@pytest.mark.parametrize("name", list(KLINES))
def test_fetch_ohlcv_returns_closed_candles_only(replay: ExchangeReplay, name: str) -> None:
    """The exchange already has later candles; the client's clock says they are the future."""
    symbol, _ = KLINES[name]
    start = replay.candles[1_000][0]
    now = start + 700 * MINUTE + 25_000  # mid-candle
    frame = make_client(replay, name, now_ms=now).fetch_ohlcv(
        symbol, "1m", at(start), at(now + 3_600_000)
    )
    assert frame.equals(expected_candles(replay.candles, start, now + 3_600_000, now))
    assert frame["ts"].max() < at(now - now % MINUTE)


def test_the_exchange_open_candle_is_dropped() -> None:
    """The exchange's "now" is mid-candle and it serves that candle as unconfirmed."""
    with ExchangeReplay() as replay:
        now = replay.candles[3_000][0] + 40_000
    with ExchangeReplay(market_now_ms=now) as replay:
        start = now - 400 * MINUTE
        frame = make_client(replay, "okx", now_ms=now).fetch_ohlcv(
            "BTC/USDT:USDT", "1m", at(start), at(now + MINUTE)
        )
        assert frame.equals(expected_candles(replay.candles, start, now + MINUTE, now))
        assert frame["ts"].max() == at(now - now % MINUTE - MINUTE)


FAULTS = {
    "429 Retry-After": Fault.rate_limited("1"),
    "500": Fault.server_error(500),
    "timeout": Fault.delay(1.5),  # the client gives up after 0.5 s
    "truncated JSON": Fault.truncated_json(),
    "duplicated and out-of-order page": Fault.scrambled(seed=11),
}


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("name", list(KLINES))
def test_fetch_ohlcv_survives_a_fault_on_a_later_page(
    replay: ExchangeReplay, span: tuple[int, int, int], name: str, fault: str
) -> None:
    symbol, route = KLINES[name]
    start, end, now = span
    replay.inject(route, FAULTS[fault], after=1)
    sleep = RecordingSleep()
    client = make_client(replay, name, now_ms=now, sleep=sleep, timeout_ms=500)
    frame = client.fetch_ohlcv(symbol, "1m", at(start), at(end))
    assert frame.equals(expected_candles(replay.candles, start, end, now))
    assert [r.fault for r in replay.requests_to(route)].count(FAULTS[fault].kind) == 1
    if fault == "duplicated and out-of-order page":
        assert sleep.waits == []  # nothing to retry: the client sorts and de-duplicates
    else:
        assert len(sleep.waits) == 1
    if fault == "429 Retry-After":
        assert sleep.waits[0] >= 1.0  # honoured although the backoff would wait < 0.02 s


def test_retry_after_as_http_date_is_honoured(replay: ExchangeReplay) -> None:
    replay.inject(
        r"fapi\.binance\.com/fapi/v1/exchangeInfo",
        Fault.rate_limited("Wed, 21 Oct 2015 07:28:30 GMT"),
    )
    sleep = RecordingSleep()
    now = int(datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC).timestamp() * 1000)  # 30 s before it
    make_client(replay, "binance", now_ms=now, sleep=sleep).load_markets()
    assert sleep.waits == [30.0]


def test_a_fault_that_never_clears_exhausts_the_retries(
    replay: ExchangeReplay, span: tuple[int, int, int]
) -> None:
    start, end, now = span
    replay.inject(KLINES["binance"][1], forever=Fault.server_error(502))
    sleep = RecordingSleep()
    client = make_client(replay, "binance", now_ms=now, sleep=sleep, attempts=3)
    with pytest.raises(RetriesExhaustedError, match=r"after 3 attempts.*Check the network") as info:
        client.fetch_ohlcv("BTC/USDT", "1m", at(start), at(end))
    assert "502" in str(info.value)
    assert len(replay.requests_to(KLINES["binance"][1])) == 3
    assert len(sleep.waits) == 2


def test_markets_that_cannot_be_loaded_make_the_exchange_unreachable_once(
    replay: ExchangeReplay, span: tuple[int, int, int]
) -> None:
    """Every later call fails at once with the same message instead of reloading the markets."""
    replay.inject(".", forever=Fault.dropped())
    sleep = RecordingSleep()
    client = make_client(replay, "binance", now_ms=span[2], sleep=sleep, attempts=3)
    frame, errors = client.fetch_derivatives(["BTC/USDT:USDT", "ETH/USDT:USDT", "DOGE/USDT:USDT"])
    with pytest.raises(ExchangeUnreachableError) as info:
        client.fetch_ohlcv("BTC/USDT", "1m", at(span[0]), at(span[1]))
    assert frame.height == 0
    assert [r.target for r in replay.requests] == ["api.binance.com/api/v3/exchangeInfo"] * 3
    assert len(sleep.waits) == 2
    assert set(errors.values()) == {str(info.value)}
    assert str(info.value).startswith(
        f"binance: unreachable since {at(span[2]).isoformat()} (its markets could not be loaded in 3 "
        "attempts); stopped asking it. Last error: binance: load_markets: NetworkError"
    )


def test_a_spot_client_loads_only_the_spot_markets(
    replay: ExchangeReplay, span: tuple[int, int, int]
) -> None:
    start, end, now = span
    client = make_client(replay, "binance", now_ms=now, market_types=("spot",))
    frame = client.fetch_ohlcv("BTC/USDT", "1m", at(start), at(end))
    assert frame.equals(expected_candles(replay.candles, start, end, now))
    assert not replay.requests_to(r"fapi\.binance\.com")
    assert len(replay.requests_to(r"api\.binance\.com/api/v3/exchangeInfo")) == 1
    with pytest.raises(UnknownSymbolError, match="not listed among the loaded spot markets"):
        client.fetch_ohlcv("BTC/USDT:USDT", "1m", at(start), at(end))


def test_unknown_symbol_fails_before_any_request(
    replay: ExchangeReplay, span: tuple[int, int, int]
) -> None:
    client = make_client(replay, "binance", now_ms=span[2])
    client.load_markets()
    before = len(replay.requests)
    with pytest.raises(UnknownSymbolError, match=r"'BTC/USD'.*unified ccxt form.*Did you mean"):
        client.fetch_ohlcv("BTC/USD", "1m", at(span[0]), at(span[1]))
    assert len(replay.requests) == before


def test_symbol_the_exchange_rejects_is_unknown_without_retries(
    replay: ExchangeReplay, span: tuple[int, int, int]
) -> None:
    """ETH/USDT is listed but the kline route answers Binance's real -1121 ``Invalid symbol``."""
    sleep = RecordingSleep()
    client = make_client(replay, "binance", now_ms=span[2], sleep=sleep)
    with pytest.raises(UnknownSymbolError, match="check the spelling"):
        client.fetch_ohlcv("ETH/USDT", "1m", at(span[0]), at(span[1]))
    assert len(replay.requests_to(KLINES["binance"][1])) == 1
    assert sleep.waits == []


def test_rejected_credentials_say_what_to_fix(
    replay: ExchangeReplay, span: tuple[int, int, int]
) -> None:
    replay.inject(
        KLINES["binance"][1],
        forever=Fault.status_code(
            401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
        ),
    )
    with pytest.raises(PermanentError, match="Check the API key, secret and password"):
        make_client(replay, "binance", now_ms=span[2]).fetch_ohlcv(
            "BTC/USDT", "1m", at(span[0]), at(span[1])
        )
    assert len(replay.requests_to(KLINES["binance"][1])) == 1


def test_unknown_timeframe_is_permanent(replay: ExchangeReplay, span: tuple[int, int, int]) -> None:
    with pytest.raises(PermanentError, match="timeframe '7m' is not offered"):
        make_client(replay, "binance", now_ms=span[2]).fetch_ohlcv(
            "BTC/USDT", "7m", at(span[0]), at(span[1])
        )


def test_unknown_exchange_lists_the_supported_ones() -> None:
    with pytest.raises(UnknownExchangeError, match=r"'kraken'.*binance, bybit, okx, bitget, mexc"):
        CcxtExchange("kraken")


# --- derivatives ------------------------------------------------------------------------------


def test_binance_usdm_funding_and_open_interest(replay: ExchangeReplay) -> None:
    observed = 1_597_370_495_002  # the recorded premiumIndex "time" (2020-08-14 02:01:35 UTC)
    replay.inject(r"fapi\.binance\.com/fapi/v1/premiumIndex", Fault.server_error(503))  # retried
    client = make_client(replay, "binance", now_ms=observed)
    frame, errors = client.fetch_derivatives(
        ["BTC/USDT:USDT", "ETH/USDT:USDT", "BTC/USDT", "DOGE/USDT:USDT"]
    )
    row = frame.row(0, named=True)
    assert frame.height == 1
    assert row["symbol"] == "BTC/USDT:USDT"
    assert row["ts"] == datetime(2020, 8, 14, 2, 0, tzinfo=UTC)
    assert row["funding_rate"] == pytest.approx(0.00038246)
    assert row["next_funding_ts"] == at(1_597_392_000_000)
    assert row["mark_price"] == pytest.approx(11793.63104562)
    assert row["open_interest"] == pytest.approx(10659.509)
    assert row["open_interest_value"] == pytest.approx(10659.509 * 11793.63104562)
    assert set(errors) == {"ETH/USDT:USDT", "BTC/USDT", "DOGE/USDT:USDT"}
    assert "not a perpetual swap" in errors["BTC/USDT"]
    assert "not listed" in errors["DOGE/USDT:USDT"]
    assert "HTTP 404" in errors["ETH/USDT:USDT"]  # no recorded body for ETHUSDT: fails, alone
