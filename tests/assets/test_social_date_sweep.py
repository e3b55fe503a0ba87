"""The social path gives the same outcome on any day: the bundled stream, through the demo's own
path (sidecar, sensor, validation runs, publishers) and ``config/sources.yaml``, replayed onto a
dozen dates spread over two years, publishes the same calls with the same messages every time.

True by construction, which is what this guards: the replay re-bases the stream onto its own
clock, the simulated DexScreener is anchored at the stream's start (the market a call meets is a
function of the time since the stream began, not of the calendar), and validation runs wait
their windows on that clock.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dagster import DagsterInstance

from orchestration.settings import Settings
from orchestration.social_demo import call_verdicts, replay_social_stream

ROOT = Path(__file__).resolve().parents[2]
#: Twelve instants over two years, at different times of day (every other one with microseconds,
#: finer than SQLite keeps: the replay starts at what the warehouse can hold).
DATES = [datetime(2025, 1, 3, 7, 13, 29, tzinfo=UTC)
         + k * timedelta(days=61, hours=3, minutes=17, seconds=41) + (k % 2) * timedelta(microseconds=123_456)
         for k in range(12)]
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _outcome(home: Path, start: datetime) -> tuple[list[tuple], list[tuple]]:
    """(every call's verdict, every message each publisher sent) of one replay onto ``start``."""
    settings = Settings(home=home, social_config=ROOT / "config" / "sources.yaml")
    with DagsterInstance.ephemeral() as instance:
        replay = replay_social_stream(settings, instance, start=start, speed=float("inf"), run_config=QUIET)
    assert replay.runs and all(run.success for run in replay.runs)
    assert replay.start == start.replace(microsecond=start.microsecond // 1000 * 1000)
    start = replay.start
    verdicts = []
    for record, verdict in call_verdicts(settings, replay.keys):
        row = record.row
        assert row["called_at"] >= start  # stamped on the stream's clock, not the calendar's
        verdicts.append((record.key, row["chain"], row["address"], verdict.outcome, verdict.reason,
                         row["reaction_pct"], row["called_at"] - start, row["validated_at"] - start,
                         tuple(sorted(record.deliveries.items()))))
    lines = (home / "publications.jsonl").read_text().splitlines()
    sent = [(r["publisher"], r["review"], r["html"]) for r in map(json.loads, lines)]
    return sorted(verdicts), sorted(sent)


def test_the_same_calls_are_published_on_every_date(tmp_path: Path) -> None:
    outcomes = [_outcome(tmp_path / f"{start:%Y%m%d}", start) for start in DATES]
    verdicts, sent = outcomes[0]
    assert any(v[3] == "passed" for v in verdicts) and any(v[3] == "rejected" for v in verdicts)
    assert any(not review for _, review, _ in sent), "nothing published: the comparison would be empty"
    assert any(v[5] not in (None, 0.0) for v in verdicts), "no price moved inside any window"
    for start, outcome in zip(DATES[1:], outcomes[1:], strict=True):
        assert outcome == outcomes[0], f"the replay onto {start.isoformat()} differs from {DATES[0].isoformat()}"
