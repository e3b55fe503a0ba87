"""``walk_forward_report`` and ``risk_report`` through a real Dagster instance on a small warehouse.

The warehouse holds seeded 1h candles: the majors (BTC, ETH) with the planted, documented edge of
:mod:`tests.support.planted_candles`, the memes DOGE and PEPE as random walks (edge 0), and SHIB
with only 30 candles (a symbol listed yesterday: too short for a test window and for a Monte
Carlo fit). No alts are stored, so alts have no report.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from dagster import DagsterInstance, build_schedule_context

from resources.warehouse.store import Warehouse
from tests.assets.conftest import sim_definitions
from tests.support.planted_candles import START, planted_candles

HOURS = 1500
#: Small and fast: 20-day training and 10-day test windows (4 windows), 40 shallow trees, a 2 x 1 x 2 grid.
WALK_FORWARD = {"days": 70, "train_days": 20, "test_days": 10, "embargo_hours": 6, "horizon": 2,
                "n_estimators": 40, "max_depth": 3, "learning_rate": 0.3,
                "threshold_factors": [0.5, 1.0], "horizons": [2], "margins": [0.0, 0.2]}
RISK = {"days": 60, "n_paths": 500, "horizon_hours": 48, "seed": 7}
PNG = re.compile(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)")


def _store_candles(warehouse: Warehouse) -> None:
    majors = planted_candles(HOURS, symbols=("BTC/USDT", "ETH/USDT"), edge=0.003, seed=1)
    memes = planted_candles(HOURS, symbols=("DOGE/USDT", "PEPE/USDT"), edge=0.0, seed=2)
    new_listing = planted_candles(30, symbols=("SHIB/USDT",), edge=0.0, seed=3).with_columns(
        pl.col("ts") + timedelta(hours=HOURS - 30))
    frame = pl.concat([majors, memes, new_listing])
    warehouse.replace_candles(frame, exchange="sim", timeframe="1h", start=START,
                              end=START + timedelta(hours=HOURS), symbols=frame["symbol"].unique().to_list())


@pytest.fixture(scope="module")
def materialised(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("reports")
    defs, settings = sim_definitions(home)
    _store_candles(Warehouse.from_url(settings.warehouse_url))
    runs = {}
    with DagsterInstance.ephemeral() as instance:
        for segment in ("majors", "memes", "alts"):
            runs[segment] = defs.resolve_job_def("walk_forward_report_job").execute_in_process(
                instance=instance, partition_key=segment, raise_on_error=False,
                run_config={"ops": {"walk_forward_report": {"config": WALK_FORWARD}}})
        runs["risk"] = defs.resolve_job_def("risk_report_job").execute_in_process(
            instance=instance, raise_on_error=False, run_config={"ops": {"risk_report": {"config": RISK}}})
    return home, defs, runs


def _metadata(result, node: str) -> dict:
    (event,) = result.asset_materializations_for_node(node)
    return {key: value.value for key, value in event.metadata.items()}


def _table_rows(markdown: str) -> list[list[str]]:
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def _assert_png(markdown: str) -> None:
    (encoded,) = PNG.findall(markdown)
    assert base64.b64decode(encoded).startswith(b"\x89PNG\r\n\x1a\n")


def test_walk_forward_report_finds_the_planted_edge_and_stores_its_json(materialised) -> None:
    home, _, runs = materialised
    assert runs["majors"].success
    metadata = _metadata(runs["majors"], "walk_forward_report")
    report = json.loads((home / "reports" / "walk_forward" / "majors.json").read_text())
    assert report["segment"] == "majors" and report["symbols"] == ["BTC/USDT", "ETH/USDT"]
    assert report["verdict"]["edge_after_fees"] is True
    assert metadata["verdict"].startswith("**edge after fees**\n\n- deflated Sharpe")
    assert report["verdict"]["text"].startswith("edge after fees: deflated Sharpe")
    assert metadata["edge_after_fees"] is True
    assert report["selection"]["trials"] == metadata["trials"] == 4
    assert metadata["pbo"] == pytest.approx(report["selection"]["pbo"])
    assert metadata["deflated_sharpe"] == pytest.approx(report["selection"]["deflated_sharpe"])
    assert report["selection"]["deflated_sharpe"] >= 0.95
    assert Path(metadata["report_path"]) == home / "reports" / "walk_forward" / "majors.json"

    windows = _table_rows(metadata["windows"])
    assert len(windows) == len(report["windows"]) == 4
    header = metadata["windows"].splitlines()[0]
    for column in ("oos_sharpe", "oos_sortino", "oos_calmar", "oos_max_drawdown", "oos_win_rate_per_trade",
                   "oos_profit_factor_per_trade", "oos_trades", "oos_p_value", "overfit_ratio", "overfit"):
        assert column in header
    overall = {row[0]: row for row in _table_rows(metadata["overall_vs_baselines"])}
    assert set(overall) == {"strategy", "buy_and_hold", "permuted_labels", "always_flat"}
    assert float(overall["strategy"][1]) == pytest.approx(report["overall"]["sharpe"], rel=1e-3)
    assert float(overall["strategy"][1]) > float(overall["buy_and_hold"][1])
    for plot in ("equity_curves", "drawdown", "reliability"):
        _assert_png(metadata[plot])
    calibration = report["calibration"]
    assert calibration["rows"] > 0 and metadata["brier_after"] == pytest.approx(calibration["brier_after"])
    # the realised out-of-sample returns the risk report bootstraps: one per test bar of every window
    returns = report["portfolio_returns"]
    assert len(returns["strategy"]) == len(returns["ts"]) == sum(w["test_rows"] for w in report["windows"]) // 2


def test_a_short_symbol_is_left_out_and_named_while_its_segment_reports(materialised) -> None:
    home, _, runs = materialised
    assert runs["memes"].success
    metadata = _metadata(runs["memes"], "walk_forward_report")
    report = json.loads((home / "reports" / "walk_forward" / "memes.json").read_text())
    assert report["symbols"] == ["DOGE/USDT", "PEPE/USDT"]
    assert list(report["skipped_symbols"]) == ["SHIB/USDT"]
    assert "30 candles in the window" in report["skipped_symbols"]["SHIB/USDT"]
    assert _table_rows(metadata["skipped_symbols"])[0][0] == "SHIB/USDT"
    assert report["verdict"]["edge_after_fees"] is False and metadata["verdict"].startswith("**no edge after fees**")
    reasons = report["verdict"]["text"].split(": ", 1)[1].split("; ")
    assert [line[2:] for line in metadata["verdict"].splitlines()[2:]] == reasons


def test_a_segment_without_candles_fails_with_a_clear_message(materialised) -> None:
    home, _, runs = materialised
    assert not runs["alts"].success
    (failure,) = [event for event in runs["alts"].all_events if event.is_step_failure]
    assert "no 1h candles of any alts symbol on sim" in failure.event_specific_data.error.message
    assert not (home / "reports" / "walk_forward" / "alts.json").exists()


def test_risk_report_lists_what_failed_and_reports_the_rest(materialised) -> None:
    home, _, runs = materialised
    assert runs["risk"].success
    metadata = _metadata(runs["risk"], "risk_report")
    risk = json.loads((home / "reports" / "risk" / "risk_report.json").read_text())
    assert set(risk["failures"]) == {"segment:alts", "symbol:SHIB/USDT"}
    assert "materialise walk_forward_report[alts]" in risk["failures"]["segment:alts"]
    assert "at least 30 log returns" in risk["failures"]["symbol:SHIB/USDT"]
    assert {row[0] for row in _table_rows(metadata["failures"])} == set(risk["failures"])

    fitted = ["BTC/USDT", "DOGE/USDT", "ETH/USDT", "PEPE/USDT"]
    assert [row["symbol"] for row in risk["parameters"]] == fitted
    rows = {(r["symbol"], r["model"], r["vol_multiplier"]): r for r in risk["symbols"]}
    assert set(rows) == {(s, m, v) for s in fitted for m, v in
                         (("gbm", 1.0), ("merton", 1.0), ("merton", 2.0), ("merton", 3.0), ("merton", 5.0))}
    for row in rows.values():
        assert row["n_paths"] == 500 and row["horizon_steps"] == 48
        assert 0 < row["var_95"] <= row["var_99"] <= row["cvar_99"] and row["var_95"] <= row["cvar_95"]
    for symbol in fitted:  # more volatility, more risk
        assert rows[(symbol, "merton", 1.0)]["var_99"] < rows[(symbol, "merton", 5.0)]["var_99"]
    assert {row[0] for row in _table_rows(metadata["symbol_risk"])} == set(fitted)
    assert {row[2] for row in _table_rows(metadata["stress"])} == {"2", "3", "5"}

    assert risk["portfolio"]["symbols"] == fitted and 0 < risk["portfolio"]["var_95"] <= risk["portfolio"]["var_99"]
    for figure in ("var_95", "cvar_95", "var_99", "cvar_99"):
        assert metadata[f"portfolio_{figure}"] == pytest.approx(risk["portfolio"][figure])
    assert [row["strategy"] for row in risk["bootstrap"]] == ["majors", "memes"]
    for segment, row in zip(("majors", "memes"), risk["bootstrap"], strict=True):
        stored = json.loads((home / "reports" / "walk_forward" / f"{segment}.json").read_text())
        assert row["observations"] == len(stored["portfolio_returns"]["strategy"])
        assert row["n_paths"] == 500 and row["var_95"] <= row["cvar_95"]
        # the random-walk memes risk a loss; the planted edge, held for its horizon, may gain even at 95 %
        assert segment == "majors" or row["var_95"] > 0
    assert [int(row[1]) for row in _table_rows(metadata["strategy_bootstrap"])] == [
        row["observations"] for row in risk["bootstrap"]]
    for key in ("portfolio_drawdowns", "bootstrap_drawdowns_majors", "bootstrap_drawdowns_memes"):
        _assert_png(metadata[key])


def test_report_schedules_request_every_segment_daily(materialised) -> None:
    _, defs, _ = materialised
    moment = datetime(2024, 3, 12, 1, 20, tzinfo=UTC)
    repository = defs.get_repository_def()
    schedule = repository.get_schedule_def("walk_forward_report_schedule")
    assert schedule.cron_schedule == "20 1 * * *" and schedule.execution_timezone == "UTC"
    with build_schedule_context(scheduled_execution_time=moment, repository_def=repository) as context:
        requests = list(schedule.evaluate_tick(context).run_requests or [])
    assert [(r.partition_key, r.run_key) for r in requests] == [
        (segment, f"{segment}@2024-03-12T01:20:00+00:00") for segment in ("majors", "alts", "memes")]
    risk = repository.get_schedule_def("risk_report_schedule")
    assert risk.cron_schedule == "20 3 * * *" and risk.job_name == "risk_report_job"
