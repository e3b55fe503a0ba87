"""The loop the reputation now closes: a channel's call is validated and published, the
signal_outcomes asset snapshots it minute by minute on a frozen clock, and the channel's next
call is scored with a reputation made of that realised +15 min outcome."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, materialize
from sqlalchemy import select

from assets.outcomes import signal_outcomes
from ml.social.reputation import CallOutcome, source_reputation
from orchestration.definitions import build_definitions
from orchestration.settings import Settings
from resources.social_resources import SimDexScreenerResource
from resources.warehouse.outcomes import read_signal_outcomes
from resources.warehouse.resource import WarehouseResource
from resources.warehouse.schema import validations
from resources.warehouse.social import SocialStore
from streaming.events import Event

SOL_MINT = "GxjBaiCBSMs1bYMQimXR3R1gSoum4MyhVX652tE3PVFM"  # listed with ~$56k liquidity at NOW (seed 42)
OTHER_MINT = "DnS7SjFqpH6ZLUx6RahTfPjVAgNy6ZxvRtcnvVZTrsDN"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def _settings(home: Path) -> Settings:
    config = home / "sources.yaml"
    home.mkdir(parents=True, exist_ok=True)
    config.write_text(yaml.safe_dump({
        "sources": {"replay": {"window_s": 1.0, "channels": [{"id": "alpha", "weight": 1.0}]}},
        "publishers": [{"name": "everything", "kind": "console", "min_confidence": 0.0}],
        "validation_threshold": 0.0,
    }))
    return Settings(home=home, social_config=config)


def _validate(settings: Settings, instance: DagsterInstance, message_id: str, mint: str, at: datetime) -> dict:
    """Store one call of ``alpha`` at ``at`` and run validate_calls_job on a clock frozen there."""
    frozen = SimDexScreenerResource(cache_path=str(settings.home / "cache" / "dexscreener.sqlite"), seed=42,
                                    frozen_clock=at.isoformat())
    defs = build_definitions(settings, {"dexscreener": frozen})
    store = SocialStore.from_url(settings.warehouse_url)
    event = Event.from_message(source="replay", channel="alpha", message_id=message_id, author="a",
                               text=f"gem on solana {mint}", ts=at).to_record()
    (event_id,) = store.append([event], received_at=at)
    run = defs.resolve_job_def("validate_calls_job").execute_in_process(
        run_config={"ops": {"validate_calls_op": {"config": {"event_ids": [event_id]}}}}, instance=instance)
    assert run.success
    with store.engine.connect() as connection:
        (row,) = connection.execute(select(validations).where(validations.c.event_id == event_id)).mappings().all()
    return dict(row)


def test_the_next_call_is_scored_with_the_realised_outcome_of_the_last(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "home")
    with DagsterInstance.ephemeral() as instance:
        first = _validate(settings, instance, "1", SOL_MINT, NOW)
        assert first["passed"], (first["factors"], first["liquidity_usd"])
        assert first["reputation"] == 0.5  # no history: the prior mean
        for minute in (0, 1, 2, 3, 5, 10, 15, 16):  # the entry minute, each horizon, then settled
            at = NOW + minute * MINUTE + timedelta(seconds=30)
            resources = {"warehouse": WarehouseResource(url=settings.warehouse_url),
                         "dexscreener": SimDexScreenerResource(cache_path=str(tmp_path / "outcomes-dex.sqlite"),
                                                               seed=42, frozen_clock=at.isoformat())}
            assert materialize([signal_outcomes], resources=resources, instance=instance).success
        (outcome,) = read_signal_outcomes(SocialStore.from_url(settings.warehouse_url).engine).rows(named=True)
        assert outcome["settled"] and outcome["channel"] == "alpha" and outcome["return_15m"] is not None
        second_at = NOW + 30 * MINUTE
        second = _validate(settings, instance, "2", OTHER_MINT, second_at)
    known = CallOutcome(outcome["entry_ts"] + 16 * MINUTE, "alpha", 100 * outcome["return_15m"])
    expected = source_reputation([known], channel="alpha", as_of=second_at)
    assert second["reputation"] == pytest.approx(expected.score) and second["reputation"] != 0.5
    assert json.loads(second["factors"])["reputation_calls"] == 1
