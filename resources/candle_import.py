"""Import candle files into the warehouse: validate every file first, then write each valid file.

Policy (documented in the README):

* Every file is read and validated before anything is written. A file with any problem is not
  written at all; the other, valid files are written, and the import as a whole reports failure.
* Each file is written in one transaction through :meth:`Warehouse.replace_candles`, the path
  the assets use. A file adds and corrects candles; it never removes a stored candle the file
  does not hold (stored rows in the file's span that the file lacks are written back unchanged).
* Idempotent: candles already stored with the same values are not counted as new, and a file
  with nothing new is not written at all, so a second import reports 0 new rows.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from ml.marketdata.candle_checks import PRICES, check_candles
from ml.marketdata.frames import CANDLE_SCHEMA
from ml.marketdata.timeframes import timeframe_ms, to_ms
from resources.candle_files import CandleFile, CandleFileError, discover, read_raw
from resources.warehouse.store import Warehouse

#: Problems listed per file before "... and N more".
SHOWN_PROBLEMS = 20


@dataclass(frozen=True)
class FileResult:
    """What happened to one file: rows read and kept, span, new rows written, or its problems."""

    path: Path
    symbol: str
    timeframe: str
    rows: int = 0
    first: datetime | None = None
    last: datetime | None = None
    written: int = 0
    dropped_open: int = 0
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class ImportReport:
    files: tuple[FileResult, ...]
    problems: tuple[str, ...]  # problems not tied to one readable file (missing paths, bad names)
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.problems and all(f.ok for f in self.files)


@dataclass(frozen=True)
class _Checked:
    file: CandleFile
    frame: pl.DataFrame  # CANDLE_SCHEMA, sorted, closed candles only
    dropped_open: int


def _check(file: CandleFile, *, exchange: str, now: datetime) -> _Checked | FileResult:
    try:
        raw, label = read_raw(file)
    except CandleFileError as error:
        return FileResult(file.path, file.symbol, file.timeframe, problems=(str(error),))
    checked = check_candles(raw, timeframe=file.timeframe, now_ms=to_ms(now), row_label=label)
    if not checked.ok:
        problems = checked.problems
        if len(problems) > SHOWN_PROBLEMS:
            problems = (*problems[:SHOWN_PROBLEMS], f"... and {len(problems) - SHOWN_PROBLEMS} more")
        return FileResult(file.path, file.symbol, file.timeframe, rows=raw.height,
                          problems=tuple(f"{file.path}: {p}" for p in problems))
    frame = checked.frame.select(pl.lit(exchange).alias("exchange"), pl.lit(file.symbol).alias("symbol"),
                                 pl.lit(file.timeframe).alias("timeframe"), *checked.frame.columns)
    return _Checked(file, frame.select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()]), checked.dropped_open)


def _write(warehouse: Warehouse, checked: _Checked, exchange: str) -> FileResult:
    file, frame = checked.file, checked.frame
    base = FileResult(file.path, file.symbol, file.timeframe, rows=frame.height, dropped_open=checked.dropped_open)
    if frame.is_empty():
        return base
    first, last = frame.get_column("ts").min(), frame.get_column("ts").max()
    end = last + timedelta(milliseconds=timeframe_ms(file.timeframe))  # type: ignore[operator]
    stored = warehouse.read_candles(timeframe=file.timeframe, exchange=exchange, symbols=[file.symbol],
                                    start=first, end=end)  # type: ignore[arg-type]
    new = frame.join(stored, on=["ts", *PRICES], how="anti", nulls_equal=True)
    if new.is_empty():
        return replace(base, first=first, last=last)
    kept = stored.join(frame, on="ts", how="anti")  # stored candles the file does not hold
    merged = pl.concat([frame, kept]).sort("ts")
    warehouse.replace_candles(merged, exchange=exchange, timeframe=file.timeframe, start=first,  # type: ignore[arg-type]
                              end=end, symbols=[file.symbol])
    return replace(base, first=first, last=last, written=new.height)


def import_candle_files(warehouse: Warehouse, paths: Sequence[Path], *, exchange: str, now: datetime,
                        timeframe: str | None = None) -> ImportReport:
    """Validate every candle file under ``paths``, then write the valid ones (one transaction each).

    ``now`` (aware UTC) decides which candles have closed; ``timeframe`` selects files of that
    timeframe and names the timeframe of files whose name carries none.
    """
    started = time.monotonic()
    files, problems = discover(paths, timeframe)
    if not files and not problems:
        problems.append(f"no candle files ({', '.join(('feather', 'json', 'json.gz', 'csv'))}) under "
                        + ", ".join(str(p) for p in paths)
                        + (f" for timeframe {timeframe}" if timeframe else ""))
    checked = [_check(file, exchange=exchange, now=now) for file in files]
    results = [_write(warehouse, item, exchange) if isinstance(item, _Checked) else item for item in checked]
    return ImportReport(tuple(results), tuple(problems), time.monotonic() - started)
