"""``signalworks backtest --strategy``: the real 2024 Binance 5m candles (and freqtrade's 1m candles)
imported with ``signalworks import``, the report in the model backtest's layout, clear errors."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from ml.evaluation.strategy import StrategyBacktestConfig
from ml.strategies.backtest import aggregate_candles
from orchestration.backtest import REPORT_SCHEMA_VERSION
from orchestration.strategy_backtest import StrategyBacktestRequest, run_strategy_backtest
from resources.candle_import import import_candle_files
from resources.warehouse.store import Warehouse
from tests.support.fixtures import shared_fixtures_dir

ROOT = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n"
IMPORTED_AT = datetime.fromisoformat("2025-01-01T00:00:00+00:00")


def _signalworks(*args: str, url: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SIGNALWORKS_HOME": str(home), "SIGNALWORKS_DATABASE_URL": url, "OMP_WAIT_POLICY": "PASSIVE"}
    return subprocess.run([sys.executable, "-m", "orchestration.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Warehouse]:
    """BTC and ETH 5m and 1h candles of 2024, imported through ``signalworks import`` (the CLI)."""
    fixtures = shared_fixtures_dir()
    folder = tmp_path_factory.mktemp("strategy-backtest")
    url = f"sqlite:///{folder / 'warehouse.db'}"
    files = [str(fixtures / "binance_2024" / f"{base}_USDT-{tf}.feather") for base in ("BTC", "ETH")
             for tf in ("5m", "1h")]
    result = _signalworks("import", *files, "--exchange", "binance", url=url, home=folder / "home")
    assert result.returncode == 0, result.stdout + result.stderr
    return url, Warehouse.from_url(url)


def test_bos_on_the_real_5m_candles_from_the_shell(warehouse: tuple[str, Warehouse], tmp_path: Path) -> None:
    url, _ = warehouse
    out = tmp_path / "out"
    result = _signalworks("backtest", "--strategy", "bos", "--exchange", "binance", "--symbols", "BTC/USDT",
                          "ETH/USDT", "--timeframe", "5m", "--start", "2024-01-01", "--end", "2024-03-31",
                          "--train-days", "28", "--test-days", "14", "--output", str(out), url=url,
                          home=tmp_path / "home")
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads((out / "report.json").read_text())
    assert document["schema_version"] == REPORT_SCHEMA_VERSION and document["failures"] == {}
    assert document["inputs"]["strategy"] == "bos" and document["inputs"]["outcome_candles"] == "5m"
    assert document["inputs"]["candles"]["BTC/USDT"]["rows"] == 91 * 288  # 2024-01-01 .. 03-31, 288 a day
    bos = document["segments"]["bos"]
    assert [w["window"] for w in bos["windows"]] == [0, 1, 2, 3]
    assert {"overall", "baselines", "selection", "verdict", "grid", "trades", "horizons"} <= set(bos)
    assert bos["selection"]["trials"] == len(bos["grid"]["trials"]) == 9
    assert bos["outcome_clock"]["horizon_minutes"] == [5, 10, 15, 25, 50, 75]
    signals = pl.read_csv(out / "signals.csv")
    assert signals.height == bos["trades"]["signals"] > 0
    assert set(signals["exit_reason"]) <= {"stop", "target", "time", "open"}
    assert sorted(bos["plots"]) == ["drawdown_bos.png", "equity_bos.png"]
    for name in bos["plots"]:
        assert (out / name).read_bytes().startswith(PNG)
    assert "bos: " in result.stdout and "walk-forward 4 windows" in result.stdout
    assert bos["verdict"]["text"] in result.stdout


def test_ema_cross_builds_15m_from_5m_and_uses_the_stored_1h(warehouse: tuple[str, Warehouse], tmp_path: Path) -> None:
    _, store = warehouse
    request = StrategyBacktestRequest(
        strategy="ema_cross", exchange="binance", symbols=("BTC/USDT", "ETH/USDT"), timeframe="15m",
        start=date(2024, 1, 1), end=date(2024, 3, 31), output=tmp_path / "out",
        config=StrategyBacktestConfig(train_length=timedelta(days=28), test_length=timedelta(days=14)), grid=False)
    printed = io.StringIO()
    assert run_strategy_backtest(request, store, stream=printed) == 0
    document = json.loads((tmp_path / "out" / "report.json").read_text())
    ema = document["segments"]["ema_cross"]
    assert document["inputs"]["candles"]["BTC/USDT"]["rows"] == 91 * 96  # 15m built from 5m
    assert ema["timeframe"] == "15m" and ema["selection"]["trials"] == 1 and ema["selection"]["pbo"] is None
    assert ema["outcome_clock"]["horizon_minutes"] == [15, 30, 45, 75, 150, 225]
    assert ema["trades"]["signals"] > 0 and ema["parameters"]["fast_ema"] == 9


def test_bos_on_freqtrade_1m_candles_measures_outcomes_in_minutes(tmp_path: Path) -> None:
    source = shared_fixtures_dir() / "freqtrade" / "UNITTEST_BTC-1m.feather"
    store = Warehouse.from_url(f"sqlite:///{tmp_path / 'warehouse.db'}")
    assert import_candle_files(store, [source], exchange="binance", now=IMPORTED_AT).ok
    request = StrategyBacktestRequest(
        strategy="bos", exchange="binance", symbols=("UNITTEST/BTC",), timeframe="1m", start=date(2017, 11, 5),
        end=date(2017, 11, 14), output=tmp_path / "out",
        config=StrategyBacktestConfig(train_length=timedelta(days=4), test_length=timedelta(days=1),
                                      period=timedelta(hours=1)))
    assert run_strategy_backtest(request, store, stream=io.StringIO()) == 0
    document = json.loads((tmp_path / "out" / "report.json").read_text())
    bos = document["segments"]["bos"]
    assert document["inputs"]["outcome_candles"] == "1m"
    assert bos["outcome_clock"]["horizon_minutes"] == [1, 2, 3, 5, 10, 15]
    assert len(bos["windows"]) == 6 and bos["overall"]["periods"] == 6 * 24
    assert bos["trades"]["signals"] > 0
    # BOS on 5m candles of the same market: horizons of 5m candles, measured on the stored 1m candles
    minutes = store.read_candles(timeframe="1m", exchange="binance", symbols=["UNITTEST/BTC"])
    five = aggregate_candles(minutes, "5m")
    store.replace_candles(five, exchange="binance", timeframe="5m", start=five["ts"].min(),
                          end=five["ts"].max() + timedelta(minutes=5), symbols=["UNITTEST/BTC"])
    on_five = replace(request, timeframe="5m", output=tmp_path / "five")
    assert run_strategy_backtest(on_five, store, stream=io.StringIO()) == 0
    document = json.loads((tmp_path / "five" / "report.json").read_text())
    assert document["inputs"]["outcome_candles"] == "1m"
    assert document["segments"]["bos"]["outcome_clock"] == {
        "candles": "1m", "horizon_candles": [1, 2, 3, 5, 10, 15], "horizon_minutes": [5, 10, 15, 25, 50, 75]}


@pytest.mark.parametrize(("args", "message"), [
    (("--strategy", "bos", "--symbols", "XRP/USDT", "--timeframe", "5m", "--start", "2024-01-01", "--end",
      "2024-03-31"), "no 5m candles of ['XRP/USDT'] on 'binance'"),
    (("--strategy", "bos", "--symbols", "BTC/USDT", "--timeframe", "5m", "--start", "2024-01-01", "--end",
      "2024-01-20"), "shorter than one window"),
    (("--strategy", "macd", "--symbols", "BTC/USDT", "--start", "2024-01-01", "--end", "2024-03-31"),
     "invalid choice: 'macd'"),
    (("--strategy", "bos", "--symbols", "BTC/USDT", "--timeframe", "5m", "--start", "2024-01-01", "--end",
      "2024-03-31", "--period-hours", "0"), "--period-hours must be positive"),
])
def test_bad_input_exits_2_with_the_reason_and_writes_nothing(warehouse: tuple[str, Warehouse], tmp_path: Path,
                                                               args: tuple[str, ...], message: str) -> None:
    url, _ = warehouse
    out = tmp_path / "out"
    result = _signalworks("backtest", "--exchange", "binance", "--train-days", "28", "--test-days", "14",
                          "--output", str(out), *args, url=url, home=tmp_path / "home")
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert not out.exists()
