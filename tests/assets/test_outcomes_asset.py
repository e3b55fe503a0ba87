"""signal_outcomes end to end on a frozen clock: market signals queued with the real Outbox and
scored from stored 1m candles, a social call snapshotted minute by minute through the simulated
DexScreener behind its cache; figures appear only once their horizon has closed, a later run
fills the rest, re-runs change nothing, and a bad payload stops nothing else."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetSelection, materialize

from assets.outcomes import outcomes_sound, signal_outcomes, update_outcomes
from ml.evaluation.costs import DEFAULT_COSTS
from ml.strategies.signal import MarketSignal
from resources.clock import FrozenClock
from resources.dexscreener_sim import SimDexScreener
from resources.publishers.outbox import Outbox
from resources.social_resources import SimDexScreenerResource
from resources.warehouse.engine import make_engine
from resources.warehouse.outcomes import read_signal_outcomes, read_snapshots, upsert_outcomes
from resources.warehouse.resource import WarehouseResource
from resources.warehouse.store import Warehouse

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
C = DEFAULT_COSTS.per_unit_traded
MINT = "EKpQGSJtjMFqKZ9KQanSqYXRcF8fBopzLHYxdM65zcjm"
HORIZONS = (1, 2, 3, 5, 10, 15)


def net(p0: float, p1: float, direction: str = "long") -> float:
    gross = p1 / p0 - 1 if direction == "long" else 1 - p1 / p0
    return gross - C * (1 + p1 / p0)


def bar(i: int) -> tuple[float, float, float, float]:
    """Candle ``i`` minutes after T0: a slow ramp, open 100 + 0.1 i, high +0.2, low -0.1, close +0.1."""
    o = 100.0 + 0.1 * i
    return o, o + 0.2, o - 0.1, o + 0.1


def store_candles(store: Warehouse) -> None:
    minutes = range(-5, 200)
    frame = pl.DataFrame({
        "exchange": "sim", "symbol": "BTC/USDT", "timeframe": "1m", "ts": [T0 + i * MINUTE for i in minutes],
        "open": [bar(i)[0] for i in minutes], "high": [bar(i)[1] for i in minutes],
        "low": [bar(i)[2] for i in minutes], "close": [bar(i)[3] for i in minutes], "volume": 1.0,
    }).with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")))
    store.replace_candles(frame, exchange="sim", timeframe="1m", start=T0 - 5 * MINUTE, end=T0 + 200 * MINUTE,
                          symbols=["BTC/USDT"])


def market_signal(direction: str = "long") -> MarketSignal:
    """Triggered by the candle before T0; target 101.0 (a long reaches it at minute 8), 90 min to live."""
    long = direction == "long"
    return MarketSignal(
        strategy="bos", exchange="sim", symbol="BTC/USDT", timeframe="1m", direction=direction,  # type: ignore[arg-type]
        trigger_ts=T0 - MINUTE, entry=99.9, stop=90.0 if long else 110.0, targets=(101.0,) if long else (99.0,),
        confidence=0.6, risk_level="medium", size=0.5, expires_at=T0 + 90 * MINUTE, factors={"strength": 1.01})


def publish(outbox: Outbox, *, kind: str, origin: str, payload: dict, deliveries: dict[str, tuple[str, datetime]],
            **columns: str) -> int:
    signal_id = outbox.enqueue(kind=kind, origin=origin, base_token=origin, confidence=0.6, payload=payload,
                               now=T0, **columns)
    assert signal_id is not None
    (signal,) = [s for s in outbox.pending() if s.signal_id == signal_id]
    for publisher, (status, at) in deliveries.items():
        outbox.deliver(signal, publisher, lambda: "ok", blacklist=False, status=status, now=at)
    return signal_id


def run(store: Warehouse, cache: Path, at: datetime) -> object:
    resource = SimDexScreenerResource(cache_path=str(cache), seed=42, frozen_clock=at.isoformat())
    clock = resource.run_clock(None)
    with resource.session(clock.now) as session:
        return update_outcomes(store, session.cached, now=clock.now(), costs=DEFAULT_COSTS,
                               max_entry_delay=timedelta(minutes=5), since=at - timedelta(hours=48),
                               settle_grace=timedelta(hours=1))


def sim_price(minute: datetime) -> float:
    pair = SimDexScreener(seed=42, clock=FrozenClock(minute + timedelta(seconds=30)).now).best_pair("solana", MINT)
    assert pair is not None and pair.price_usd is not None
    return pair.price_usd


def row(store: Warehouse, signal_id: int, publisher: str) -> dict:
    frame = read_signal_outcomes(store).filter((pl.col("signal_id") == signal_id) & (pl.col("publisher") == publisher))
    assert frame.height == 1, frame
    return frame.row(0, named=True)


@pytest.fixture
def store(warehouse_url: str) -> Warehouse:
    return Warehouse(make_engine(warehouse_url))


def test_market_outcomes_fill_as_candles_close_per_publisher(store: Warehouse, tmp_path: Path) -> None:
    store_candles(store)  # candles up to T0 + 200 min are stored: only those closed at the clock may count
    outbox = Outbox(store.engine)
    signal_id = publish(outbox, kind="market", origin="bos:1", payload=market_signal().to_record(),
                        symbol="BTC/USDT", direction="long",
                        deliveries={"chat": ("sent", T0 + timedelta(seconds=20)),
                                    "slow": ("sent", T0 + timedelta(minutes=2, seconds=10)),
                                    "review_chat": ("review", T0 + timedelta(seconds=20))})
    run(store, tmp_path / "dex.sqlite", T0 + timedelta(minutes=3, seconds=30))
    early = row(store, signal_id, "chat")
    assert early["entry_ts"] == T0 + MINUTE and early["entry_price"] == pytest.approx(100.1)
    assert early["return_1m"] == pytest.approx(net(100.1, bar(1)[3]))
    assert early["return_2m"] == pytest.approx(net(100.1, bar(2)[3]))
    assert early["return_3m"] is None and early["exit_reason"] == "open" and not early["settled"]
    assert early["missing"] == 0 and early["strategy"] == "bos" and early["source"] == "market"
    assert row(store, signal_id, "slow")["entry_ts"] is None  # its entry candle (T0 + 3 min) is still open
    assert read_signal_outcomes(store).height == 2  # the review delivery published nothing

    run(store, tmp_path / "dex.sqlite", T0 + timedelta(minutes=120))
    chat, slow = row(store, signal_id, "chat"), row(store, signal_id, "slow")
    for h in HORIZONS:
        assert chat[f"return_{h}m"] == pytest.approx(net(100.1, bar(h)[3])), h
        assert slow[f"return_{h}m"] == pytest.approx(net(100.3, bar(2 + h)[3])), h
    assert (chat["exit_reason"], chat["exit_ts"], chat["exit_price"]) == ("target", T0 + 8 * MINUTE, 101.0)
    assert chat["pnl"] == pytest.approx(net(100.1, 101.0)) and chat["settled"] and slow["settled"]
    before = read_signal_outcomes(store)
    run(store, tmp_path / "dex.sqlite", T0 + timedelta(minutes=121))  # settled: nothing is rewritten
    assert read_signal_outcomes(store).equals(before)


def test_a_short_signal_ends_at_its_trade_time_and_a_bad_payload_stops_nothing(store: Warehouse,
                                                                                tmp_path: Path) -> None:
    store_candles(store)
    outbox = Outbox(store.engine)
    short = publish(outbox, kind="market", origin="bos:short", payload=market_signal("short").to_record(),
                    deliveries={"chat": ("sent", T0)})
    broken = publish(outbox, kind="market", origin="bos:broken", payload={"strategy": "bos", "symbol": "X"},
                     deliveries={"chat": ("sent", T0)})
    report = run(store, tmp_path / "dex.sqlite", T0 + timedelta(minutes=95))
    outcome = row(store, short, "chat")
    # entry T0's open 100.0; the ramp never falls to 99.0 nor rises to 110: out at the close of minute 89
    # (signal life: trigger close T0 -> expires T0 + 90 min, so 90 minutes from the entry candle)
    assert (outcome["exit_reason"], outcome["exit_ts"]) == ("time", T0 + 89 * MINUTE)
    assert outcome["pnl"] == pytest.approx(net(100.0, bar(89)[3], "short"))
    assert outcome["return_15m"] == pytest.approx(net(100.0, bar(14)[3], "short"))
    assert f"signal {broken}" in report.errors and "payload" in report.errors[f"signal {broken}"]
    assert read_signal_outcomes(store).get_column("signal_id").to_list() == [short]


def test_social_calls_are_snapshotted_each_minute_and_a_missed_minute_stays_null(store: Warehouse,
                                                                               tmp_path: Path) -> None:
    outbox = Outbox(store.engine)
    signal_id = publish(outbox, kind="social", origin=f"call:1:solana:{MINT}", chain="solana", address=MINT,
                        symbol="GEM", source="telegram", channel="alpha",
                        payload={"symbol": "GEM"}, deliveries={"chat": ("sent", T0 + timedelta(seconds=20))})
    skipped = T0 + 4 * MINUTE  # the run due at entry + 3 min never happens (daemon down)
    for minute in range(0, 19):
        at = T0 + minute * MINUTE + timedelta(seconds=40)
        if at - timedelta(seconds=40) != skipped:
            run(store, tmp_path / "dex.sqlite", at)
        if minute == 2:
            partial = row(store, signal_id, "chat")
            assert partial["return_1m"] is not None and partial["return_2m"] is None and not partial["settled"]
    outcome = row(store, signal_id, "chat")
    entry = T0 + MINUTE  # first whole minute after publication
    assert outcome["entry_ts"] == entry and outcome["entry_price"] == pytest.approx(sim_price(entry))
    for h in HORIZONS:
        expected = None if h == 3 else pytest.approx(net(sim_price(entry), sim_price(entry + h * MINUTE)))
        assert outcome[f"return_{h}m"] == expected, h
    assert outcome["missing"] == 1 and outcome["settled"] and outcome["exchange"] == "solana"
    assert (outcome["strategy"], outcome["source"], outcome["channel"]) == ("social", "telegram", "alpha")
    minutes = read_snapshots(store, [signal_id]).get_column("minute_ts").to_list()
    assert minutes == [entry + h * MINUTE for h in (0, 1, 2, 5, 10, 15)]  # only the minutes it needs


def test_the_asset_materialises_on_the_frozen_clock(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    store = Warehouse(make_engine(url))
    store_candles(store)
    outbox = Outbox(store.engine)
    signal_id = publish(outbox, kind="market", origin="bos:1", payload=market_signal().to_record(),
                        deliveries={"chat": ("sent", T0)})
    at = T0 + timedelta(minutes=30)
    resources = {"warehouse": WarehouseResource(url=url),
                 "dexscreener": SimDexScreenerResource(cache_path=str(tmp_path / "dex.sqlite"),
                                                       frozen_clock=at.isoformat())}
    result = materialize([signal_outcomes, outcomes_sound], resources=resources)
    assert result.success
    (check,) = result.get_asset_check_evaluations()
    assert check.passed and check.metadata["rows_checked"].value == 1
    (materialization,) = result.asset_materializations_for_node("signal_outcomes")
    metadata = materialization.metadata
    assert metadata["rows_updated"].value == 1 and metadata["as_of"].value == at.isoformat()
    assert json.loads(json.dumps(metadata["errors"].value)) == {}
    assert "| " + str(signal_id) + " | chat | market | bos |" in metadata["outcomes"].value
    assert row(store, signal_id, "chat")["exit_reason"] == "target"


def test_the_check_fails_on_an_entry_before_publication(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    store = Warehouse(make_engine(url))
    frame = read_signal_outcomes(store).drop("updated_at")
    row = dict.fromkeys(frame.columns)
    row.update(signal_id=7, publisher="chat", kind="market", strategy="bos", source="market", direction="long",
               published_at=T0, entry_ts=T0 - MINUTE, entry_price=100.0, return_1m=0.01, missing=0, settled=False)
    upsert_outcomes(store, pl.DataFrame([row]), now=T0)
    resources = {"warehouse": WarehouseResource(url=url),
                 "dexscreener": SimDexScreenerResource(cache_path=str(tmp_path / "dex.sqlite"),
                                                       frozen_clock=(T0 + MINUTE).isoformat())}
    result = materialize([signal_outcomes, outcomes_sound], selection=AssetSelection.checks(outcomes_sound),
                         resources=resources, raise_on_error=False)
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed and check.metadata["violations"].value == 1
    assert "entry before publication" in check.metadata["examples"].value
