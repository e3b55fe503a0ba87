"""End to end on loopback: a replayed stream (calls, echoes, duplicates, spam) through the sidecar,
the sensor, validation and two Telegram publishers with different rules. Replaying the same stream
again publishes nothing new."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, SensorResult, build_sensor_context
from sqlalchemy import select

from orchestration.definitions import build_definitions
from orchestration.settings import Settings
from resources.social_config import load_social_config
from resources.warehouse.schema import validations
from resources.warehouse.social import SocialStore
from streaming.listen import run_listener
from streaming.synthetic import generate_stream
from tests.support.fixtures import shared_fixtures_dir
from tests.support.telegram_standin import TelegramStandIn

RULES = {"everything": {"chat": "-1001", "min": 0.0, "chains": []},
         "solana_strict": {"chat": "-1002", "min": 0.45, "chains": ["solana"]}}


def _settings(tmp_path: Path, stream: Path, token_env: str) -> Settings:
    config = {
        "sources": {"replay": {"path": str(stream), "speed": 3000, "window_s": 1.0}},
        "validation_threshold": 0.4,
        "publishers": [{"name": name, "kind": "telegram_bot", "chat_id": rule["chat"], "chat_kind": "private",
                        "token_env": token_env, "min_confidence": rule["min"], "chains": rule["chains"]}
                       for name, rule in RULES.items()],
    }
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump(config))
    return Settings(home=tmp_path, social_config=tmp_path / "sources.yaml")


def _replay_and_validate(settings: Settings, defs, instance: DagsterInstance, cursor: str | None) -> str | None:
    asyncio.run(run_listener(load_social_config(settings.social_config), warehouse_url=settings.warehouse_url,
                             spool_path=settings.home / "spool.jsonl", health_interval_s=3600,
                             home=settings.home, once=True))
    sensor = defs.resolve_sensor_def("social_events_sensor")
    with build_sensor_context(cursor=cursor, resources=defs.resources, instance=instance,
                              repository_def=defs.get_repository_def()) as context:
        result = sensor(context)
    if isinstance(result, SensorResult):
        for request in result.run_requests or []:
            run = defs.resolve_job_def("validate_calls_job").execute_in_process(
                run_config=request.run_config, instance=instance)
            assert run.success
        return result.cursor
    return cursor


def test_replayed_stream_reaches_the_right_chats_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    records = generate_stream(seed=11, start=datetime(2025, 3, 1, tzinfo=UTC), minutes=20, calls_per_hour=18,
                              chatter_per_hour=30, spam_waves=1)
    kinds = {r.get("raw", {}).get("kind") for r in records}
    assert {"call", "echo", "duplicate", "spam", "chatter"} <= kinds
    stream = tmp_path / "stream.jsonl"
    stream.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    with TelegramStandIn(shared_fixtures_dir() / "telegram" / "bot_api", per_chat_interval_s=None,
                         group_per_minute=None) as standin:
        monkeypatch.setenv("E2E_BOT_TOKEN", standin.token)
        settings = _settings(tmp_path, stream, "E2E_BOT_TOKEN")
        from assets.publishing import PublishersResource

        defs = build_definitions(settings, {"publishers": PublishersResource(
            config_path=str(settings.social_config), home=str(tmp_path), telegram_base_url=standin.base_url)})
        with DagsterInstance.ephemeral() as instance:
            cursor = _replay_and_validate(settings, defs, instance, None)
            first = {chat: [m.plain_text for m in standin.sent_to(chat)] for chat in ("-1001", "-1002")}
            events_after_first = SocialStore.from_url(settings.warehouse_url).count()
            _replay_and_validate(settings, defs, instance, cursor)
            second = {chat: [m.plain_text for m in standin.sent_to(chat)] for chat in ("-1001", "-1002")}
        assert not standin.violations
    store = SocialStore.from_url(settings.warehouse_url)
    assert store.count() == events_after_first  # the same stream again stores nothing new
    assert second == first  # ... and publishes nothing new
    duplicates = sum(1 for r in records if r.get("raw", {}).get("kind") == "duplicate")
    assert events_after_first < len(records) - duplicates + 1

    with store.engine.connect() as connection:
        rows = connection.execute(select(validations)).mappings().all()
    best: dict[str, dict] = {}
    for row in sorted(rows, key=lambda r: -r["score"]):
        if row["passed"]:
            best.setdefault(row["base_token"], row)
    expected: dict[str, set[str]] = defaultdict(set)
    for rule in RULES.values():
        for row in best.values():
            # the outbox drains highest confidence first, so a token's first delivery is its best call
            if row["score"] >= rule["min"] and (not rule["chains"] or row["chain"] in rule["chains"]):
                expected[rule["chat"]].add(row["address"])
    got = {chat: {next(line for line in text.splitlines() if len(line) >= 32 and " " not in line)
                  for text in texts} for chat, texts in first.items()}
    assert got == {chat: expected[chat] for chat in ("-1001", "-1002")}
    assert len(first["-1001"]) == len(got["-1001"]) > 0  # one message per token, never two
    assert len(first["-1002"]) == len(got["-1002"]) > 0
    assert got["-1002"] <= got["-1001"] and not any(a.startswith("0x") for a in got["-1002"])  # solana only
    assert any(row["chain"] != "solana" for row in best.values()) or not any(a.startswith("0x") for a in got["-1001"])
    spam_events = {r["message_id"] for r in records if r.get("raw", {}).get("kind") == "spam"}
    assert not any(r["passed"] for r in rows if r["event_id"] and str(r["event_id"]) in spam_events)
