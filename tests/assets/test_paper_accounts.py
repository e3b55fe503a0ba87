"""paper_accounts on SQLite and a real PostgreSQL: published market signals from the outbox, stored 1m
candles arriving in two steps, incremental updates equal to one simulation over everything."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from assets.paper import PaperAccountsConfig, config_version, update_accounts
from ml.marketdata.frames import CANDLE_SCHEMA
from ml.signals.paper import PaperConfig, simulate
from ml.strategies.signal import MarketSignal
from resources.publishers.outbox import Outbox
from resources.warehouse.paper import (
    PaperLedger,
    market_signal_from_record,
    published_market_signals,
)
from resources.warehouse.store import Warehouse
from tests.ml.signals.test_paper_resume import SYMBOLS, scenario, without_repeats

START = datetime(2024, 3, 1, 22, 0, tzinfo=UTC)  # crosses midnight
NOW = datetime(2024, 3, 2, 12, 0, tzinfo=UTC)  # the frozen clock of the outbox
MINUTE = timedelta(minutes=1)
CONFIG = PaperConfig(max_open_positions=3, daily_loss_limit=0.02)
SENT_AFTER = timedelta(seconds=20)


def as_traded(signal: MarketSignal) -> MarketSignal:
    """Sent 20 s after its trigger candle closed: decided a minute later, as if triggered a minute later."""
    return replace(signal, trigger_ts=signal.trigger_ts + MINUTE)


def store_candles(store: Warehouse, candles: pl.DataFrame, end: datetime) -> None:
    part = candles.filter(pl.col("ts") < end).with_columns(timeframe=pl.lit("1m"), volume=pl.lit(1.0))
    store.replace_candles(part.select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()]), exchange="binance",
                          timeframe="1m", start=START, end=end, symbols=SYMBOLS)


def publish(outbox: Outbox, signals: dict[int, MarketSignal], publishers: dict[str, set[int]]) -> None:
    """Queue each signal once and record a delivery per publisher: sent to those listing it, skipped by others."""
    for number, signal in signals.items():
        signal_id = outbox.enqueue(kind="market", origin=f"test:{number}", base_token=f"{signal.symbol}#{number}",
                                   confidence=signal.confidence, symbol=signal.symbol, direction=signal.direction,
                                   payload=signal.to_record(), now=NOW)
        assert signal_id == number
    for queued in outbox.pending(limit=10_000):
        number = queued.signal_id
        if number not in signals:
            continue  # queued and delivered by an earlier call
        sent_at = signals[number].trigger_ts + MINUTE + SENT_AFTER  # 20 s after the trigger candle closed
        for publisher, chosen in publishers.items():
            if number in chosen:
                outbox.deliver(queued, publisher, lambda: "ref", now=sent_at)
            else:
                outbox.skip(queued, publisher, "routing", now=sent_at)


def expected_positions(signals: dict[int, MarketSignal], candles: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    traded = {i: as_traded(s) for i, s in signals.items()}
    whole = simulate(list(traded.values()), candles, CONFIG)
    ids = {(s.strategy, s.exchange, s.symbol, s.direction, s.trigger_ts): i for i, s in traded.items()}
    key = ("strategy", "exchange", "symbol", "direction", "trigger_ts")
    trades = whole.trades.with_columns(signal_id=pl.struct(key).map_elements(
        lambda k: ids[tuple(k[c] for c in key)], return_dtype=pl.Int64)).sort("signal_id")
    return trades, without_repeats(whole.equity)


def test_incremental_accounts_equal_one_simulation(warehouse: Warehouse) -> None:
    signal_list, candles = scenario(START, seed=3, minutes=300, count=60)
    signals = dict(enumerate(sorted(signal_list, key=lambda s: s.trigger_ts), start=1))
    alpha = set(signals)
    beta = {i for i in signals if i % 3}
    outbox = Outbox(warehouse.engine)
    # Cut the history two minutes into a trade that lasts longer: it is open when the first run looks.
    whole = simulate([as_traded(s) for s in signals.values()], candles, CONFIG).trades
    held = whole.filter((pl.col("entry_ts") >= START + 120 * MINUTE) & (pl.col("exit_ts") - pl.col("entry_ts") > 3 * MINUTE))
    cut = held["entry_ts"][0] + 2 * MINUTE
    early = {i: s for i, s in signals.items() if s.trigger_ts + MINUTE + SENT_AFTER < cut}

    store_candles(warehouse, candles, cut)
    publish(outbox, early, {"alpha": alpha, "beta": beta})
    first, failures = update_accounts(warehouse, CONFIG)
    assert failures == {}
    assert [(u.publisher, u.since) for u in first] == [("alpha", None), ("beta", None)]
    ledger = PaperLedger(warehouse)
    stored = ledger.positions("alpha")
    assert set(stored["status"]) == {"rejected", "open", "closed"}  # positions still open at the newest candle

    store_candles(warehouse, candles, START + 300 * MINUTE)
    publish(outbox, {i: s for i, s in signals.items() if i not in early}, {"alpha": alpha, "beta": beta})
    second, failures = update_accounts(warehouse, CONFIG)
    assert failures == {}
    assert all(u.since is not None and START < u.since <= cut for u in second)  # resumed, not recomputed
    assert all(u.recomputed < len(signals) for u in second)

    for publisher, chosen in (("alpha", alpha), ("beta", beta)):
        mine = {i: s for i, s in signals.items() if i in chosen}
        trades, equity = expected_positions(mine, candles)
        positions = ledger.positions(publisher)
        assert positions["signal_id"].sort().to_list() == sorted(mine)  # every signal decided, once
        closed = positions.filter(pl.col("status") != "rejected").sort("signal_id")
        assert closed["signal_id"].to_list() == trades["signal_id"].to_list()
        for column, theirs in (("entry_ts", "entry_ts"), ("exit_ts", "exit_ts"), ("pnl", "pnl"),
                               ("net_return", "return"), ("quantity", "quantity")):
            assert closed[column].to_list() == trades[theirs].cast(closed[column].dtype).to_list(), column
        marks = ledger.equity(publisher)
        assert marks.select("ts", "equity", "cash", "open_positions").equals(
            equity.select(pl.col("ts").cast(marks["ts"].dtype), "equity", "cash", "open_positions")), publisher
        assert set(positions["config_version"]) == set(marks["config_version"]) == {config_version(CONFIG)}
        stored_triggers = dict(positions.select("signal_id", "trigger_ts").iter_rows())
        assert all(stored_triggers[i] == s.trigger_ts for i, s in mine.items())  # the signal's own trigger
        # Entered at the first candle after the message went out, not at the trigger candle's close.
        assert (closed["entry_ts"] >= closed["trigger_ts"] + 2 * MINUTE).all()
    assert set(ledger.positions()["reason"].drop_nulls()) >= {"max_open_positions", "stop", "target"}

    before = (ledger.positions(), ledger.equity())
    again, _ = update_accounts(warehouse, CONFIG)
    assert [u.recomputed for u in again] == [0, 0]  # nothing new: nothing written
    assert ledger.positions().equals(before[0]) and ledger.equity().equals(before[1])

    other = PaperAccountsConfig(starting_equity=5_000.0).paper_config()
    rebuilt, _ = update_accounts(warehouse, other)
    assert [u.since for u in rebuilt] == [None, None]  # other rules: recomputed from the start
    assert set(ledger.positions()["config_version"]) == {config_version(other)}
    assert ledger.equity("alpha")["equity"].max() < 6_000


def test_an_unreadable_payload_is_reported_and_the_rest_is_traded(warehouse: Warehouse) -> None:
    signal_list, candles = scenario(START, seed=4, minutes=120, count=10)
    store_candles(warehouse, candles, START + 120 * MINUTE)
    outbox = Outbox(warehouse.engine)
    signals = dict(enumerate(sorted(signal_list, key=lambda s: s.trigger_ts), start=1))
    publish(outbox, signals, {"alpha": set(signals)})
    bad_id = outbox.enqueue(kind="market", origin="test:bad", base_token="X", confidence=0.5,
                            payload={"strategy": "bos", "symbol": "BTC/USDT"}, now=NOW)
    assert bad_id is not None
    queued = next(s for s in outbox.pending() if s.signal_id == bad_id)
    outbox.deliver(queued, "alpha", lambda: "ref", now=NOW)
    updates, failures = update_accounts(warehouse, CONFIG)
    assert failures == {f"signal {bad_id}": "unreadable payload: market signal payload lacks 'exchange'"}
    assert updates[0].positions == len(signals)
    assert PaperLedger(warehouse).positions("alpha")["signal_id"].sort().to_list() == sorted(signals)


def test_payload_round_trip_and_only_sent_deliveries_count(warehouse: Warehouse) -> None:
    signal_list, _ = scenario(START, seed=5, minutes=60, count=4)
    signals = dict(enumerate(signal_list, start=1))
    assert all(market_signal_from_record(s.to_record()) == s for s in signals.values())
    publish(Outbox(warehouse.engine), signals, {"alpha": {1, 2}, "beta": {3}})
    published, bad = published_market_signals(warehouse.engine)
    assert bad == {}
    assert [(p.signal_id, p.publisher) for p in published] == [(1, "alpha"), (2, "alpha"), (3, "beta")]
    assert published[0].signal == signals[1]
    assert published[0].delivered_at == signals[1].trigger_ts + MINUTE + SENT_AFTER
    with pytest.raises(ValueError, match="at least one target"):
        market_signal_from_record({**signals[1].to_record(), "targets": []})


@pytest.mark.parametrize(("bound", "expected"), [(25, 10), (35, 35), (45, 40), (20, 10), (30, 30)])
def test_the_resume_point_is_before_any_position_spanning_it(bound: int, expected: int) -> None:
    from assets.paper import _flat_point

    spans = [(10, 20), (15, 30), (40, 50)]  # minutes after START: entry, exit
    kept = pl.DataFrame({"status": ["closed"] * 3 + ["rejected"],
                         "entry_ts": [START + a * MINUTE for a, _ in spans] + [None],
                         "exit_ts": [START + b * MINUTE for _, b in spans] + [None]},
                        schema_overrides={"entry_ts": pl.Datetime("us", "UTC"), "exit_ts": pl.Datetime("us", "UTC")})
    assert _flat_point(START + bound * MINUTE, kept) == START + expected * MINUTE


def test_the_asset_materialises_tables_and_plots(sqlite_url: str) -> None:
    from dagster import materialize

    from assets.paper import paper_accounts
    from resources.warehouse.engine import make_engine
    from resources.warehouse.resource import WarehouseResource

    store = Warehouse(make_engine(sqlite_url))
    signal_list, candles = scenario(START, seed=3, minutes=200, count=30)
    store_candles(store, candles, START + 200 * MINUTE)
    signals = dict(enumerate(sorted(signal_list, key=lambda s: s.trigger_ts), start=1))
    publish(Outbox(store.engine), signals, {"alpha": set(signals), "beta": {1, 2, 3}})
    result = materialize([paper_accounts], resources={"warehouse": WarehouseResource(url=sqlite_url)},
                         run_config={"ops": {"paper_accounts": {"config": {"max_open_positions": 2}}}})
    assert result.success
    metadata = result.asset_materializations_for_node("paper_accounts")[0].metadata
    accounts = metadata["accounts"].value
    assert accounts.splitlines()[0].startswith("| publisher | signals | closed | open | rejected")
    assert "| alpha | 30 |" in accounts and "| beta | 3 |" in accounts
    assert "max_open_positions" in metadata["rejections"].value
    assert metadata["positions"].value == 33
    for name in ("equity_alpha", "drawdown_alpha", "equity_beta", "drawdown_beta"):
        assert metadata[name].value.startswith(f"![{name.split('_')[1]} paper ") and "data:image/png;base64," in metadata[name].value
    stored = PaperLedger(store).positions("alpha")
    assert stored.filter(pl.col("status") == "closed").height > 5
    equity = PaperLedger(store).equity("alpha")["equity"].to_list()
    closed = stored.filter(pl.col("status") == "closed")["pnl"].sum()
    assert stored.filter(pl.col("status") == "open").is_empty()
    assert equity[-1] == pytest.approx(10_000 + closed)  # every trade closed: the last mark is cash


@pytest.mark.parametrize(("sent_after_close", "decided_after_close"), [
    (timedelta(seconds=-5), timedelta(0)),  # sent before its candle closed (a clock skew): at the close
    (timedelta(0), timedelta(0)),  # sent exactly at the close: that minute's candle
    (timedelta(seconds=0.5), MINUTE),  # half a second late: the next minute's candle
    (timedelta(minutes=3, seconds=59), 4 * MINUTE),
    (timedelta(hours=5), timedelta(minutes=20)),  # sent after its expiry (20 min after the close): no candle left
])
def test_a_signal_is_decided_at_the_first_minute_after_it_was_sent(sent_after_close: timedelta,
                                                                   decided_after_close: timedelta) -> None:
    from assets.paper import as_sent
    from resources.warehouse.paper import PublishedSignal

    signal = MarketSignal(strategy="ema_cross", exchange="binance", symbol="BTC/USDT", timeframe="15m",
                          direction="long", trigger_ts=START, entry=100.0, stop=95.0, targets=(110.0,),
                          confidence=0.6, risk_level="low", size=0.5, expires_at=START + 35 * MINUTE)
    close = START + 15 * MINUTE
    traded = as_sent(PublishedSignal(1, "alpha", close + sent_after_close, signal))
    assert traded.trigger_ts + 15 * MINUTE == close + decided_after_close
    assert replace(traded, trigger_ts=signal.trigger_ts) == signal  # nothing else changes


def test_a_signal_sent_after_its_expiry_is_rejected_without_candles(warehouse: Warehouse) -> None:
    signal_list, candles = scenario(START, seed=6, minutes=120, count=1)
    store_candles(warehouse, candles, START + 120 * MINUTE)
    signal = signal_list[0]
    outbox = Outbox(warehouse.engine)
    signal_id = outbox.enqueue(kind="market", origin="late", base_token="late", confidence=0.5,
                               payload=signal.to_record(), now=NOW)
    queued = next(s for s in outbox.pending() if s.signal_id == signal_id)
    outbox.deliver(queued, "alpha", lambda: "ref", now=signal.expires_at + MINUTE)
    updates, failures = update_accounts(warehouse, CONFIG)
    assert failures == {} and updates[0].positions == 1
    row = PaperLedger(warehouse).positions("alpha").row(0, named=True)
    assert (row["status"], row["reason"], row["decided_at"]) == ("rejected", "no_candles", signal.expires_at)
