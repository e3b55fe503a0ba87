"""Sensor -> validation run -> outbox -> publishers, through Dagster on the embedded default."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from dagster import DagsterInstance, RunRequest, SensorResult, build_sensor_context
from sqlalchemy import select

from orchestration.definitions import build_definitions
from orchestration.settings import Settings
from resources.publishers.outbox import Outbox
from resources.social_resources import SimDexScreenerResource
from resources.warehouse.schema import validations
from resources.warehouse.social import SocialStore
from streaming.events import Event

SOL_MINT = "EKpQGSJtjMFqKZ9KQanSqYXRcF8fBopzLHYxdM65zcjm"
BASE_TOKEN = "0x532f27101965dd16442E59d40670FaF5eBB142E4"
#: The instant the simulated DexScreener, its cache and the run stand at, and the calls are stamped at.
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def _config(path: Path) -> Path:
    path.write_text(yaml.safe_dump({
        "sources": {"replay": {"window_s": 1.0, "channels": [{"id": "alpha", "weight": 1.0},
                                                             {"id": "beta", "weight": 0.6}]}},
        "publishers": [{"name": "everything", "kind": "console", "min_confidence": 0.0},
                       {"name": "strict", "kind": "console", "min_confidence": 0.95}],
        "validation_threshold": 0.3,
    }))
    return path


def _events(now: datetime) -> list[dict]:
    texts = [("alpha", "1", f"New gem on solana {SOL_MINT} pump.fun/coin/{SOL_MINT}"),
             ("beta", "7", f"echo: {SOL_MINT} looks good https://dexscreener.com/solana/{SOL_MINT}"),
             ("alpha", "2", f"Base play CA: {BASE_TOKEN} basescan.org/token/{BASE_TOKEN}"),
             ("beta", "8", "gm everyone, no calls today")]
    return [Event.from_message(source="replay", channel=c, message_id=m, author=f"user_{c}", text=t, ts=now).to_record()
            for c, m, t in texts]


def test_sensor_validation_and_publication(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, social_config=_config(tmp_path / "sources.yaml"))
    frozen = SimDexScreenerResource(cache_path=str(tmp_path / "cache" / "dexscreener.sqlite"), seed=42,
                                    frozen_clock=NOW.isoformat())
    defs = build_definitions(settings, {"dexscreener": frozen})
    store = SocialStore.from_url(settings.warehouse_url)
    ids = store.append(_events(NOW), received_at=NOW)
    sensor = defs.resolve_sensor_def("social_events_sensor")
    with build_sensor_context(cursor=None, resources=defs.resources,
                              repository_def=defs.get_repository_def()) as context:
        result = sensor(context)
    assert isinstance(result, SensorResult)
    (request,) = result.run_requests or []
    assert isinstance(request, RunRequest)
    assert request.run_config["ops"]["validate_calls_op"]["config"]["event_ids"] == ids[:3]  # chatter has no call
    assert result.cursor == str(ids[-1])

    with DagsterInstance.ephemeral() as instance:
        job = defs.resolve_job_def("validate_calls_job")
        run = job.execute_in_process(run_config=request.run_config, instance=instance)
        assert run.success
        output = next(e for e in run.all_node_events
                      if e.event_type_value == "STEP_OUTPUT" and e.node_name == "validate_calls_op")
        metadata = output.event_specific_data.metadata
        outcomes = run.output_for_node("publish_signals_op")
        again = job.execute_in_process(run_config=request.run_config, instance=instance)
        assert again.success
    engine = store.engine
    with engine.connect() as connection:
        rows = connection.execute(select(validations)).mappings().all()
    assert sorted((r["event_id"], r["chain"]) for r in rows) == [(ids[0], "solana"), (ids[1], "solana"), (ids[2], "base")]
    for row in rows:
        factors = json.loads(row["factors"])
        assert {"score", "component_liquidity", "component_reaction", "component_context"} <= set(factors)
        assert row["window_s"] == 1.0 and row["threshold"] == 0.3
        assert row["called_at"] == row["validated_at"] == NOW  # the frozen clock: the window closes at once
        if row["price_at_call"] is not None:  # fetched by this run on the frozen clock
            assert factors["arrival_lag_s"] == 0
    echo = next(r for r in rows if r["event_id"] == ids[1])
    assert echo["mention_channels"] == 2 and echo["channel_weight"] == 0.6
    outbox = Outbox(engine)
    assert outbox.pending() == []
    published = [json.loads(line) for line in (tmp_path / "publications.jsonl").read_text().splitlines()]
    tokens_sent = [p for p in published if p["publisher"] == "everything"]
    # the Solana token is published once per publisher even though two channels called it
    assert len(tokens_sent) == len({r["base_token"] for r in rows if r["passed"]})
    assert all(p["publisher"] != "strict" for p in published if not p["review"]) or any(r["score"] >= 0.95 for r in rows)
    assert metadata["calls"].value == 3 and "score" in metadata["validations"].value
    assert 0 <= metadata["cache_hit_rate"].value <= 1
    assert outcomes.get("sent", 0) == 0  # each call was published as soon as it validated; nothing left

    with build_sensor_context(cursor=result.cursor, resources=defs.resources,
                              repository_def=defs.get_repository_def()) as context:
        assert not getattr(sensor(context), "run_requests", None)


def test_the_arrival_snapshot_is_the_one_the_sidecar_cached_as_the_call_arrived(tmp_path: Path) -> None:
    from assets.validation import validate_calls
    from resources.dexscreener_sim import SimDexScreener
    from resources.social_config import load_social_config
    from resources.ttl_cache import CachedDexScreener, PersistentTTLCache

    called_at = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    moment = [called_at + timedelta(seconds=1)]
    sim = SimDexScreener(seed=42, clock=lambda: moment[0])
    assert sim.is_listed("solana", SOL_MINT)
    cached = CachedDexScreener(sim, PersistentTTLCache(tmp_path / "dex.sqlite", clock=lambda: moment[0].timestamp()))
    settings = Settings(home=tmp_path, social_config=_config(tmp_path / "sources.yaml"))
    store = SocialStore.from_url(settings.warehouse_url)
    (event_id,) = store.append([Event.from_message(source="replay", channel="alpha", message_id="1", author="a",
                                                   text=f"gem {SOL_MINT} pump.fun/coin/{SOL_MINT}",
                                                   ts=called_at).to_record()])
    cached.refresh("solana", [SOL_MINT], fresh_within_s=15)  # what streaming.arrival does on arrival
    at_arrival = cached.best_pair("solana", SOL_MINT)
    moment[0] = called_at + timedelta(minutes=3)  # the run comes late; prices have moved
    report = validate_calls([event_id], store=store, engine=store.engine, fresh=sim, cached=cached,
                            config=load_social_config(settings.social_config), clock=lambda: moment[0],
                            sleep=lambda _s: None)
    (row,) = report.rows
    assert at_arrival is not None and row["price_at_call"] == at_arrival.price_usd
    assert row["price_at_close"] == sim.best_pair("solana", SOL_MINT).price_usd  # type: ignore[union-attr]
    assert json.loads(row["factors"])["arrival_lag_s"] == 1.0
