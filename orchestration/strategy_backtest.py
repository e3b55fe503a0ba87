"""``signalworks backtest --strategy bos|ema_cross``: a market strategy's walk-forward on stored candles.

Glue only: read candles (resources.warehouse), call :func:`ml.evaluation.strategy.strategy_backtest`,
write the files with the model backtest's writer (:mod:`orchestration.backtest`). Candles:

* ``bos``: the ``--timeframe`` candles (default 1m, the seed system's interval).
* ``ema_cross``: 15m candles and 1h confirmation candles; where a symbol has no stored 15m (1h)
  candles they are built from its stored 5m or 1m (15m) candles, complete buckets only.
* Outcomes come from stored 1m candles when every symbol has them in the range, else from the
  strategy's own candles (:mod:`ml.strategies.backtest`, "Horizons").

Output folder: ``report.json`` (the model report's layout: ``schema_version``, ``inputs`` (with
``strategy``), ``segments`` (the strategy's name -> :meth:`StrategyBacktest.to_dict`), ``failures``,
``seconds``); ``signals.csv`` (every signal of the seed parameters with its horizon returns and its
trade); ``equity_<strategy>.png`` and ``drawdown_<strategy>.png``. Exit codes as the model backtest.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import polars as pl

from ml.evaluation.strategy import StrategyBacktestConfig
from orchestration.backtest import EXIT_OK, REPORT_SCHEMA_VERSION, BacktestInputError, write_plots

STRATEGY_TIMEFRAMES = {"bos": "1m", "ema_cross": "15m"}


@dataclass(frozen=True)
class StrategyBacktestRequest:
    strategy: str
    exchange: str
    symbols: tuple[str, ...]
    timeframe: str
    start: date
    end: date  # inclusive day
    output: Path
    config: StrategyBacktestConfig
    grid: bool = True


def _bounds(request: StrategyBacktestRequest) -> tuple[datetime, datetime]:
    start = datetime.combine(request.start, datetime.min.time(), UTC)
    end = datetime.combine(request.end, datetime.min.time(), UTC) + timedelta(days=1)
    if end <= start:
        raise BacktestInputError(f"--end {request.end} is before --start {request.start}")
    return start, end


def _read(warehouse: Any, request: StrategyBacktestRequest, timeframe: str, start: datetime,
          end: datetime) -> pl.DataFrame:
    return warehouse.read_candles(timeframe=timeframe, exchange=request.exchange, symbols=list(request.symbols),
                                  start=start, end=end)


def _built(warehouse: Any, request: StrategyBacktestRequest, timeframe: str, sources: tuple[str, ...],
           start: datetime, end: datetime) -> pl.DataFrame:
    """Stored ``timeframe`` candles, and for symbols without them, ones built from the first of
    ``sources`` stored for that symbol."""
    from ml.strategies.backtest import aggregate_candles

    parts = [_read(warehouse, request, timeframe, start, end)]
    have = set(parts[0]["symbol"].to_list())
    for source in sources:
        lacking = [s for s in request.symbols if s not in have]
        if not lacking:
            break
        finer = warehouse.read_candles(timeframe=source, exchange=request.exchange, symbols=lacking,
                                       start=start, end=end)
        if finer.height:
            parts.append(aggregate_candles(finer, timeframe))
            have |= set(finer["symbol"].to_list())
    return pl.concat([p for p in parts if p.height]) if any(p.height for p in parts) else parts[0]


def read_strategy_candles(warehouse: Any, request: StrategyBacktestRequest
                          ) -> tuple[pl.DataFrame, pl.DataFrame | None, pl.DataFrame | None]:
    """(strategy candles, 1h confirmation candles or None, 1m outcome candles or None); raises
    :class:`BacktestInputError` naming the symbols without candles."""
    start, end = _bounds(request)
    if request.strategy == "bos":
        candles, confirm = _read(warehouse, request, request.timeframe, start, end), None
    else:
        candles = _built(warehouse, request, "15m", ("5m", "1m"), start, end)
        confirm = _built(warehouse, request, "1h", ("15m",), start, end)
        built = candles.filter(pl.col("symbol").is_in([s for s in request.symbols
                                                        if s not in set(confirm["symbol"].to_list())]))
        if built.height:
            from ml.strategies.backtest import aggregate_candles

            confirm = pl.concat([confirm, aggregate_candles(built, "1h")]) if confirm.height else \
                aggregate_candles(built, "1h")
    missing = [s for s in request.symbols if s not in set(candles["symbol"].to_list())]
    if missing:
        what = request.timeframe if request.strategy == "bos" else "15m (or 5m/1m)"
        raise BacktestInputError(f"no {what} candles of {missing} on {request.exchange!r} between "
                                 f"{start:%Y-%m-%d} and {end:%Y-%m-%d} (exclusive) in {warehouse.description}; "
                                 "import them first (signalworks import)")
    minute = candles if candles["timeframe"][0] == "1m" else _read(warehouse, request, "1m", start, end)
    complete = minute.height and set(minute["symbol"].to_list()) >= set(request.symbols)
    return candles, confirm, (minute if complete else None)


def _summary(report: dict[str, Any], seconds: float) -> str:
    overall, base, trades = report["overall"], report["baselines"], report["trades"]

    def figure(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    lines = [f"  {report['strategy']}: {trades['signals']} signals ({trades['long']} long, {trades['short']} short), "
             f"exits stop/target/time/open {'/'.join(str(v) for v in trades['exit_reasons'].values())}, "
             f"{trades['taken_trades']} trades taken, win rate {figure(trades['taken_win_rate'], '.1%')}, "
             f"expectancy {figure(trades['expectancy'], '+.3%')} per trade after costs",
             f"    {'horizon':>9} {'signals':>8} {'win rate':>9} {'mean':>9} {'median':>9} {'t':>6}"]
    for row in report["horizons"]:
        lines.append(f"    {row['minutes']:>7} m {row['signals']:>8} {figure(row['win_rate'], '.1%'):>9} "
                     f"{figure(row['mean'], '+.3%'):>9} {figure(row['median'], '+.3%'):>9} "
                     f"{figure(row['t_stat'], '.2f'):>6}")
    selection = report["selection"]
    lines.append(f"    walk-forward {len(report['windows'])} windows: Sharpe {figure(overall['sharpe'], '.2f')} "
                 f"(buy-and-hold {figure(base['buy_and_hold']['sharpe'], '.2f')}, random entries "
                 f"{figure(base['random_entries']['sharpe'], '.2f')}), max DD {figure(overall['max_drawdown'], '.1%')}, "
                 f"trades {overall['trades']}, PBO {figure(selection['pbo'], '.2f')}, "
                 f"DSR {figure(selection['deflated_sharpe'], '.3f')} over {selection['trials']} trials  "
                 f"{seconds:.1f} s")
    lines.append(f"    {report['verdict']['text']}")
    return "\n".join(lines)


def run_strategy_backtest(request: StrategyBacktestRequest, warehouse: Any, *, stream: TextIO = sys.stdout,
                          clock: Callable[[], float] = time.monotonic) -> int:
    """Run the request, write the output folder, print the summary; returns the exit code."""
    from ml.evaluation.strategy import DEFAULT_GRIDS, strategy_backtest

    start, end = _bounds(request)
    candles, confirm, minute = read_strategy_candles(warehouse, request)
    print(f"Strategy backtest {request.strategy} on {request.exchange} {candles['timeframe'][0]} "
          f"{request.start}..{request.end} ({request.config.mode}, train {request.config.train_length.days} d, "
          f"test {request.config.test_length.days} d, outcomes from {'1m' if minute is not None else 'own'} "
          f"candles) from {warehouse.description}", file=stream)
    started = clock()
    try:
        result = strategy_backtest(request.strategy, candles, start=start, end=end,  # type: ignore[arg-type]
                                   confirm_candles=confirm, minute_candles=minute, config=request.config,
                                   grid=DEFAULT_GRIDS[request.strategy] if request.grid else None)
    except ValueError as error:
        raise BacktestInputError(str(error)) from error
    seconds = clock() - started
    request.output.mkdir(parents=True, exist_ok=True)
    report = result.to_dict()
    report["plots"] = write_plots(result, None, request.output)
    counts = candles.group_by("symbol").agg(pl.len().alias("rows"), pl.col("ts").min().alias("first"),
                                            pl.col("ts").max().alias("last")).sort("symbol")
    document = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "inputs": {"strategy": request.strategy, "exchange": request.exchange, "timeframe": result.timeframe,
                   "symbols": list(request.symbols), "start": request.start.isoformat(),
                   "end": request.end.isoformat(), "grid": request.grid, "warehouse": warehouse.description,
                   "outcome_candles": "1m" if minute is not None else result.timeframe,
                   "candles": {r["symbol"]: {"rows": r["rows"], "first": r["first"].isoformat(),
                                             "last": r["last"].isoformat()} for r in counts.iter_rows(named=True)}},
        "segments": {request.strategy: report}, "failures": {}, "seconds": {request.strategy: seconds},
    }
    (request.output / "report.json").write_text(json.dumps(document, indent=2, allow_nan=False) + "\n")
    result.outcomes.with_columns(pl.col(pl.Datetime).dt.strftime("%Y-%m-%dT%H:%M:%SZ")).write_csv(
        request.output / "signals.csv", float_precision=8)
    print(_summary(report, seconds), file=stream)
    written = ["report.json", "signals.csv", *report["plots"]]
    print(f"  wrote {len(written)} files to {request.output}: {', '.join(written)}", file=stream)
    return EXIT_OK


def strategy_config_from_args(mode: str, train_days: int, test_days: int, period_hours: float, fee: float,
                              slippage: float, seed: int) -> StrategyBacktestConfig:
    """The walk-forward settings of the command line (errors as :class:`BacktestInputError`)."""
    from ml.evaluation.costs import TradingCosts

    try:
        if train_days < 1 or test_days < 1:
            raise ValueError("--train-days and --test-days must be at least 1")
        if not period_hours > 0:
            raise ValueError("--period-hours must be positive")
        return StrategyBacktestConfig(mode=mode, train_length=timedelta(days=train_days),  # type: ignore[arg-type]
                                      test_length=timedelta(days=test_days), period=timedelta(hours=period_hours),
                                      costs=TradingCosts(fee_per_side=fee, slippage=slippage), seed=seed)
    except ValueError as error:
        raise BacktestInputError(str(error)) from error
