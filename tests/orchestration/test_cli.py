"""``signalworks demo`` end to end in a fresh data home, as `make demo` runs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from dagster import DagsterInstance

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
                     "Walk-forward per segment", "verdict: ", "Monte Carlo risk over 720 h", "equal-weight portfolio"):
        assert expected in out.stdout, expected
    assert "FAILED" not in out.stdout
    assert (home / "warehouse.db").exists()
    # every run was launched through workspace.yaml's code location, so the UI lists it under its job
    with DagsterInstance.from_config(str(home / "dagster")) as instance:
        runs = instance.get_runs()
        assert {run.job_name for run in runs} >= {"markets_job", "candles_1m_job", "candles_1h_job", "derivatives_job",
                                                  "coingecko_job", "validate_calls_job", "walk_forward_report_job",
                                                  "risk_report_job"}
        assert all(run.is_success and run.remote_job_origin is not None
                   and run.remote_job_origin.location_name == "definitions.py:defs" for run in runs), [
            (run.job_name, run.status, run.remote_job_origin) for run in runs]
    summary = subprocess.run([sys.executable, "-m", "orchestration.cli", "summary"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120)
    assert summary.returncode == 0 and "Universe by exchange" in summary.stdout
