"""The outbox on SQLite and PostgreSQL: one publication per (publisher, token), ever."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from resources.publishers.outbox import Outbox
from resources.warehouse.engine import make_engine

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[3]


def _enqueue(outbox: Outbox, origin: str, token: str, confidence: float = 0.8) -> int:
    signal_id = outbox.enqueue(kind="social", origin=origin, base_token=token, confidence=confidence,
                               payload={"text": origin}, chain="solana", address=token, now=T0)
    assert signal_id is not None
    return signal_id


def test_enqueue_is_idempotent(warehouse_url: str) -> None:
    outbox = Outbox(make_engine(warehouse_url))
    first = _enqueue(outbox, "validation:1", "tokA")
    assert outbox.enqueue(kind="social", origin="validation:1", base_token="tokA", confidence=0.9,
                          payload={}, now=T0) is None
    assert [s.signal_id for s in outbox.pending()] == [first]


def test_a_token_is_published_once_per_publisher(warehouse_url: str) -> None:
    outbox = Outbox(make_engine(warehouse_url))
    _enqueue(outbox, "validation:1", "tokA", 0.9)
    _enqueue(outbox, "validation:2", "tokA", 0.8)  # an echo validated separately
    _enqueue(outbox, "validation:3", "tokB", 0.7)
    sent: list[tuple[str, int]] = []
    for publisher in ("alpha_chat", "beta_chat"):
        for signal in outbox.pending():
            outbox.deliver(signal, publisher, lambda s=signal, p=publisher: sent.append((p, s.signal_id)) or "ok",
                           now=T0)
    assert [(p, outbox_id) for p, outbox_id in sent] == [("alpha_chat", 1), ("alpha_chat", 3),
                                                         ("beta_chat", 1), ("beta_chat", 3)]
    skipped = [d for d in outbox.deliveries(publisher="alpha_chat") if d.status == "skipped"]
    assert len(skipped) == 1 and "already published by signal 1" in (skipped[0].reason or "")
    # a second publish run changes nothing
    for signal in outbox.pending():
        assert outbox.deliver(signal, "alpha_chat", lambda: pytest.fail("sent twice"), now=T0).status == "already"


def test_a_failed_send_releases_the_claim(warehouse_url: str) -> None:
    outbox = Outbox(make_engine(warehouse_url))
    _enqueue(outbox, "validation:1", "tokA")
    (signal,) = outbox.pending()

    def fail() -> str:
        raise ConnectionError("telegram unreachable")

    with pytest.raises(ConnectionError):
        outbox.deliver(signal, "alpha_chat", fail, now=T0)
    assert outbox.claims("alpha_chat") == {} and outbox.deliveries() == []
    assert outbox.deliver(signal, "alpha_chat", lambda: "42", now=T0).status == "sent"


def test_an_expired_claim_can_be_published_again(warehouse_url: str) -> None:
    outbox = Outbox(make_engine(warehouse_url))
    _enqueue(outbox, "validation:1", "tokA")
    _enqueue(outbox, "validation:2", "tokA")
    first, second = sorted(outbox.pending(), key=lambda s: s.signal_id)
    outbox.deliver(first, "alpha_chat", lambda: "a", expires_at=T0 + timedelta(hours=6), now=T0)
    assert outbox.deliver(second, "alpha_chat", lambda: "b", now=T0 + timedelta(hours=1)).status == "skipped"
    _enqueue(outbox, "validation:3", "tokA")
    third = max(outbox.pending(), key=lambda s: s.signal_id)
    assert outbox.deliver(third, "alpha_chat", lambda: "c", now=T0 + timedelta(hours=7)).status == "sent"
    assert outbox.claims("alpha_chat") == {"tokA": third.signal_id}


def test_token_exceptions_bypass_the_blacklist(warehouse_url: str) -> None:
    outbox = Outbox(make_engine(warehouse_url))
    for i in range(3):
        _enqueue(outbox, f"validation:{i}", "usdc")
    statuses = [outbox.deliver(s, "alpha_chat", lambda: "x", blacklist=False, now=T0).status
                for s in outbox.pending()]
    assert statuses == ["sent", "sent", "sent"]


def test_two_publish_runs_racing_on_postgres_send_each_token_once(postgres_url: str, tmp_path: Path) -> None:
    outbox = Outbox(make_engine(postgres_url))
    tokens = [f"tok{i}" for i in range(12)]
    for i in range(36):  # three signals per token
        _enqueue(outbox, f"validation:{i}", tokens[i % 12], confidence=0.5 + (i % 7) / 20)
    log = tmp_path / "sent.log"
    children = [subprocess.Popen([sys.executable, "-m", "tests.support.outbox_child", postgres_url, str(log), name],
                                 cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                for name in ("run-a", "run-b")]
    for child in children:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    outcomes = []
    for child in children:
        out, _ = child.communicate(timeout=120)
        assert child.returncode == 0
        outcomes.append(json.loads(out.strip().splitlines()[-1]))
    # each run met the other's work: rows it found already handled (or tokens already claimed)
    assert all(o.get("already", 0) + o.get("skipped", 0) > 0 for o in outcomes), outcomes
    sent = [line.split() for line in log.read_text().splitlines()]
    assert sorted(token for _, _, token in sent) == sorted(tokens)  # every token exactly once
    assert {name for name, _, _ in sent} == {"run-a", "run-b"}  # both runs really raced
    assert len(outbox.claims("alpha_chat")) == 12
    deliveries = outbox.deliveries(publisher="alpha_chat")
    assert len(deliveries) == 36 and sum(d.status == "sent" for d in deliveries) == 12


def test_expired_and_failed_deliveries_are_recorded_once_and_close_the_signal(warehouse_url: str) -> None:
    outbox = Outbox(make_engine(warehouse_url))
    market = outbox.enqueue(kind="market", origin="bos:sim:BTC/USDT:long:1", base_token="BTC", symbol="BTC/USDT",
                            direction="long", confidence=0.7, payload={"strategy": "bos"}, now=T0)
    funding = outbox.enqueue(kind="funding", origin="funding:sim:BTC/USDT:USDT:1", base_token="BTC",
                             confidence=0.6, payload={}, now=T0)
    assert market is not None and funding is not None
    assert [s.signal_id for s in outbox.pending(kinds=("funding",))] == [funding]
    signal = next(s for s in outbox.pending() if s.signal_id == market)
    assert outbox.record(signal, "chat", "expired", "75s old", now=T0).status == "expired"
    assert outbox.record(signal, "chat", "failed", "again", now=T0).status == "already"  # first record stands
    assert outbox.record(signal, "hook", "failed", "cannot render", now=T0).status == "failed"
    with pytest.raises(ValueError, match="skipped, expired or failed"):
        outbox.record(signal, "other", "sent", "no", now=T0)
    assert sorted((d.publisher, d.status, d.reason) for d in outbox.deliveries()) == [
        ("chat", "expired", "75s old"), ("hook", "failed", "cannot render")]
    outbox.close_signals([market], now=T0, status="expired")
    assert outbox.status_of(market) == "expired" and outbox.status_of(funding) == "pending"
    assert [s.signal_id for s in outbox.pending()] == [funding]
    with pytest.raises(ValueError, match="done or expired"):
        outbox.close_signals([funding], status="sent")
