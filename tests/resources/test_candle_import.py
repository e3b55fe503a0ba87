"""``signalworks import``'s engine: freqtrade feather/json and CSV files into the warehouse, on
SQLite and PostgreSQL, validated first, idempotent, and never half-imported."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from ml.marketdata.timeframes import to_ms
from resources.candle_files import CandleFileError, describe_file
from resources.candle_import import import_candle_files
from resources.warehouse.store import Warehouse
from tests.support.candle_files import (
    PRICES,
    START,
    broken_candles,
    candle_frame,
    write_csv,
    write_feather,
    write_json,
)
from tests.support.fixtures import shared_fixtures_dir

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def _stored(warehouse: Warehouse, symbol: str, timeframe: str = "1h", exchange: str = "binance") -> pl.DataFrame:
    return warehouse.read_candles(timeframe=timeframe, exchange=exchange, symbols=[symbol]).select("ts", *PRICES)


@pytest.mark.parametrize(("name", "symbol", "timeframe"), [
    ("BTC_USDT-1h.feather", "BTC/USDT", "1h"),
    ("ETH_USDT-5m.json", "ETH/USDT", "5m"),
    ("ETH_USDT-5m.json.gz", "ETH/USDT", "5m"),
    ("BTC_USDT_USDT-1h-futures.feather", "BTC/USDT:USDT", "1h"),
    ("sol_usdt-4h.csv", "SOL/USDT", "4h"),
])
def test_names_declare_market_and_timeframe(name: str, symbol: str, timeframe: str) -> None:
    described = describe_file(Path(name))
    assert described is not None and (described.symbol, described.timeframe) == (symbol, timeframe)


def test_names_without_a_timeframe_or_of_other_kinds() -> None:
    assert describe_file(Path("BTC_USDT_USDT-8h-funding_rate.feather")) is None
    assert describe_file(Path("notes.txt")) is None
    assert describe_file(Path("BTC_USDT-5m.feather"), timeframe="1h") is None  # filtered out
    described = describe_file(Path("BTC_USDT.csv"), timeframe="1h")
    assert described is not None and described.timeframe == "1h"
    with pytest.raises(CandleFileError, match=r"BTC_USDT\.csv: the name carries no timeframe"):
        describe_file(Path("BTC_USDT.csv"))
    with pytest.raises(CandleFileError, match="pair 'BTC' is not BASE_QUOTE"):
        describe_file(Path("BTC-1h.feather"))


def test_feather_json_and_csv_import_identically_and_idempotently(warehouse: Warehouse, tmp_path: Path) -> None:
    frame = candle_frame()
    files = [write_feather(frame, tmp_path / "BTC_USDT-1h.feather"),
             write_json(candle_frame(seed=8), tmp_path / "ETH_USDT-1h.json"),
             write_csv(candle_frame(seed=9), tmp_path / "SOL_USDT.csv")]
    report = import_candle_files(warehouse, files, exchange="binance", now=NOW, timeframe="1h")
    assert report.ok, report
    assert [(r.symbol, r.rows, r.written) for r in report.files] == [
        ("BTC/USDT", 48, 48), ("ETH/USDT", 48, 48), ("SOL/USDT", 48, 48)]
    assert report.files[0].first == START and report.files[0].last == START + timedelta(hours=47)
    for symbol, seed in (("BTC/USDT", 7), ("ETH/USDT", 8), ("SOL/USDT", 9)):
        assert _stored(warehouse, symbol).equals(candle_frame(seed=seed)), symbol

    again = import_candle_files(warehouse, [tmp_path], exchange="binance", now=NOW, timeframe="1h")
    assert again.ok and [r.written for r in again.files] == [0, 0, 0]
    assert _stored(warehouse, "BTC/USDT").equals(frame)


def test_a_corrected_candle_is_rewritten_and_stored_candles_outside_the_file_are_kept(
        warehouse: Warehouse, tmp_path: Path) -> None:
    frame = candle_frame()
    import_candle_files(warehouse, [write_feather(frame, tmp_path / "BTC_USDT-1h.feather")], exchange="binance",
                        now=NOW)
    # a later file lacks hour 10 (a gap) and corrects hour 20's volume
    corrected = frame.with_columns(pl.when(pl.int_range(pl.len()) == 20).then(pl.col("volume") * 2)
                                   .otherwise(pl.col("volume")).alias("volume")).filter(pl.int_range(pl.len()) != 10)
    report = import_candle_files(warehouse, [write_json(corrected, tmp_path / "BTC_USDT-1h.json")],
                                 exchange="binance", now=NOW)
    assert report.ok and report.files[0].written == 1
    stored = _stored(warehouse, "BTC/USDT")
    assert stored.height == 48 and stored.row(10) == frame.row(10)
    assert stored.item(20, "volume") == pytest.approx(frame.item(20, "volume") * 2)


def test_the_candle_still_open_is_dropped_and_a_future_one_is_an_error(warehouse: Warehouse, tmp_path: Path) -> None:
    frame = candle_frame()
    path = write_feather(frame, tmp_path / "BTC_USDT-1h.feather")
    now = START + timedelta(hours=47, minutes=30)  # the last candle closes at 48:00
    report = import_candle_files(warehouse, [path], exchange="binance", now=now)
    assert report.ok and report.files[0].rows == 47 and report.files[0].dropped_open == 1
    assert _stored(warehouse, "BTC/USDT").equals(frame.head(47))

    early = import_candle_files(warehouse, [path], exchange="binance", now=START + timedelta(hours=46, minutes=30))
    assert not early.ok
    assert "row 48: candle opens at 2024-03-02T23:00:00Z, after now (2024-03-02T22:30:00Z)" in early.files[0].problems[0]


@pytest.mark.parametrize("kind", ["misaligned", "high_below_low", "nan", "negative_volume", "duplicate"])
def test_a_bad_file_is_named_with_its_row_and_nothing_of_it_is_written(
        warehouse: Warehouse, tmp_path: Path, kind: str) -> None:
    good = write_feather(candle_frame(seed=8), tmp_path / "ETH_USDT-1h.feather")
    broken, message = broken_candles(kind)
    bad = write_json(broken, tmp_path / "BTC_USDT-1h.json")
    report = import_candle_files(warehouse, [tmp_path], exchange="binance", now=NOW)
    assert not report.ok
    by_symbol = {r.symbol: r for r in report.files}
    assert by_symbol["ETH/USDT"].ok and by_symbol["ETH/USDT"].written == 48
    problems = by_symbol["BTC/USDT"].problems
    assert problems and all(p.startswith(f"{bad}: ") for p in problems)
    assert any(message in p for p in problems), problems
    assert any("open=" in p and "volume=" in p for p in problems), problems  # offending values are shown
    assert _stored(warehouse, "BTC/USDT").is_empty()
    assert _stored(warehouse, "ETH/USDT").height == 48
    assert good.exists()


def test_csv_errors_name_the_line_and_reject_dates_without_an_offset(warehouse: Warehouse, tmp_path: Path) -> None:
    broken, _ = broken_candles("high_below_low")
    path = write_csv(broken, tmp_path / "BTC_USDT-1h.csv")
    report = import_candle_files(warehouse, [path], exchange="binance", now=NOW)
    assert "line 6: high < low at 2024-03-01T04:00:00Z" in report.files[0].problems[0]

    naive = tmp_path / "ETH_USDT-1h.csv"
    naive.write_text("date,open,high,low,close,volume\n2024-03-01 00:00:00,1,2,0.5,1.5,10\n")
    report = import_candle_files(warehouse, [naive], exchange="binance", now=NOW)
    assert not report.ok and "line 2: '2024-03-01 00:00:00'" in report.files[0].problems[0]

    epoch = tmp_path / "SOL_USDT-1h.csv"
    epoch.write_text(f"date,open,high,low,close,volume\n{to_ms(START)},1,2,0.5,1.5,10\n"
                     "2024-03-01 01:00:00+00:00,1.5,2,1,1.2,0\n2024-03-01T04:00:00+02:00,1.2,1.3,1.1,1.25,3\n")
    report = import_candle_files(warehouse, [epoch], exchange="binance", now=NOW)
    assert report.ok and report.files[0].written == 3
    assert _stored(warehouse, "SOL/USDT").get_column("ts").to_list() == [START + timedelta(hours=h) for h in (0, 1, 2)]


def test_paths_that_are_missing_or_empty_are_reported(warehouse: Warehouse, tmp_path: Path) -> None:
    report = import_candle_files(warehouse, [tmp_path / "nowhere"], exchange="binance", now=NOW)
    assert not report.ok and report.problems == (f"{tmp_path / 'nowhere'}: no such file or folder",)
    report = import_candle_files(warehouse, [tmp_path], exchange="binance", now=NOW)
    assert not report.ok and "no candle files" in report.problems[0]


def test_real_binance_fixtures_import_whole_and_idempotently(warehouse: Warehouse) -> None:
    folder = shared_fixtures_dir() / "binance_2024"
    report = import_candle_files(warehouse, [folder], exchange="binance", now=NOW, timeframe="1h")
    assert report.ok, [p for r in report.files for p in r.problems]
    assert len(report.files) == 10
    for result in report.files:
        source = pl.read_ipc(result.path)
        assert result.rows == result.written == source.height
        assert result.first == source.get_column("date").min()
    btc = _stored(warehouse, "BTC/USDT")
    source = pl.read_ipc(folder / "BTC_USDT-1h.feather")
    assert btc.get_column("close").to_list() == source.get_column("close").to_list()
    again = import_candle_files(warehouse, [folder / "BTC_USDT-1h.feather", folder / "PEPE_USDT-1h.feather"],
                                exchange="binance", now=NOW)
    assert again.ok and [r.written for r in again.files] == [0, 0]


def test_futures_names_gzipped_json_and_unsorted_rows(warehouse: Warehouse, tmp_path: Path) -> None:
    frame = candle_frame()
    write_feather(frame.reverse(), tmp_path / "BTC_USDT_USDT-1h-futures.feather")  # rows newest first
    rows = [[to_ms(r["ts"]), *(r[c] for c in PRICES)] for r in candle_frame(seed=3).iter_rows(named=True)]
    with gzip.open(tmp_path / "ETH_USDT-1h.json.gz", "wt") as handle:
        json.dump(rows, handle)
    write_feather(frame, tmp_path / "BTC_USDT_USDT-8h-funding_rate.feather")  # not candles: passed over
    report = import_candle_files(warehouse, [tmp_path], exchange="binance", now=NOW)
    assert report.ok and [(r.symbol, r.written) for r in report.files] == [("BTC/USDT:USDT", 48), ("ETH/USDT", 48)]
    assert _stored(warehouse, "BTC/USDT:USDT").equals(frame)
    assert _stored(warehouse, "ETH/USDT").equals(candle_frame(seed=3))
