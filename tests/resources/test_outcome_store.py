"""signal_outcomes and signal_snapshots on both engines: only sent deliveries are publications,
upserts are idempotent and stop at settled rows, the first snapshot of a minute wins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from ml.signals.outcome_rows import OUTCOME_COLUMNS
from resources.publishers.outbox import Outbox
from resources.warehouse.engine import make_engine
from resources.warehouse.outcomes import (
    read_signal_outcomes,
    read_snapshots,
    record_snapshots,
    unsettled_publications,
    upsert_outcomes,
)

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)


def _publish(outbox: Outbox, origin: str, statuses: dict[str, str], at: datetime) -> int:
    signal_id = outbox.enqueue(kind="market", origin=origin, base_token=f"sim:{origin}", confidence=0.6,
                               payload={"strategy": "bos"}, symbol="BTC/USDT", direction="long", now=at)
    assert signal_id is not None
    (signal,) = [s for s in outbox.pending() if s.signal_id == signal_id]
    for publisher, status in statuses.items():
        if status == "skipped":
            outbox.skip(signal, publisher, "routing", now=at)
        else:
            outbox.deliver(signal, publisher, lambda: "ok", blacklist=False, status=status, now=at)
    return signal_id


def _row(signal_id: int, publisher: str, *, r1: float | None, settled: bool) -> dict:
    row = dict.fromkeys(OUTCOME_COLUMNS)
    row.update(signal_id=signal_id, publisher=publisher, kind="market", strategy="bos", exchange="sim",
               symbol="BTC/USDT", source="market", channel=None, direction="long", published_at=T0,
               entry_ts=T0 + timedelta(minutes=1), entry_price=100.0, return_1m=r1, exit_reason="open",
               missing=0, settled=settled)
    return row


def test_only_sent_and_unsettled_deliveries_are_publications(warehouse_url: str) -> None:
    engine = make_engine(warehouse_url)
    outbox = Outbox(engine)
    first = _publish(outbox, "bos:1", {"chat": "sent", "review_chat": "review", "muted": "skipped"}, T0)
    second = _publish(outbox, "bos:2", {"chat": "sent", "other": "sent"}, T0 + timedelta(minutes=3))
    publications = unsettled_publications(engine)
    assert publications.select("signal_id", "publisher").rows() == [(first, "chat"), (second, "chat"),
                                                                      (second, "other")]
    assert publications.get_column("published_at").to_list()[0] == T0
    assert unsettled_publications(engine, since=T0 + timedelta(minutes=1)).height == 2
    upsert_outcomes(engine, pl.DataFrame([_row(first, "chat", r1=0.01, settled=True)]), now=T0)
    assert unsettled_publications(engine).select("signal_id", "publisher").rows() == [(second, "chat"),
                                                                                        (second, "other")]


def test_upserts_are_idempotent_and_a_settled_row_is_final(warehouse_url: str) -> None:
    engine = make_engine(warehouse_url)
    early = pl.DataFrame([_row(1, "chat", r1=None, settled=False), _row(2, "chat", r1=None, settled=False)])
    upsert_outcomes(engine, early, now=T0)
    upsert_outcomes(engine, early, now=T0)
    assert read_signal_outcomes(engine).height == 2
    later = pl.DataFrame([_row(1, "chat", r1=0.02, settled=True), _row(2, "chat", r1=-0.01, settled=False)])
    upsert_outcomes(engine, later, now=T0 + timedelta(minutes=2))
    rewritten = pl.DataFrame([_row(1, "chat", r1=0.5, settled=False)])
    upsert_outcomes(engine, rewritten, now=T0 + timedelta(minutes=3))
    stored = read_signal_outcomes(engine)
    assert stored.select("signal_id", "return_1m", "settled").rows() == [(1, 0.02, True), (2, -0.01, False)]
    assert stored.get_column("updated_at").to_list() == [T0 + timedelta(minutes=2)] * 2
    assert read_signal_outcomes(engine, settled=False).get_column("signal_id").to_list() == [2]
    assert read_signal_outcomes(engine, published_from=T0 + timedelta(seconds=1)).height == 0
    assert read_signal_outcomes(engine, kind="social").height == 0


def test_the_first_snapshot_of_a_minute_is_kept(warehouse_url: str) -> None:
    engine = make_engine(warehouse_url)

    def snapshot(signal_id: int, seconds: int, price: float | None) -> dict:
        at = T0 + timedelta(seconds=seconds)
        return {"signal_id": signal_id, "minute_ts": at.replace(second=0), "fetched_at": at, "price_usd": price,
                "liquidity_usd": 5e4, "pair_address": "pair"}

    assert record_snapshots(engine, pl.DataFrame([snapshot(1, 5, 1.0), snapshot(2, 6, None)])) == 2
    assert record_snapshots(engine, pl.DataFrame([snapshot(1, 40, 9.0), snapshot(1, 65, 2.0)])) == 1
    stored = read_snapshots(engine, [1, 2, 3])
    assert stored.select("signal_id", "price_usd").rows() == [(1, 1.0), (1, 2.0), (2, None)]
    assert stored.get_column("fetched_at").to_list()[0] == T0 + timedelta(seconds=5)
