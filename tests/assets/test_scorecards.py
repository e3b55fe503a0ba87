"""scorecards and the daily digest on real SQL (SQLite and PostgreSQL) and, for the digest, end to end
through the schedule, the job and the loopback Telegram Bot API stand-in, on a frozen day."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import yaml
from dagster import DagsterInstance, build_schedule_context, materialize

from assets.publishing import PublishersResource
from assets.scorecards import scorecards, scorecards_of
from ml.signals.outcome_rows import OUTCOME_COLUMNS
from orchestration.jobs import scorecard_digest_job
from orchestration.schedules import digest_schedule
from resources.social_resources import SocialConfigResource
from resources.warehouse.engine import make_engine
from resources.warehouse.outcomes import upsert_outcomes
from resources.warehouse.resource import WarehouseResource
from resources.warehouse.store import Warehouse
from tests.support.fixtures import shared_fixtures_dir
from tests.support.telegram_standin import TelegramStandIn

DAY = datetime(2024, 3, 1, tzinfo=UTC)
HORIZONS = (1, 2, 3, 5, 10, 15)
#: (strategy, symbol, publisher, published minutes after DAY, net return at +15 min; shorter horizons: half)
ROWS = [
    ("bos", "BTC/USDT", "alpha", 60, 0.010), ("bos", "ETH/USDT", "alpha", 120, -0.005),
    ("bos", "SOL/USDT", "beta", 180, 0.020), ("ema_cross", "BTC/USDT", "alpha", 240, -0.004),
    ("ema_cross", "ETH/USDT", "beta", 300, -0.006), ("ema_cross", "SOL/USDT", "beta", 1430, None),  # pending
    ("bos", "BTC/USDT", "alpha", 1440 + 30, 0.5),  # the next day: in no digest of DAY
]


def store_outcomes(store: Warehouse) -> None:
    rows = []
    for i, (strategy, symbol, publisher, minutes, r15) in enumerate(ROWS, start=1):
        published = DAY + timedelta(minutes=minutes)
        rows.append({
            "signal_id": i, "publisher": publisher, "kind": "market", "strategy": strategy, "exchange": "sim",
            "symbol": symbol, "source": "market", "channel": None, "direction": "long", "published_at": published,
            "entry_ts": published, "entry_price": 100.0,
            **{f"return_{h}m": (None if r15 is None else (r15 if h == 15 else r15 / 2)) for h in HORIZONS},
            "exit_reason": None if r15 is None else "time", "exit_ts": None, "exit_price": None, "pnl": None,
            "missing": 0, "settled": r15 is not None})
    frame = pl.DataFrame(rows, schema_overrides={c: pl.Datetime("us", "UTC") for c in
                                                 ("published_at", "entry_ts", "exit_ts")}, infer_schema_length=None)
    assert set(OUTCOME_COLUMNS) <= set(frame.columns)
    upsert_outcomes(store, frame, now=DAY + timedelta(days=2))


def test_scorecards_per_strategy_symbol_source_and_publisher(warehouse: Warehouse) -> None:
    store_outcomes(warehouse)
    cards, rows = scorecards_of(warehouse, start=DAY, end=DAY + timedelta(days=1))
    assert rows == 6  # the next day's signal is outside the window
    bos = cards["strategy"].filter((pl.col("strategy") == "bos") & (pl.col("horizon_minutes") == 15)).row(0, named=True)
    returns = [0.010, -0.005, 0.020]
    assert (bos["signals"], bos["pending"]) == (3, 0)
    assert bos["win_rate"] == pytest.approx(2 / 3)
    assert bos["mean_return"] == pytest.approx(statistics.mean(returns))
    assert bos["median_return"] == pytest.approx(0.010)
    assert bos["t_stat"] == pytest.approx(statistics.mean(returns) / (statistics.stdev(returns) / 3 ** 0.5))
    ema = cards["strategy"].filter((pl.col("strategy") == "ema_cross") & (pl.col("horizon_minutes") == 5)).row(0, named=True)
    assert (ema["signals"], ema["pending"], ema["win_rate"]) == (2, 1, 0.0)
    assert ema["mean_return"] == pytest.approx(-0.0025)
    assert cards["publisher"]["publisher"].unique().sort().to_list() == ["alpha", "beta"]
    assert cards["symbol"].filter(pl.col("horizon_minutes") == 15)["signals"].to_list() == [2, 2, 1]  # BTC, ETH, SOL
    assert cards["source"]["source"].unique().to_list() == ["market"]
    assert cards["overall"].filter(pl.col("horizon_minutes") == 15).row(0, named=True)["signals"] == 5


def test_the_asset_shows_tables_and_plots(sqlite_url: str) -> None:
    store = Warehouse(make_engine(sqlite_url))
    store_outcomes(store)
    result = materialize([scorecards], resources={"warehouse": WarehouseResource(url=sqlite_url)},
                         run_config={"ops": {"scorecards": {"config": {"as_of": "2024-03-02T00:00:00Z", "days": 1}}}})
    metadata = result.asset_materializations_for_node("scorecards")[0].metadata
    assert metadata["published"].value == 6 and metadata["settled_15m"].value == 5
    assert metadata["by_strategy"].value.splitlines()[0].startswith("| strategy | horizon_minutes | signals | pending")
    assert "| bos | 15 | 3 | 0 | 0.6667 |" in metadata["by_strategy"].value
    for name in ("overall", "by_symbol", "by_source", "by_publisher"):
        assert metadata[name].value.startswith("|")
    for name in ("mean_return_by_strategy", "win_rate_by_strategy", "mean_return_by_publisher"):
        assert "data:image/png;base64," in metadata[name].value


def write_sources(path: Path, digest: dict | None) -> Path:
    config = {"publishers": [{"name": "console", "kind": "console"}]}
    if digest is not None:
        config["digest"] = digest
    path.write_text(yaml.safe_dump(config))
    return path


def run_digest(sqlite_url: str, sources: Path, home: Path, base_url: str, run_config: dict) -> str | None:
    """Runs the digest job; None when it succeeded, else its error message."""
    resources = {"warehouse": WarehouseResource(url=sqlite_url),
                 "social_config": SocialConfigResource(config_path=str(sources)),
                 "publishers": PublishersResource(config_path=str(sources), home=str(home), telegram_base_url=base_url)}
    with DagsterInstance.ephemeral() as instance:
        result = scorecard_digest_job().execute_in_process(run_config=run_config, resources=resources,
                                                           instance=instance, raise_on_error=False)
        if result.success:
            return None
        failure = result.failure_data_for_node("send_scorecard_digest")
        return failure.error.message if failure and failure.error else "failed"


def test_the_daily_digest_reaches_the_chat(tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store_outcomes(Warehouse(make_engine(sqlite_url)))
    sources = write_sources(tmp_path / "sources.yaml", {"chat_id": "-100777", "token_env": "DIGEST_BOT_TOKEN",
                                                        "group_by": ["strategy"], "horizon_minutes": 15})
    schedule = digest_schedule(scorecard_digest_job())
    with build_schedule_context(scheduled_execution_time=DAY + timedelta(days=1, minutes=5)) as context:
        request = schedule.evaluate_tick(context).run_requests[0]  # type: ignore[index]
    assert request.run_key == "digest:2024-03-01"
    with TelegramStandIn(shared_fixtures_dir() / "telegram" / "bot_api") as standin:
        monkeypatch.setenv("DIGEST_BOT_TOKEN", standin.token)
        assert run_digest(sqlite_url, sources, tmp_path, standin.base_url, request.run_config) is None
        sent = standin.sent_to("-100777")
        assert not standin.violations
    assert len(sent) == 1
    text = sent[0].plain_text
    assert text.startswith("Signalworks scorecard 2024-03-01 (UTC)\nHorizon +15 min · pending 1")
    assert "• bos: n=3, win 67%, mean +0.83%" in text.split("Worst")[0]
    assert "• ema_cross: n=2, win 0%, mean -0.50%, t n/a" not in text  # its two returns differ: t is defined
    assert "• ema_cross: n=2, win 0%, mean -0.50%, t -5.00" in text.split("Worst")[1]
    assert "+0.5" not in text and "n=4" not in text  # the next day's signal is not in this day's digest


def test_no_digest_entry_sends_nothing_and_a_missing_token_fails_clearly(tmp_path: Path, sqlite_url: str,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    store_outcomes(Warehouse(make_engine(sqlite_url)))
    config = {"ops": {"send_scorecard_digest": {"config": {"day": "2024-03-01"}}}}
    with TelegramStandIn(shared_fixtures_dir() / "telegram" / "bot_api") as standin:
        assert run_digest(sqlite_url, write_sources(tmp_path / "none.yaml", None), tmp_path, standin.base_url,
                          config) is None
        monkeypatch.delenv("NO_SUCH_TOKEN", raising=False)
        missing = write_sources(tmp_path / "missing.yaml", {"chat_id": "-100777", "token_env": "NO_SUCH_TOKEN"})
        error = run_digest(sqlite_url, missing, tmp_path, standin.base_url, config)
        assert error is not None and "set the environment variable NO_SUCH_TOKEN" in error
        assert standin.calls_to("sendMessage") == []


def test_empty_warehouse_materialises_without_plots(sqlite_url: str) -> None:
    from assets.paper import paper_accounts

    resources = {"warehouse": WarehouseResource(url=sqlite_url)}
    result = materialize([scorecards, paper_accounts], resources=resources,
                         run_config={"ops": {"scorecards": {"config": {"as_of": "2024-03-02T00:00:00Z"}}}})
    assert result.success
    cards = result.asset_materializations_for_node("scorecards")[0].metadata
    assert cards["published"].value == 0 and "mean_return_by_strategy" not in cards
    paper = result.asset_materializations_for_node("paper_accounts")[0].metadata
    assert paper["positions"].value == 0 and not any(name.startswith("equity_") for name in paper)
