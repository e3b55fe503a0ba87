"""``signalworks import`` from the shell: the per-file summary, the exit code, and a bad file among
good ones, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from resources.warehouse.engine import make_engine
from resources.warehouse.store import Warehouse
from tests.support.candle_files import (
    broken_candles,
    candle_frame,
    write_csv,
    write_feather,
    write_json,
)

ROOT = Path(__file__).resolve().parents[2]


def _signalworks(*args: str, warehouse_url: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SIGNALWORKS_HOME": str(home), "SIGNALWORKS_DATABASE_URL": warehouse_url}
    return subprocess.run([sys.executable, "-m", "orchestration.cli", "import", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_import_prints_a_summary_and_fails_loudly_on_a_bad_file(warehouse_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    write_feather(candle_frame(seed=1), folder / "BTC_USDT-1h.feather")
    write_csv(candle_frame(seed=2), folder / "ETH_USDT.csv")
    broken, message = broken_candles("high_below_low")
    bad = write_json(broken, folder / "SOL_USDT-1h.json")
    (folder / "README.txt").write_text("not a candle file: passed over inside a folder")

    first = _signalworks(str(folder), "--exchange", "Binance", "--timeframe", "1h", warehouse_url=warehouse_url,
                         home=tmp_path / "home")
    assert first.returncode == 1, first.stdout + first.stderr
    lines = first.stdout.splitlines()
    btc = next(line for line in lines if "BTC_USDT-1h.feather" in line).split()
    assert btc[1:4] == ["BTC/USDT", "1h", "48"] and btc[-1] == "48"
    assert btc[4] == "2024-03-01" and btc[5].endswith("2024-03-02") and btc[6] == "23:00"
    assert next(line for line in lines if "SOL_USDT-1h.json" in line).split()[-1] == "FAILED"
    assert "total: 2/3 files imported, 96 rows, 96 new" in first.stdout
    assert f"{bad}: {message}" in first.stderr

    warehouse = Warehouse(make_engine(warehouse_url))
    stored = warehouse.read_candles(timeframe="1h", exchange="binance")
    assert stored.group_by("symbol").len().sort("symbol").rows() == [("BTC/USDT", 48), ("ETH/USDT", 48)]

    bad.unlink()
    again = _signalworks(str(folder / "BTC_USDT-1h.feather"), str(folder / "ETH_USDT.csv"), "--exchange", "binance",
                         "--timeframe", "1h", warehouse_url=warehouse_url, home=tmp_path / "home")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "total: 2/2 files imported, 96 rows, 0 new" in again.stdout
    assert warehouse.read_candles(timeframe="1h", exchange="binance").equals(stored)


def test_import_of_a_missing_path_exits_non_zero(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    result = _signalworks(str(tmp_path / "nowhere"), "--exchange", "binance", warehouse_url=url, home=tmp_path)
    assert result.returncode == 1
    assert f"{tmp_path / 'nowhere'}: no such file or folder" in result.stderr
    assert Warehouse(make_engine(url)).read_candles(timeframe="1h").is_empty()
