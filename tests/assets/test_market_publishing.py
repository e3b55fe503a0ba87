"""Market signals and funding alerts through the outbox and the real publish op to the loopback
Telegram stand-in, on a frozen clock: fresh ones arrive formatted, stale ones are recorded
expired and not sent, routing filters them per publisher, and social calls go as before.

Rows are enqueued as the live path does: kind ``market`` (``funding``), symbol, direction,
confidence, a stable origin and ``MarketSignal.to_record()`` (``FundingAlert.to_record()``) as
the payload.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance

from assets.publishing import PublishersResource, publish_pending
from ml.strategies.funding import FundingAlert
from ml.strategies.signal import MarketSignal
from orchestration.jobs import publish_signals_job
from resources.publishers.flood import FloodGate
from resources.publishers.outbox import Outbox
from resources.publishers.senders import ConsolePublisher, Publisher, TelegramBotPublisher
from resources.social_config import PublisherConfig
from resources.warehouse.engine import make_engine
from resources.warehouse.resource import WarehouseResource
from tests.assets.test_publishing import SECRET, Receiver, receiver  # noqa: F401  (the fixture)
from tests.resources.publishers.fake_clock import FakeClock
from tests.support.fixtures import shared_fixtures_dir
from tests.support.telegram_standin import TelegramStandIn

NOW = datetime(2026, 3, 2, 9, 30, 0, tzinfo=UTC)


def market(symbol: str, *, closed_s_ago: float, direction: str = "long", strategy: str = "bos",
           risk: str = "low", confidence: float = 0.7, entry: float = 100.0) -> MarketSignal:
    """A 1m signal whose trigger candle closed ``closed_s_ago`` seconds before NOW."""
    trigger = NOW - timedelta(seconds=closed_s_ago) - timedelta(minutes=1)
    sign = 1.0 if direction == "long" else -1.0
    return MarketSignal(strategy=strategy, exchange="sim", symbol=symbol, timeframe="1m", direction=direction,
                        trigger_ts=trigger, entry=entry, stop=entry * (1 - 0.08 * sign),
                        targets=(entry * (1 + 0.02 * sign), entry * (1 + 0.05 * sign)), confidence=confidence,
                        risk_level=risk, size=0.5, expires_at=trigger + timedelta(minutes=90),
                        factors={"strength": 1.01})


def enqueue_market(outbox: Outbox, signal: MarketSignal) -> int:
    origin = f"{signal.strategy}:{signal.exchange}:{signal.symbol}:{signal.direction}:{signal.trigger_ts.isoformat()}"
    signal_id = outbox.enqueue(kind="market", origin=origin, base_token=signal.symbol.split("/")[0],
                               symbol=signal.symbol, direction=signal.direction, confidence=signal.confidence,
                               payload=signal.to_record(), now=NOW)
    assert signal_id is not None
    return signal_id


def enqueue_funding(outbox: Outbox, alert: FundingAlert, confidence: float) -> int:
    signal_id = outbox.enqueue(kind="funding", origin=f"funding:{alert.exchange}:{alert.symbol}:{alert.ts.isoformat()}",
                               base_token=alert.symbol.split("/")[0], symbol=alert.symbol,
                               direction="short" if alert.side == "longs_pay" else "long", confidence=confidence,
                               payload=alert.to_record(), now=NOW)
    assert signal_id is not None
    return signal_id


def _config(tmp_path: Path, token_env: str, hook_url: str) -> Path:
    config = {
        "max_signal_age_s": 60,
        "publishers": [
            {"name": "console", "kind": "console"},
            {"name": "market_chat", "kind": "telegram_bot", "chat_id": "-1001", "token_env": token_env,
             "kinds": ["market", "funding"], "strategies": ["bos", "ema_cross", "funding"], "min_confidence": 0.5,
             "muted_symbols": ["DOGE"], "risk_levels": ["low", "medium"]},
            {"name": "social_chat", "kind": "telegram_bot", "chat_id": "-1002", "token_env": token_env,
             "kinds": ["social"], "min_confidence": 0.7, "chains": ["solana"]},
            {"name": "bot", "kind": "webhook", "url": hook_url, "secret_env": "HOOK_SECRET", "kinds": ["market"]},
        ],
    }
    path = tmp_path / "sources.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_the_publish_job_sends_fresh_signals_and_expires_stale_ones(
        tmp_path: Path, sqlite_url: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    outbox = Outbox(make_engine(sqlite_url))
    btc = market("BTC/USDT", closed_s_ago=12, entry=65000.0, confidence=0.8)
    eth = market("ETH/USDT", closed_s_ago=61, direction="short", strategy="ema_cross", risk="medium",
                 confidence=0.79)  # one second past MAX_SIGNAL_AGE
    doge = market("DOGE/USDT", closed_s_ago=5, confidence=0.78)
    sol = market("SOL/USDT", closed_s_ago=5, risk="high", confidence=0.77)
    ids = {name: enqueue_market(outbox, s) for name, s in (("btc", btc), ("eth", eth), ("doge", doge), ("sol", sol))}
    alert = FundingAlert(strategy="funding", exchange="sim", symbol="XRP/USDT:USDT", ts=NOW - timedelta(seconds=20),
                         side="longs_pay", funding_rate=0.0025, threshold=0.001, annualised_pct=273.75,
                         next_funding_ts=NOW + timedelta(hours=6), mark_price=0.5234, open_interest_value=4.2e8)
    ids["funding"] = enqueue_funding(outbox, alert, confidence=0.6)
    ids["social"] = outbox.enqueue(kind="social", origin="validation:1", base_token="solana:tokA", confidence=0.9,
                                   chain="solana", address="tokA", source="telegram", channel="@alpha",
                                   payload={"symbol": "TOKA", "chain": "solana", "address": "tokA"}, now=NOW)
    with TelegramStandIn(shared_fixtures_dir() / "telegram" / "bot_api") as standin:
        monkeypatch.setenv("MARKET_BOT_TOKEN", standin.token)
        monkeypatch.setenv("HOOK_SECRET", SECRET)
        resources = {
            "warehouse": WarehouseResource(url=sqlite_url),
            "publishers": PublishersResource(config_path=str(_config(tmp_path, "MARKET_BOT_TOKEN", receiver.url)),
                                             home=str(tmp_path), telegram_base_url=standin.base_url,
                                             frozen_clock=NOW.isoformat()),
        }
        with DagsterInstance.ephemeral() as instance:
            result = publish_signals_job().execute_in_process(resources=resources, instance=instance)
            assert result.success
            log = [e.user_message for e in instance.all_logs(result.run_id)]
        market_chat = standin.sent_to("-1001")
        social_chat = standin.sent_to("-1002")
        assert not standin.violations

    # a fresh market signal arrives formatted, then the funding alert (lower confidence)
    assert [m.plain_text.splitlines()[1] for m in market_chat] == [
        "🟢 LONG BTC/USDT · sim · 1m", "Longs pay shorts (longs crowded) on XRP/USDT:USDT · sim"]
    assert market_chat[0].plain_text.splitlines()[2:5] == [
        "Entry 65,000", "Stop 59,800 (-8.00%)", "Targets T1 66,300 (+2.00%) · T2 68,250 (+5.00%)"]
    assert {"type": "bold", "offset": 0, "length": len("Market signal")} in market_chat[0].entities
    assert "Funding +0.2500% per interval (+273.8% a year)" in market_chat[1].plain_text

    by_signal = {d.signal_id: d for d in outbox.deliveries(publisher="market_chat")}
    assert {name: by_signal[ids[name]].status for name in ids} == {
        "btc": "sent", "eth": "expired", "doge": "skipped", "sol": "skipped", "funding": "sent", "social": "skipped"}
    assert by_signal[ids["eth"]].reason == "61s old at its turn, over MAX_SIGNAL_AGE 60s"
    assert "muted" in (by_signal[ids["doge"]].reason or "")
    assert "risk level high" in (by_signal[ids["sol"]].reason or "")
    assert "kind social" in (by_signal[ids["social"]].reason or "")
    # the expired signal went to nobody; it is closed as expired, the others as done
    assert {d.publisher: d.status for d in outbox.deliveries() if d.signal_id == ids["eth"]} == {
        "console": "expired", "market_chat": "expired", "bot": "expired", "social_chat": "skipped"}
    assert outbox.status_of(ids["eth"]) == "expired"
    assert {outbox.status_of(ids[n]) for n in ids if n != "eth"} == {"done"}
    # ... and it is visible in the op's report and in the run log
    outcomes = result.output_for_node("publish_signals_op")
    # console 5 (all but ETH), market_chat 2, social_chat 1, webhook 3 (its kind: market; no risk filter)
    assert outcomes["expired"] == 3 and outcomes["sent"] == 5 + 2 + 1 + 3
    assert any(f"signal {ids['eth']} expired for market_chat" in (line or "") for line in log)

    # social calls behave as before
    assert len(social_chat) == 1 and "TOKA" in social_chat[0].plain_text

    # the console and the webhook carry the same message the chat shows
    console = [json.loads(line) for line in (tmp_path / "publications.jsonl").read_text().splitlines()]
    console_btc = next(line for line in console if line["signal_id"] == ids["btc"])
    assert console_btc["text"] == market_chat[0].plain_text and console_btc["kind"] == "market"
    assert {line["signal_id"] for line in console} == {ids[n] for n in ("btc", "doge", "sol", "funding", "social")}
    hooked = {body["signal_id"]: body for body in receiver.accepted}
    assert set(hooked) == {ids["btc"], ids["doge"], ids["sol"]}  # funding alerts are not its kind
    assert hooked[ids["btc"]]["text"] == market_chat[0].plain_text
    assert {k: hooked[ids["btc"]][k] for k in ("strategy", "symbol", "direction", "entry", "stop", "targets",
                                               "risk_reward", "trigger_ts")} == {
        k: btc.to_record()[k] for k in ("strategy", "symbol", "direction", "entry", "stop", "targets", "risk_reward",
                                        "trigger_ts")}


def test_what_the_flood_limits_would_hold_past_max_age_expires_and_other_publishers_still_get_it(
        tmp_path: Path, sqlite_url: str) -> None:
    clock = FakeClock(start=0.0)
    outbox = Outbox(make_engine(sqlite_url))
    ids = [enqueue_market(outbox, market(f"C{i:02d}/USDT", closed_s_ago=5, confidence=0.9 - i / 100))
           for i in range(24)]
    with TelegramStandIn(shared_fixtures_dir() / "telegram" / "bot_api", clock=clock) as standin:
        group = PublisherConfig(name="group", kind="telegram_bot", chat_id="-1003", chat_kind="group", priority=10)
        publishers: list[Publisher] = [
            TelegramBotPublisher(group, token=standin.token, base_url=standin.base_url,
                                 flood=FloodGate(clock=clock, sleep=clock.sleep)),
            ConsolePublisher(PublisherConfig(name="console", kind="console"), log_path=tmp_path / "p.jsonl"),
        ]
        report = publish_pending(outbox, publishers, clock=lambda: NOW + timedelta(seconds=clock.now))
        for publisher in publishers:
            publisher.close()
        sent = standin.sent_to("-1003")
        assert not standin.violations
    # 20 a minute in one group: sends at 0..19 s; the 21st could only go at 60 s, when it is 65 s old
    assert [m.plain_text.splitlines()[1] for m in sent] == [f"🟢 LONG C{i:02d}/USDT · sim · 1m" for i in range(20)]
    group_deliveries = {d.signal_id: d for d in outbox.deliveries(publisher="group")}
    assert [group_deliveries[i].status for i in ids] == ["sent"] * 20 + ["expired"] * 4
    assert "flood limits would hold it 41s" in (group_deliveries[ids[20]].reason or "")
    assert "(it would be 65s old)" in (group_deliveries[ids[20]].reason or "")
    assert report.per_publisher["group"] == {"sent": 20, "expired": 4}
    assert report.per_publisher["console"] == {"sent": 24}  # the console is not held by the chat's limits
    assert [e[0] for e in report.expired] == ids[20:]
    assert {outbox.status_of(i) for i in ids} == {"done"}


def test_the_social_paths_own_publishing_leaves_market_signals_to_the_publish_op(tmp_path: Path,
                                                                                 sqlite_url: str) -> None:
    """The validation op publishes on its stream's clock (any date): a market signal aged on that
    clock would be expired wrongly, so that op drains social calls only."""
    outbox = Outbox(make_engine(sqlite_url))
    market_id = enqueue_market(outbox, market("BTC/USDT", closed_s_ago=5))
    social_id = outbox.enqueue(kind="social", origin="validation:9", base_token="solana:tokB", confidence=0.9,
                               chain="solana", address="tokB", payload={"symbol": "TOKB"}, now=NOW)
    console: list[Publisher] = [ConsolePublisher(PublisherConfig(name="console", kind="console"),
                                                 log_path=tmp_path / "p.jsonl")]
    stream_clock = NOW + timedelta(days=400)
    report = publish_pending(outbox, console, now=stream_clock, kinds=("social",))
    assert report.outcomes == {"sent": 1} and [d.signal_id for d in outbox.deliveries()] == [social_id]
    assert [s.signal_id for s in outbox.pending()] == [market_id]
    assert publish_pending(outbox, console, now=NOW).outcomes == {"sent": 1}  # the publish op, on its clock
    assert outbox.status_of(market_id) == "done"


def test_a_malformed_market_row_is_recorded_failed_and_stops_nothing(tmp_path: Path, sqlite_url: str) -> None:
    outbox = Outbox(make_engine(sqlite_url))
    good = enqueue_market(outbox, market("BTC/USDT", closed_s_ago=5, confidence=0.5))
    record = market("ETH/USDT", closed_s_ago=5).to_record()
    no_entry = outbox.enqueue(kind="market", origin="bad:1", base_token="ETH", symbol="ETH/USDT", confidence=0.9,
                              payload={**record, "entry": None}, now=NOW)
    bad_timeframe = outbox.enqueue(kind="market", origin="bad:2", base_token="ETH", symbol="ETH/USDT",
                                   confidence=0.8, payload={**record, "timeframe": "7m"}, now=NOW)
    console: list[Publisher] = [ConsolePublisher(PublisherConfig(name="console", kind="console"),
                                                 log_path=tmp_path / "p.jsonl")]
    report = publish_pending(outbox, console, now=NOW)
    statuses = {d.signal_id: (d.status, d.reason or "") for d in outbox.deliveries()}
    assert statuses[good] == ("sent", "")
    assert statuses[no_entry][0] == "failed" and "lacks entry" in statuses[no_entry][1]
    assert statuses[bad_timeframe][0] == "failed" and "unknown timeframe '7m'" in statuses[bad_timeframe][1]
    assert set(report.errors) == {f"console signal {no_entry}", f"console signal {bad_timeframe}"}
    assert outbox.pending() == []  # a payload that cannot be rendered is not retried forever
