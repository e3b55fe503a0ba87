"""``signalworks backtest`` from the shell: report.json, predictions.csv and plots on a simulated
warehouse, clear errors with exit code 2, the grid section, and a run on the real Binance candles."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from ml.evaluation.segment import SegmentWalkForwardConfig
from ml.features.segments import XGBoostParams
from orchestration.backtest import REPORT_SCHEMA_VERSION, BacktestRequest, run_backtest
from resources.candle_import import import_candle_files
from resources.warehouse.store import Warehouse
from tests.support.fixtures import shared_fixtures_dir
from tests.support.planted_candles import planted_candles

ROOT = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n"
SYMBOLS = ("BTC/USDT", "ETH/USDT", "DOGE/USDT")


def _signalworks(*args: str, url: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SIGNALWORKS_HOME": str(home), "SIGNALWORKS_DATABASE_URL": url, "OMP_WAIT_POLICY": "PASSIVE"}
    return subprocess.run([sys.executable, "-m", "orchestration.cli", "backtest", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def simulated(tmp_path: Path) -> tuple[str, Warehouse]:
    """1000 hourly candles (2024-01-01 ..) of BTC, ETH (majors) and DOGE (memes), planted edge."""
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    warehouse = Warehouse.from_url(url)
    candles = planted_candles(1000, symbols=SYMBOLS, exchange="sim", seed=3)
    for (symbol,), frame in candles.group_by(["symbol"]):
        warehouse.replace_candles(frame, exchange="sim", timeframe="1h", start=frame["ts"].min(),
                                  end=frame["ts"].max() + timedelta(hours=1), symbols=[str(symbol)])
    return url, warehouse


def test_backtest_writes_report_predictions_and_plots(simulated: tuple[str, Warehouse], tmp_path: Path) -> None:
    url, _ = simulated
    out = tmp_path / "out"
    result = _signalworks("--exchange", "sim", "--symbols", "BTC/USDT", "ETH/USDT", "--start", "2024-01-01",
                          "--end", "2024-02-11", "--train-days", "20", "--test-days", "10", "--no-grid",
                          "--output", str(out), url=url, home=tmp_path / "home")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "window 2/2" in result.stderr  # the progress bar
    report = json.loads((out / "report.json").read_text())
    assert report["schema_version"] == REPORT_SCHEMA_VERSION
    assert report["inputs"]["symbols"] == ["BTC/USDT", "ETH/USDT"] and report["failures"] == {}
    assert report["inputs"]["candles"]["BTC/USDT"]["rows"] == 1000  # 2024-01-01 00:00 .. 02-11 15:00
    majors = report["segments"]["majors"]
    assert [w["window"] for w in majors["windows"]] == [0, 1]
    assert majors["config"] == {**majors["config"], "mode": "rolling", "train_days": 20.0, "test_days": 10.0}
    assert majors["verdict"]["text"].startswith(("edge after fees", "no edge after fees"))
    assert majors["selection"]["trials"] == 1 and "grid" not in majors
    predictions = pl.read_csv(out / "predictions.csv")
    assert predictions.height == sum(w["test_rows"] for w in majors["windows"])
    assert predictions["ts"][0] == "2024-01-21T00:00:00Z"
    assert set(predictions["symbol"]) == {"BTC/USDT", "ETH/USDT"} and set(predictions["position"]) <= {-1.0, 0.0, 1.0}
    for name in majors["plots"]:
        assert (out / name).read_bytes().startswith(PNG)
    assert sorted(majors["plots"]) == ["drawdown_majors.png", "equity_majors.png", "reliability_majors.png"]
    assert f"majors  2 symbols 2 windows  Sharpe {majors['overall']['sharpe']:6.2f}" in result.stdout


@pytest.mark.parametrize(("args", "message"), [
    (("--symbols", "BTC/USDT", "XRP/USDT", "--start", "2024-01-01", "--end", "2024-02-11"),
     "unknown symbol(s) ['XRP/USDT']: no 1h candles of exchange 'sim'"),
    (("--symbols", "BTC/USDT", "--start", "2025-01-01", "--end", "2025-03-01"),
     "no 1h candles of ['BTC/USDT'] between 2025-01-01 and 2025-03-02"),
    (("--symbols", "BTC/USDT", "--start", "2024-01-01", "--end", "2024-01-20"),
     "shorter than one window of 20 days, 0:00:00 training + 10 days, 0:00:00 test"),
    (("--symbols", "BTC/USDT", "--start", "2024-01-01", "--end", "2024-02-11", "--mode", "sideways"),
     "invalid choice: 'sideways'"),
])
def test_bad_input_exits_2_with_the_reason_and_writes_nothing(simulated: tuple[str, Warehouse], tmp_path: Path,
                                                               args: tuple[str, ...], message: str) -> None:
    url, _ = simulated
    out = tmp_path / "out"
    result = _signalworks("--exchange", "sim", "--train-days", "20", "--test-days", "10", "--output", str(out), *args,
                          url=url, home=tmp_path / "home")
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert not out.exists()


def test_grid_adds_pbo_and_deflates_the_sharpe_per_segment(simulated: tuple[str, Warehouse], tmp_path: Path) -> None:
    _, warehouse = simulated
    config = SegmentWalkForwardConfig(train_length=timedelta(days=20), test_length=timedelta(days=10),
                                      embargo=timedelta(hours=6), horizon=4,
                                      xgboost=XGBoostParams(n_estimators=30, max_depth=3, learning_rate=0.3))
    request = BacktestRequest(exchange="sim", symbols=SYMBOLS, timeframe="1h", start=date(2024, 1, 1),
                              end=date(2024, 2, 11), output=tmp_path / "out", config=config, grid=True)
    printed, progress = io.StringIO(), io.StringIO()
    assert run_backtest(request, warehouse, stream=printed, progress_stream=progress) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert sorted(report["segments"]) == ["majors", "memes"]
    for name, segment in report["segments"].items():
        grid = segment["grid"]
        assert len(grid["trials"]) == 27 and segment["selection"]["trials"] == 27
        assert 0.0 <= grid["pbo"] <= 1.0 and grid["cscv_blocks"] == 16 and grid["cscv_combinations"] == 12870
        assert segment["selection"]["pbo"] == grid["pbo"]
        assert {(t["horizon"], t["margin"]) for t in grid["trials"]} == {(h, m) for h in (1, 4, 12)
                                                                         for m in (0.05, 0.1, 0.2)}
        assert segment["config"]["position_hold"] == 4 and segment["config"]["position_margin"] == 0.1
        assert f"{name:<7} " in printed.getvalue()
    assert report["segments"]["memes"]["symbols"] == ["DOGE/USDT"]
    assert "grid point 9/9" in progress.getvalue()


def test_backtest_on_the_real_binance_candles(tmp_path: Path) -> None:
    folder = shared_fixtures_dir() / "binance_2024"
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    files = [folder / "BTC_USDT-1h.feather", folder / "ETH_USDT-1h.feather"]
    imported = import_candle_files(Warehouse.from_url(url), files, exchange="binance",
                                   now=datetime.fromisoformat("2025-01-01T00:00:00+00:00"))
    assert imported.ok, imported.problems
    out = tmp_path / "out"
    result = _signalworks("--exchange", "binance", "--symbols", "BTC/USDT", "ETH/USDT", "--start", "2024-01-01",
                          "--end", "2024-09-07", "--test-days", "28", "--no-grid", "--output", str(out),
                          url=url, home=tmp_path / "home")
    assert result.returncode == 0, result.stdout + result.stderr
    majors = json.loads((out / "report.json").read_text())["segments"]["majors"]
    assert len(majors["windows"]) == 5  # 84-day training, then five 28-day test windows to early September
    assert majors["windows"][0]["test_start"] == "2024-03-25T00:00:00+00:00"
    overall = majors["overall"]
    assert overall["periods"] == 5 * 28 * 24 and overall["trades"] > 0
    assert -1.0 <= overall["max_drawdown"] <= 0.0
    assert set(majors["baselines"]) == {"buy_and_hold", "always_flat", "permuted_labels"}
    assert majors["verdict"]["text"]
