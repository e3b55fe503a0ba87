"""``signalworks backtest``: the segment walk-forward from the shell, on candles in the warehouse.

Glue only: read candles (resources.warehouse), call :func:`ml.evaluation.segment.segment_walk_forward`
and :func:`ml.evaluation.grid.run_grid` per segment, write the files. Output folder:

* ``report.json`` (layout :data:`REPORT_SCHEMA_VERSION`, README "Backtesting"): ``schema_version``,
  ``inputs`` (exchange, timeframe, symbols, start, end, warehouse, per-symbol candle counts),
  ``segments`` (segment name -> :meth:`SegmentWalkForward.to_dict`, plus ``calibration`` and, with
  the grid, ``grid``), ``failures`` (segment -> error) and ``seconds`` per segment;
* ``predictions.csv``: one row per segment, symbol and test bar: ``segment, symbol, window, ts``
  (ISO-8601 UTC), ``p_down, p_flat, p_up, position, label, asset_return, net_return,
  permuted_position``;
* ``equity_<segment>.png``, ``drawdown_<segment>.png``, ``reliability_<segment>.png``.

Exit codes: 0 every segment ran; 1 a segment failed (the others are still written); 2 bad input
(unknown symbol, no candles in the range, range too short for one window), nothing written.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import polars as pl

from ml.evaluation.costs import TradingCosts
from ml.evaluation.segment import SegmentWalkForward, SegmentWalkForwardConfig
from ml.features.segments import SegmentsConfig

REPORT_SCHEMA_VERSION = 1
EXIT_OK, EXIT_SEGMENT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class BacktestInputError(ValueError):
    """The request cannot run: names what to fix."""


@dataclass(frozen=True)
class BacktestRequest:
    exchange: str
    symbols: tuple[str, ...]
    timeframe: str
    start: date
    end: date  # inclusive day: candles opening before end + 1 day
    output: Path
    config: SegmentWalkForwardConfig
    grid: bool = True


class ProgressBar:
    """tqdm on stderr when installed, else a one-line ``[#####     ] 3/9 label`` bar."""

    def __init__(self, total: int, stream: TextIO = sys.stderr) -> None:
        self.total, self.stream, self.done = total, stream, 0
        try:
            from tqdm import tqdm

            self._tqdm: Any = tqdm(total=total, file=stream, unit="fit", dynamic_ncols=True)
        except ImportError:
            self._tqdm = None

    def advance(self, label: str) -> None:
        self.done += 1
        if self._tqdm is not None:
            self._tqdm.set_description(label)
            self._tqdm.update(1)
            return
        filled = int(30 * self.done / max(self.total, 1))
        self.stream.write(f"\r[{'#' * filled}{' ' * (30 - filled)}] {self.done}/{self.total} {label:<40}")
        self.stream.flush()

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
        else:
            self.stream.write("\n")


def read_candles(warehouse: Any, request: BacktestRequest, segments: SegmentsConfig) -> pl.DataFrame:
    """The requested symbols' candles in ``[start, end + 1 day)``, plus the cross-asset reference
    symbol (BTC/USDT) as context when stored. Raises :class:`BacktestInputError` naming unknown symbols
    or an empty range."""
    start = datetime.combine(request.start, datetime.min.time(), UTC)
    end = datetime.combine(request.end, datetime.min.time(), UTC) + timedelta(days=1)
    if end <= start:
        raise BacktestInputError(f"--end {request.end} is before --start {request.start}")
    reference = request.config.features.reference_symbol
    wanted = sorted({*request.symbols, reference})
    stored = warehouse.read_candles(timeframe=request.timeframe, exchange=request.exchange, symbols=wanted,
                                    start=start, end=end)
    counts = dict(stored.group_by("symbol").len().iter_rows()) if stored.height else {}
    missing = [s for s in request.symbols if s not in counts]
    if missing:
        anywhere = warehouse.read_candles(timeframe=request.timeframe, exchange=request.exchange, symbols=missing)
        unknown = [s for s in missing if s not in set(anywhere.get_column("symbol").to_list())]
        if unknown:
            raise BacktestInputError(f"unknown symbol(s) {unknown}: no {request.timeframe} candles of exchange "
                                     f"{request.exchange!r} in {warehouse.description}; import them first "
                                     "(signalworks import)")
        raise BacktestInputError(f"no {request.timeframe} candles of {missing} between {start:%Y-%m-%d} and "
                                 f"{end:%Y-%m-%d} (exclusive) on {request.exchange!r}")
    return stored


def _segments_of(symbols: Sequence[str], segments: SegmentsConfig) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for symbol, name in segments.segments_of(list(symbols)).items():
        grouped.setdefault(name, []).append(symbol)
    return grouped


def _check_range(candles: pl.DataFrame, config: SegmentWalkForwardConfig) -> None:
    span = candles.get_column("ts").max() - candles.get_column("ts").min()  # type: ignore[operator]
    if span < config.train_length + config.test_length:
        raise BacktestInputError(f"the candles span {span}, shorter than one window of {config.train_length} "
                                 f"training + {config.test_length} test; widen --start/--end or shorten "
                                 "--train-days/--test-days")


def write_plots(result: Any, calibration: Any, folder: Path) -> list[str]:
    """Equity, drawdown (and with ``calibration`` reliability) PNGs of a result with ``segment``
    and ``portfolio`` (a model's :class:`SegmentWalkForward` or a strategy's backtest)."""
    from ml.reporting.plots import drawdown_png, equity_curves_png, reliability_png

    portfolio = result.portfolio
    names = ["strategy", "buy_and_hold", "always_flat", "permuted_labels", "random_entries"]
    files = {
        f"equity_{result.segment}.png": equity_curves_png(
            portfolio["ts"], {n: portfolio[n].to_numpy() for n in names if n in portfolio.columns},
            title=f"{result.segment}: out-of-sample equity, equal weight, net of costs"),
        f"drawdown_{result.segment}.png": drawdown_png(
            portfolio["ts"], portfolio["strategy"].to_numpy(), title=f"{result.segment}: strategy drawdown"),
    }
    if calibration is not None:
        files[f"reliability_{result.segment}.png"] = reliability_png(
            {"before calibration": calibration.before, "after temperature scaling": calibration.after},
            title=f"{result.segment}: out-of-sample reliability (windows 1..)")
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return sorted(files)


def _summary_line(result: SegmentWalkForward, seconds: float) -> str:
    oos, bh, perm = result.out_of_sample, result.baselines["buy_and_hold"], result.baselines["permuted_labels"]
    pbo = "-" if result.pbo is None else f"{result.pbo:.2f}"
    return (f"  {result.segment:<7} {len(result.symbols)} symbols {result.windows.height} windows  "
            f"Sharpe {oos.sharpe:6.2f} (buy-and-hold {bh.sharpe:6.2f}, permuted {perm.sharpe:6.2f})  "
            f"max DD {oos.max_drawdown:7.1%}  trades {oos.trades:5d}  PBO {pbo}  DSR {result.deflated_sharpe:.3f}  "
            f"{seconds:6.1f} s\n    {result.verdict.text}")


def run_backtest(request: BacktestRequest, warehouse: Any, *, segments: SegmentsConfig | None = None,
                 stream: TextIO = sys.stdout, progress_stream: TextIO = sys.stderr,
                 clock: Callable[[], float] = time.monotonic) -> int:
    """Run the request, write the output folder, print one summary per segment; returns the exit code."""
    from ml.evaluation.grid import ParameterGrid, run_grid, with_grid
    from ml.evaluation.oos_calibration import out_of_sample_calibration
    from ml.evaluation.segment import segment_walk_forward

    segments = segments or SegmentsConfig()
    candles = read_candles(warehouse, request, segments)
    by_segment = _segments_of(request.symbols, segments)
    for symbols in by_segment.values():
        _check_range(candles.filter(pl.col("symbol").is_in(symbols)), request.config)
    grid = ParameterGrid()
    per_grid = len(grid.threshold_factors) * len(grid.horizons) if request.grid else 0
    request.output.mkdir(parents=True, exist_ok=True)
    print(f"Backtest {request.exchange} {request.timeframe} {request.start}..{request.end} "
          f"({request.config.mode}, train {request.config.train_length.days} d, test "
          f"{request.config.test_length.days} d) from {warehouse.description}", file=stream)
    reports: dict[str, Any] = {}
    failures: dict[str, str] = {}
    seconds: dict[str, float] = {}
    prediction_parts: list[pl.DataFrame] = []
    for segment, symbols in sorted(by_segment.items()):
        context = candles.filter(pl.col("symbol").is_in(symbols)
                                 | (pl.col("symbol") == request.config.features.reference_symbol))
        started = clock()
        bar: ProgressBar | None = None
        try:
            def step(done: int, total: int, what: str, seg: str = segment) -> None:
                nonlocal bar
                if bar is None:
                    bar = ProgressBar(total + per_grid, progress_stream)
                bar.advance(f"{seg}: {what} {done}/{total}")

            result = segment_walk_forward(context, segment=segment, config=request.config, segments=segments,
                                          symbols=symbols, progress=lambda d, t: step(d, t, "window"))
            if request.grid:
                trials = run_grid(context, segment=segment, config=request.config, grid=grid, segments=segments,
                                  reuse=result, symbols=symbols, progress=lambda d, t: step(d, t, "grid point"))
                result = with_grid(result, trials)
        except ValueError as error:
            failures[segment] = str(error)
            print(f"  {segment:<7} FAILED: {error}", file=stream)
            continue
        finally:
            if bar is not None:
                bar.close()
        seconds[segment] = clock() - started
        calibration = out_of_sample_calibration(result.predictions)
        report = result.to_dict()
        report["calibration"] = None if calibration is None else calibration.to_dict()
        report["plots"] = write_plots(result, calibration, request.output)
        reports[segment] = report
        prediction_parts.append(result.predictions.select(
            pl.lit(segment).alias("segment"), "symbol", "window", pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "p_down", "p_flat", "p_up", "position", "label", "asset_return", "net_return", "permuted_position"))
        print(_summary_line(result, seconds[segment]), file=stream)
    counts = candles.group_by("symbol").agg(pl.len().alias("candles"), pl.col("ts").min().alias("first"),
                                            pl.col("ts").max().alias("last")).sort("symbol")
    document = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "inputs": {"exchange": request.exchange, "timeframe": request.timeframe, "symbols": list(request.symbols),
                   "start": request.start.isoformat(), "end": request.end.isoformat(), "grid": request.grid,
                   "warehouse": warehouse.description,
                   "candles": {r["symbol"]: {"rows": r["candles"], "first": r["first"].isoformat(),
                                             "last": r["last"].isoformat()} for r in counts.iter_rows(named=True)}},
        "segments": reports, "failures": failures, "seconds": seconds,
    }
    (request.output / "report.json").write_text(json.dumps(document, indent=2, allow_nan=False) + "\n")
    if prediction_parts:
        pl.concat(prediction_parts).write_csv(request.output / "predictions.csv", float_precision=8)
    written = ["report.json", *(["predictions.csv"] if prediction_parts else []),
               *(name for r in reports.values() for name in r["plots"])]
    print(f"  wrote {len(written)} files to {request.output}: {', '.join(written)}", file=stream)
    return EXIT_SEGMENT_FAILED if failures else EXIT_OK


def config_from_args(mode: str, train_days: int, test_days: int, horizon: int, embargo_hours: float,
                     fee: float, slippage: float, seed: int) -> SegmentWalkForwardConfig:
    """The walk-forward settings of the command line (errors as :class:`BacktestInputError`)."""
    try:
        if train_days < 1 or test_days < 1:
            raise ValueError("--train-days and --test-days must be at least 1")
        return SegmentWalkForwardConfig(mode=mode, train_length=timedelta(days=train_days),  # type: ignore[arg-type]
                                        test_length=timedelta(days=test_days), horizon=horizon,
                                        embargo=timedelta(hours=embargo_hours), seed=seed,
                                        costs=TradingCosts(fee_per_side=fee, slippage=slippage))
    except ValueError as error:
        raise BacktestInputError(str(error)) from error
