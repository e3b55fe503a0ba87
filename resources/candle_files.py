"""Candle files on disk: freqtrade's ``download-data`` output (feather, json, json.gz) and CSV.

File names follow freqtrade: ``BTC_USDT-1h.feather`` is BTC/USDT 1h spot,
``BTC_USDT_USDT-1h-futures.feather`` the BTC/USDT:USDT perpetual. Other freqtrade candle types
(``-mark``, ``-index``, ``-funding_rate``, ...) are not price candles of the market and are
skipped. A CSV may leave the timeframe out of its name (``BTC_USDT.csv``) when ``--timeframe``
gives it.

Layouts read:

* feather: columns ``date`` (UTC datetime or epoch ms), ``open``, ``high``, ``low``, ``close``,
  ``volume``, as freqtrade writes them;
* json / json.gz: a list of ``[epoch_ms, open, high, low, close, volume]`` rows (freqtrade's
  ``json`` and ``jsongz`` data formats);
* CSV: a header with ``date`` (or ``ts``/``timestamp``), ``open``, ``high``, ``low``, ``close``,
  ``volume``; dates as epoch milliseconds or ISO-8601 instants with an offset (``Z``,
  ``+00:00``; other offsets are converted to UTC). A date without an offset is rejected, since
  it could be any timezone.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ml.marketdata.candle_checks import PRICES, RAW_SCHEMA
from ml.marketdata.timeframes import TIMEFRAME_MS

SUFFIXES = (".feather", ".json", ".json.gz", ".csv")
_NAME = re.compile(r"^(?P<pair>[A-Za-z0-9]+(?:_[A-Za-z0-9]+){0,2})(?:-(?P<timeframe>\d+[mhdwM]))?"
                   r"(?:-(?P<kind>[a-z_]+))?$")
_DATE_COLUMNS = ("date", "ts", "timestamp")


class CandleFileError(ValueError):
    """A file that cannot be imported; the message names the file and what to fix."""


@dataclass(frozen=True)
class CandleFile:
    """A candle file and the market and timeframe its name declares."""

    path: Path
    symbol: str
    timeframe: str
    futures: bool

    @property
    def format(self) -> str:
        return next(s for s in SUFFIXES if self.path.name.endswith(s)).lstrip(".")


def _stem(path: Path) -> tuple[str, str] | None:
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)], suffix
    return None


def describe_file(path: Path, timeframe: str | None = None) -> CandleFile | None:
    """The market and timeframe of ``path`` from its name; None for a file of another kind.

    ``timeframe`` fills in a name that carries none (CSV); where both are present and differ the
    file is not of the requested timeframe and None is returned.

    Raises
    ------
    CandleFileError
        A candle-file suffix with a name that does not say which market or timeframe it holds.
    """
    split = _stem(path)
    if split is None:
        return None
    stem, suffix = split
    match = _NAME.match(stem)
    if match is None:
        raise CandleFileError(f"{path}: cannot read the market from the name; expected PAIR-TIMEFRAME{suffix}, "
                              f"e.g. BTC_USDT-1h{suffix} or BTC_USDT_USDT-1h-futures{suffix}")
    kind = match.group("kind") or "spot"
    if kind not in ("spot", "futures"):
        return None  # mark/index/funding-rate series of freqtrade: not candles of the market
    named = match.group("timeframe")
    if named is not None and timeframe is not None and named != timeframe:
        return None
    chosen = named or timeframe
    if chosen is None:
        raise CandleFileError(f"{path}: the name carries no timeframe; pass --timeframe")
    if chosen not in TIMEFRAME_MS:
        raise CandleFileError(f"{path}: timeframe {chosen!r} is not one the warehouse stores "
                              f"({', '.join(TIMEFRAME_MS)})")
    parts = match.group("pair").upper().split("_")
    futures = kind == "futures"
    if futures and len(parts) == 3:
        symbol = f"{parts[0]}/{parts[1]}:{parts[2]}"
    elif not futures and len(parts) == 2:
        symbol = f"{parts[0]}/{parts[1]}"
    else:
        expected = "BASE_QUOTE_SETTLE" if futures else "BASE_QUOTE"
        raise CandleFileError(f"{path}: pair {match.group('pair')!r} is not {expected}")
    return CandleFile(path, symbol, chosen, futures)


def discover(paths: Sequence[Path], timeframe: str | None = None) -> tuple[list[CandleFile], list[str]]:
    """Candle files under ``paths`` (files, or folders read non-recursively), sorted by path.

    Returns the files and the problems found while naming them (a missing path, a named file
    that is not a candle file, an unreadable name). Files in a folder that are not candle files,
    or of another timeframe than ``timeframe``, are passed over silently.
    """
    found: dict[Path, CandleFile] = {}
    problems: list[str] = []

    def add(path: Path, explicit: bool) -> None:
        try:
            described = describe_file(path, timeframe)
        except CandleFileError as error:
            problems.append(str(error))
            return
        if described is not None:
            found[path.resolve()] = described
        elif explicit and _stem(path) is None:
            problems.append(f"{path}: not a candle file (expected {', '.join(SUFFIXES)})")

    for path in paths:
        if path.is_dir():
            for child in sorted(path.iterdir()):
                if child.is_file():
                    add(child, explicit=False)
        elif path.is_file():
            add(path, explicit=True)
        else:
            problems.append(f"{path}: no such file or folder")
    return sorted(found.values(), key=lambda f: str(f.path)), problems


def read_raw(file: CandleFile) -> tuple[pl.DataFrame, str]:
    """The rows of ``file`` as :data:`ml.marketdata.candle_checks.RAW_SCHEMA` and the word for
    their positions (``"row"``; ``"line"`` for CSV, where the header is line 1).

    Raises
    ------
    CandleFileError
        Unreadable file, missing columns, or a timestamp that is not a UTC instant.
    """
    try:
        if file.format == "feather":
            return _from_columns(file.path, pl.read_ipc(file.path), first_row=1), "row"
        if file.format in ("json", "json.gz"):
            return _read_json(file.path), "row"
        return _from_columns(file.path, pl.read_csv(file.path, infer_schema_length=0), first_row=2), "line"
    except CandleFileError:
        raise
    except (OSError, ValueError, pl.exceptions.PolarsError) as error:
        raise CandleFileError(f"{file.path}: cannot read as {file.format}: {error}") from error


def _read_json(path: Path) -> pl.DataFrame:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        rows = json.load(handle)
    if not isinstance(rows, list):
        raise CandleFileError(f"{path}: expected a JSON list of [ms, open, high, low, close, volume] rows")
    for number, entry in enumerate(rows, start=1):
        if not isinstance(entry, list) or len(entry) < 6:
            raise CandleFileError(f"{path}: row {number}: expected [ms, open, high, low, close, volume], "
                                  f"got {entry!r}")
    columns = ["ts_ms", *PRICES]
    frame = pl.DataFrame({name: [entry[i] for entry in rows] for i, name in enumerate(columns)},
                         schema={name: pl.Float64() for name in columns}, strict=False)
    return _numbered(frame.with_columns(pl.col("ts_ms").cast(pl.Int64, strict=False)), first_row=1)


def _from_columns(path: Path, frame: pl.DataFrame, first_row: int) -> pl.DataFrame:
    lowered = {c: c.strip().lower() for c in frame.columns}
    frame = frame.rename(lowered)
    date = next((c for c in _DATE_COLUMNS if c in frame.columns), None)
    missing = [c for c in PRICES if c not in frame.columns]
    if date is None or missing:
        wanted = ", ".join(m for m in ([] if date else ["date"]) + missing)
        raise CandleFileError(f"{path}: missing column(s) {wanted}; found {', '.join(frame.columns)}")
    source = frame.get_column(date)
    prices = [pl.col(c).cast(pl.Float64, strict=False) for c in PRICES]
    return _numbered(frame.select(_epoch_ms(path, source, first_row).alias("ts_ms"), *prices), first_row)


def _epoch_ms(path: Path, source: pl.Series, first_row: int) -> pl.Series:
    if isinstance(source.dtype, pl.Datetime):
        if source.dtype.time_zone is None:
            raise CandleFileError(f"{path}: column {source.name!r} has no timezone; expected UTC instants")
        return source.dt.convert_time_zone("UTC").dt.cast_time_unit("ms").dt.epoch("ms")
    if source.dtype.is_numeric():
        return source.cast(pl.Int64, strict=False)
    text = source.cast(pl.String).str.strip_chars()
    as_int = text.cast(pl.Int64, strict=False)
    parsed = text.str.to_datetime(time_zone="UTC", time_unit="ms", strict=False, format="%Y-%m-%dT%H:%M:%S%.f%#z")
    parsed = parsed.fill_null(
        text.str.replace(" ", "T", literal=True)
        .str.replace("Z$", "+00:00")
        .str.to_datetime(format="%Y-%m-%dT%H:%M:%S%.f%:z", time_zone="UTC", time_unit="ms", strict=False))
    result = as_int.fill_null(parsed.dt.epoch("ms"))
    bad = [(i + first_row, value) for i, (value, ms) in enumerate(zip(text, result, strict=True))
           if value is not None and value != "" and ms is None]
    if bad:
        label = "line" if first_row == 2 else "row"
        shown = "; ".join(f"{label} {row}: {value!r}" for row, value in bad[:5])
        raise CandleFileError(f"{path}: {len(bad)} date(s) are not epoch milliseconds or ISO-8601 instants with a "
                              f"UTC offset: {shown}")
    return result


def _numbered(frame: pl.DataFrame, first_row: int) -> pl.DataFrame:
    return frame.with_row_index("row", offset=first_row).select(
        [pl.col(c).cast(t) for c, t in RAW_SCHEMA.items()])
