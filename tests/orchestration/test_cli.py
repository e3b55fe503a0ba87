"""``signalworks demo`` end to end in a fresh data home, as `make demo` runs it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from dagster import DagsterInstance

from resources.warehouse.store import Warehouse

ROOT = Path(__file__).resolve().parents[2]


def test_demo_materialises_and_summarises(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "dagster").mkdir(parents=True)
    shutil.copy(ROOT / "deploy" / "dagster.local.yaml", home / "dagster" / "dagster.yaml")
    env = {**os.environ, "SIGNALWORKS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
           "SIGNALWORKS_CANDLES_1M_SYMBOLS": "5"}
    env.pop("SIGNALWORKS_DATABASE_URL", None)
    out = subprocess.run([sys.executable, "-m", "orchestration.cli", "demo", "--days", "1", "--hourly-days", "10"],
                         cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    # the run lines come first: a failed run names itself there
    assert out.returncode == 0, out.stdout[:4000] + out.stdout[-2000:] + out.stderr[-3000:]
    for expected in ("models: not trained, 10 days of 1h candles stored", "markets_job", "candles_1h,candles_mtf", "indicators", "candles_1m_job", "derivatives_job", "coingecko_job",
                     "Candles by exchange and timeframe", "Indicator rows by timeframe", "Latest 1h candles, BTC/USDT on sim",
                     "CoinGecko snapshot", "Latest asset checks", str(home / "warehouse.db"),
                     "validate_calls_job", "What each publisher would have sent", "console (console",
                     "walk_forward_report_job  majors", "walk_forward_report_job  memes", "risk_report_job",
                     "Walk-forward per segment", "verdict: ", "Monte Carlo risk over 720 h", "equal-weight portfolio",
                     "market_signals_job", "signal_outcomes,paper_accounts,scorecards",
                     "Market signals (outbox", "Publication on the replay clock (trigger candle's close + 10 s",
                     "Outcomes (signal_outcomes", "Scorecard per strategy", "Paper accounts (paper_accounts"):
        assert expected in out.stdout, expected
    assert "FAILED" not in out.stdout
    _market_sections_match_the_warehouse(out.stdout, f"sqlite:///{home / 'warehouse.db'}")
    assert (home / "warehouse.db").exists()
    # every run was launched through workspace.yaml's code location, so the UI lists it under its job
    with DagsterInstance.from_config(str(home / "dagster")) as instance:
        runs = instance.get_runs()
        assert {run.job_name for run in runs} >= {"markets_job", "candles_1m_job", "candles_1h_job", "derivatives_job",
                                                  "coingecko_job", "validate_calls_job", "walk_forward_report_job",
                                                  "risk_report_job", "market_signals_job", "__ASSET_JOB"}
        assert all(run.is_success and run.remote_job_origin is not None
                   and run.remote_job_origin.location_name == "definitions.py:defs" for run in runs), [
            (run.job_name, run.status, run.remote_job_origin) for run in runs]
    summary = subprocess.run([sys.executable, "-m", "orchestration.cli", "summary"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120)
    assert summary.returncode == 0 and "Universe by exchange" in summary.stdout


def _market_sections_match_the_warehouse(stdout: str, url: str) -> None:
    """The demo's market signals were sent on the replay clock (none expired) and its outcomes and
    paper-account lines are the stored rows."""
    from sqlalchemy import select

    from orchestration.market_demo import outcome_table, paper_summary
    from resources.warehouse.schema import signal_deliveries, signals

    with Warehouse.from_url(url).engine.connect() as connection:
        statuses = connection.execute(select(signal_deliveries.c.status).join(
            signals, signals.c.signal_id == signal_deliveries.c.signal_id).where(signals.c.kind == "market")).scalars()
        assert "expired" not in set(statuses)
    outcomes = outcome_table(url)
    assert f"after publication; {outcomes.height} signals, {int(outcomes['settled'].sum())} settled" in stdout
    lines = stdout.splitlines()
    for row in outcomes.tail(16).iter_rows(named=True):  # the rows the table shows (the newest)
        line = next(line for line in lines if re.match(rf"\s+{row['signal_id']} {row['strategy']} ", line))
        assert line.split()[6:12] == [f"{100 * row[f'return_{h}m']:+.2f}" if row[f"return_{h}m"] is not None else "-"
                                      for h in (1, 2, 3, 5, 10, 15)], (line, row)
    summary, _ = paper_summary(url)
    for row in summary.iter_rows(named=True):
        assert f"final equity {row['equity']:,.2f}" in stdout, row
