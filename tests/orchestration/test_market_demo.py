"""The demo's market half on fixed dates, with frozen clocks: the replay clock delivers every
signal its trigger candle's close + REPLAY_DELAY_S (none expires), and the printed outcomes,
scorecard and paper accounts are the warehouse's rows as the real assets stored them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance

from assets.publishing import PublishersResource, publish_pending
from ml.marketdata.frames import CANDLE_SCHEMA
from ml.strategies.signal import MarketSignal
from orchestration.definitions import build_definitions
from orchestration.launcher import launch
from orchestration.market_demo import (
    REPLAY_DELAY_S,
    outcome_table,
    paper_summary,
    print_outcomes,
    print_paper_accounts,
    print_scorecard,
    run_market_demo,
    scorecard_table,
)
from orchestration.settings import Settings
from resources.exchanges.resource import ExchangeResource
from resources.exchanges.sim import SimExchange
from resources.publishers.outbox import Outbox
from resources.social_resources import SimDexScreenerResource
from resources.warehouse.schema import signal_deliveries
from resources.warehouse.store import Warehouse

ROOT = Path(__file__).resolve().parents[2]
SYMBOLS = ("NEAR/USDT", "AVAX/USDT", "XRP/USDT", "DOGE/USDT")
#: Loose rules (as in tests/assets/test_market_signals_live.py) so a few symbols over hours give
#: signals of both strategies; the demo itself runs the seed values over the whole sim universe.
LOOSE = {"bos": {"bos_strength_threshold": 1.002, "min_volume_multiplier": 0.8, "require_body_ratio": 0.4,
                 "event_filter_type": "BOTH", "min_event_interval_minutes": 60, "stoploss_pct": 0.02},
         "ema_cross": {"volume_multiplier": 1.0, "adx_min": 15.0}, "funding": {"enabled": False}}


def _publishers(home: Path, **fields: Any) -> PublishersResource:
    return PublishersResource(config_path=str(ROOT / "config" / "sources.yaml"), home=str(home), dry_run=True,
                              **fields)


def test_the_replay_clock_delivers_each_signal_at_its_close_plus_the_delay(tmp_path: Path) -> None:
    store = Warehouse.from_url(f"sqlite:///{tmp_path / 'warehouse.db'}")
    outbox, now = Outbox(store.engine), datetime(2025, 6, 1, 12, 0, 5, tzinfo=UTC)
    for minutes_ago in (180, 0):  # hours old, and the candle that closed 5 s ago (close + delay is after now)
        trigger = now.replace(second=0) - timedelta(minutes=minutes_ago + 1)
        signal = MarketSignal(strategy="bos", exchange="sim", symbol="BTC/USDT", timeframe="1m", direction="long",
                              trigger_ts=trigger, entry=100.0, stop=92.0, targets=(108.0,), confidence=0.6,
                              risk_level="low", size=0.5, expires_at=trigger + timedelta(hours=2))
        outbox.enqueue(kind="market", origin=f"o{minutes_ago}", base_token=f"o{minutes_ago}", confidence=0.6,
                       payload=signal.to_record(), symbol="BTC/USDT", direction="long", now=now)
    replay = _publishers(tmp_path, frozen_clock=now.isoformat(), replay_delay_s=REPLAY_DELAY_S)
    publish_pending(outbox, replay.build(), now=replay.now(), signal_clock=replay.replay_clock())
    with store.engine.connect() as connection:
        rows = connection.execute(signal_deliveries.select().where(signal_deliveries.c.publisher == "console")
                                  .order_by(signal_deliveries.c.signal_id)).mappings().all()
    assert [r["status"] for r in rows] == ["sent", "sent"]
    assert rows[0]["delivered_at"] == now.replace(second=0) - timedelta(minutes=180) + timedelta(seconds=REPLAY_DELAY_S)
    assert rows[1]["delivered_at"] == now  # 5 s after its close: never later than now
    # on the frozen clock without the replay, the hours-old signal is expired
    outbox.enqueue(kind="market", origin="late", base_token="late", confidence=0.6, symbol="BTC/USDT",
                   payload={**signal.to_record(), "trigger_ts": (now - timedelta(hours=3)).isoformat()}, now=now)
    plain = _publishers(tmp_path, frozen_clock=now.isoformat())
    report = publish_pending(outbox, plain.build(), now=plain.now())
    assert report.per_publisher["console"]["expired"] == 1


def _store_market(store: Warehouse, now: datetime) -> None:
    exchange = SimExchange(clock=lambda: now)
    for timeframe, start in (("1m", now - timedelta(hours=10)), ("1h", now - timedelta(days=12))):
        frame = pl.concat(exchange.fetch_ohlcv(s, timeframe, start, now).with_columns(
            exchange=pl.lit("sim"), symbol=pl.lit(s), timeframe=pl.lit(timeframe)) for s in SYMBOLS)
        frame = frame.select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()])
        store.replace_candles(frame, exchange="sim", timeframe=timeframe, start=start, end=now, symbols=list(SYMBOLS))


#: Two fixed instants at which four sim symbols give signals of both strategies within the demo's
#: 8-hour window (EMA crossovers are rare on four symbols; the demo's 87 give both on every date,
#: tests/resources/test_sim_realism_signals.py).
DATES = [datetime(2024, 3, 11, 12, 5, tzinfo=UTC), datetime(2025, 1, 15, 16, 20, tzinfo=UTC)]


@pytest.mark.parametrize("now", DATES, ids=[d.date().isoformat() for d in DATES])
def test_outcomes_scorecard_and_paper_accounts_are_the_stored_rows(tmp_path: Path, now: datetime,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(home=tmp_path, start_date=(now - timedelta(days=12)).date())
    store = Warehouse.from_url(settings.warehouse_url)
    _store_market(store, now)
    publishers = _publishers(tmp_path, frozen_clock=now.isoformat())
    defs = build_definitions(settings, {
        "publishers": publishers, "exchanges": ExchangeResource(exchanges=["sim"], frozen_clock=now.isoformat()),
        "dexscreener": SimDexScreenerResource(cache_path=str(tmp_path / "dex.sqlite"), frozen_clock=now.isoformat())})
    launched: list[str] = []

    def run(job: str, tags: Mapping[str, str] | None, config: Mapping[str, Any] | None,
            selection: list[str] | None, checks_may_reject: bool = False) -> bool:
        config = dict(config or {})
        if job == "market_signals_job":  # the demo's scan with rules loose enough for four symbols
            op = config["ops"]["market_signals_op"]["config"]
            config["ops"] = {"market_signals_op": {"config": {**op, **LOOSE}}}
        with DagsterInstance.ephemeral() as instance:
            result = launch(defs, instance, job, run_config=config, tags=tags,
                            asset_selection=[AssetKey(k) for k in selection] if selection else None)
        assert result.success, (job, result.failures)
        launched.append(",".join([job, *(selection or [])]))
        return result.success

    ok, as_of = run_market_demo(run, publishers, lambda: now)
    assert ok and as_of == now
    assert launched == ["market_signals_job", "__ASSET_JOB,signal_outcomes,paper_accounts,scorecards"]

    # every signal was sent on the replay clock: nothing expired, each delivered close + delay
    outcomes = outcome_table(settings.warehouse_url)
    strategies = set(outcomes["strategy"].to_list())
    assert strategies == {"bos", "ema_cross"}, strategies
    with store.engine.connect() as connection:
        deliveries = connection.execute(signal_deliveries.select()).mappings().all()
    assert deliveries and "expired" not in {d["status"] for d in deliveries}
    assert outcomes.filter(pl.col("settled")).height >= 3

    print_outcomes(settings.warehouse_url, limit=1000)
    print_scorecard(settings.warehouse_url, as_of)
    print_paper_accounts(settings.warehouse_url)
    out = capsys.readouterr().out
    for row in outcomes.iter_rows(named=True):  # each outcome row printed with the stored returns
        line = next(line for line in out.splitlines() if re.match(rf"\s+{row['signal_id']} {row['strategy']}", line))
        returns = line.split()[6:12]
        assert returns == [f"{100 * row[f'return_{h}m']:+.2f}" if row[f"return_{h}m"] is not None else "-"
                           for h in (1, 2, 3, 5, 10, 15)], (line, row)
        assert (row["exit_reason"] or "-") == line.split()[12]
    card = scorecard_table(settings.warehouse_url, as_of)
    assert set(card["strategy"].to_list()) == strategies
    for row in card.iter_rows(named=True):
        line = next(line for line in out.splitlines()
                    if re.match(rf"\s+{row['strategy']}\s+\+{row['horizon_minutes']}m ", line))
        assert line.split()[2:4] == [str(row["signals"]), str(row["pending"])], line
    summary, positions = paper_summary(settings.warehouse_url)
    assert positions.height > 0 and set(summary["publisher"].to_list()) <= {"console", "market_chat"}
    for row in summary.iter_rows(named=True):
        assert f"{row['publisher']:<12} {row['signals']} signals: {row['closed']} closed" in out
        assert f"final equity {row['equity']:,.2f}" in out
