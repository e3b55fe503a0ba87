"""End to end on loopback: a replayed stream (calls, echoes, duplicates, spam) through the sidecar,
the sensor, validation and two Telegram publishers with different rules, all on the stream's own
clock. Replaying the same stream again publishes nothing new."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance

from assets.publishing import PublishersResource
from ml.social.calls import FRESH_PRICE_S
from orchestration.settings import Settings
from orchestration.social_demo import call_verdicts, replay_social_stream
from resources.warehouse.social import SocialStore
from streaming.synthetic import generate_stream
from tests.support.fixtures import shared_fixtures_dir
from tests.support.telegram_standin import TelegramStandIn

RULES = {"everything": {"chat": "-1001", "min": 0.0, "chains": []},
         "solana_strict": {"chat": "-1002", "min": 0.45, "chains": ["solana"]}}
RECORDED = datetime(2025, 3, 1, tzinfo=UTC)  # when the stream was recorded
REPLAYED = datetime(2026, 7, 14, 9, 30, 5, tzinfo=UTC)  # where the replay's clock starts (any date: the sweep)
WINDOW_S = 60.0


def _settings(tmp_path: Path, stream: Path, token_env: str) -> Settings:
    config = {
        "sources": {"replay": {"path": str(stream), "window_s": WINDOW_S}},
        "validation_threshold": 0.4,
        "publishers": [{"name": name, "kind": "telegram_bot", "chat_id": rule["chat"], "chat_kind": "private",
                        "token_env": token_env, "min_confidence": rule["min"], "chains": rule["chains"]}
                       for name, rule in RULES.items()],
    }
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump(config))
    return Settings(home=tmp_path, social_config=tmp_path / "sources.yaml")


def test_replayed_stream_reaches_the_right_chats_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    records = generate_stream(seed=15, start=RECORDED, minutes=20, calls_per_hour=18, chatter_per_hour=30,
                              spam_waves=1, shill_probability=1.0)
    kind_of = {("replay", r["channel"], r["message_id"]): r["raw"]["kind"] for r in records}
    assert {"call", "echo", "duplicate", "spam", "chatter"} <= set(kind_of.values())
    stream = tmp_path / "stream.jsonl"
    stream.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    with TelegramStandIn(shared_fixtures_dir() / "telegram" / "bot_api", per_chat_interval_s=None,
                         group_per_minute=None) as standin:
        monkeypatch.setenv("E2E_BOT_TOKEN", standin.token)
        settings = _settings(tmp_path, stream, "E2E_BOT_TOKEN")
        publishers = {"publishers": PublishersResource(config_path=str(settings.social_config), home=str(tmp_path),
                                                       telegram_base_url=standin.base_url)}
        with DagsterInstance.ephemeral() as instance:
            replay = replay_social_stream(settings, instance, start=REPLAYED, speed=float("inf"), resources=publishers)
            assert replay.runs and all(run.success for run in replay.runs)
            first = {chat: [m.plain_text for m in standin.sent_to(chat)] for chat in ("-1001", "-1002")}
            events_after_first = SocialStore.from_url(settings.warehouse_url).count()
            again = replay_social_stream(settings, instance, start=REPLAYED, speed=float("inf"), resources=publishers)
            second = {chat: [m.plain_text for m in standin.sent_to(chat)] for chat in ("-1001", "-1002")}
        assert not standin.violations
    assert again.stored == 0 and again.runs == []  # the same stream again stores nothing new ...
    assert SocialStore.from_url(settings.warehouse_url).count() == events_after_first
    assert second == first  # ... and publishes nothing new
    duplicates = sum(1 for kind in kind_of.values() if kind == "duplicate")
    assert events_after_first < len(records) - duplicates + 1

    verdicts = call_verdicts(settings, replay.keys)
    rows = [record.row for record, _ in verdicts]
    assert rows and len(replay.keys) == len(kind_of)  # every line replayed, every call validated once
    for row in rows:  # on the stream's clock: priced as the call arrived, scored as its window closed
        assert row["validated_at"] == row["called_at"] + timedelta(seconds=WINDOW_S)
        assert row["called_at"] >= REPLAYED
        if row["price_at_call"] is not None:  # the sidecar's snapshot: at the call, or a reused one just before
            assert -FRESH_PRICE_S <= json.loads(row["factors"])["arrival_lag_s"] <= 0
    best: dict[str, dict] = {}
    for row in sorted(rows, key=lambda r: -r["score"]):
        if row["passed"]:
            best.setdefault(row["base_token"], row)
    expected: dict[str, set[str]] = {"-1001": set(), "-1002": set()}
    for rule in RULES.values():
        for row in best.values():
            # the outbox drains highest confidence first, so a token's first delivery is its best call
            if row["score"] >= rule["min"] and (not rule["chains"] or row["chain"] in rule["chains"]):
                expected[rule["chat"]].add(row["address"])
    got = {chat: {next(line for line in text.splitlines() if len(line) >= 32 and " " not in line)
                  for text in texts} for chat, texts in first.items()}
    assert got == expected
    assert len(first["-1001"]) == len(got["-1001"]) > 0  # one message per token, never two
    assert len(first["-1002"]) == len(got["-1002"]) > 0
    assert got["-1002"] <= got["-1001"] and not any(a.startswith("0x") for a in got["-1002"])  # solana only
    assert any(row["chain"] != "solana" for row in best.values()) or not any(a.startswith("0x") for a in got["-1001"])

    # the spam wave shills a token in every message: each is a call, and none passes or is sent
    spam = [(record, verdict) for record, verdict in verdicts if kind_of[record.key] == "spam"]
    assert len(spam) >= 5
    assert all(not record.row["passed"] and verdict.outcome == "rejected" for record, verdict in spam)
    assert all(status != "sent" for record, _ in spam for status, _reason in record.deliveries.values())
    assert not {record.row["address"] for record, _ in spam} & (got["-1001"] | got["-1002"])
