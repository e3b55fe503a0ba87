"""The ``signalworks`` command: ``demo`` runs the main jobs on the configured deployment and
prints what was stored; ``summary`` prints the summary only; ``import`` loads freqtrade or CSV
candle files into the warehouse; ``backtest`` runs the segment walk-forward (or, with ``--strategy``,
a market strategy's walk-forward) on stored candles."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from orchestration.settings import get_settings

if TYPE_CHECKING:
    from resources.candle_import import FileResult

log = logging.getLogger("signalworks")

#: Dagster's console logger at WARNING: the demo prints its own one-line-per-run progress.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _instance():
    from dagster import DagsterInstance

    if os.environ.get("DAGSTER_HOME"):
        os.makedirs(os.environ["DAGSTER_HOME"], exist_ok=True)
        return DagsterInstance.get()
    return DagsterInstance.ephemeral()


#: The demo's market runs execute their steps in the run's own process (no process per step).
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}


def run_demo(days: int, social: bool = True, hourly_days: int = 45) -> int:
    from dagster import AssetKey, MultiPartitionKey

    from assets.publishing import PublishersResource
    from orchestration.definitions import build_definitions
    from orchestration.launcher import RANGE_END_TAG, RANGE_START_TAG, code_location, launch
    from orchestration.market_demo import (
        print_deliveries,
        print_outcomes,
        print_paper_accounts,
        print_scorecard,
        run_market_demo,
    )
    from orchestration.partitions import segment_partitions
    from orchestration.report_demo import (
        PARTITION_TAG,
        failed_check_lines,
        print_market_signals,
        print_report_summary,
        run_models,
        run_reports,
        stopped_by_blocking_checks,
    )
    from orchestration.summary import print_summary

    settings = get_settings()
    # The demo publishes nothing: every publisher writes to publications.jsonl instead. Runs launched
    # through the code location get this resource configuration with them (orchestration.launcher).
    defs = build_definitions(settings, {"publishers": PublishersResource(
        config_path=str(settings.social_config.resolve()), home=str(settings.home.resolve()),
        telegram_base_url=settings.telegram_bot_api, dry_run=True)})
    instance = _instance()
    clock_now = defs.resources["exchanges"].clock()()  # type: ignore[attr-defined]
    today = clock_now.date()
    first = today - timedelta(days=days - 1)
    first_hour_day = today - timedelta(days=max(hourly_days, days) - 1)
    print(f"Signalworks demo: {', '.join(settings.exchanges)} | 1m candles {first} .. {today}, 1h candles from "
          f"{first_hour_day} (indicator warm-up) | warehouse {settings!r}\n")
    failed = False

    def run(job_name: str, tags: Mapping[str, str] | None = None, asset_selection: list[AssetKey] | None = None,
            config: Mapping[str, Any] | None = None, checks_may_reject: bool = False) -> bool:
        """Launch and wait; with ``checks_may_reject`` a run stopped only by its blocking checks (a
        model they reject) is reported as REJECTED, an outcome, not a failure of the demo."""
        nonlocal failed
        started = time.monotonic()
        result = launch(defs, instance, job_name, run_config={**QUIET, **IN_PROCESS, **(config or {})}, tags=tags,
                        asset_selection=asset_selection)
        rejected = checks_may_reject and stopped_by_blocking_checks(result)
        status = "ok" if result.success else "REJECTED" if rejected else "FAILED"
        failed |= not (result.success or rejected)
        label = (f"{tags[RANGE_START_TAG].split('|')[0]}..{tags[RANGE_END_TAG]}" if tags and RANGE_START_TAG in tags
                 else (tags or {}).get(PARTITION_TAG, ""))
        what = ",".join(k.to_user_string() for k in asset_selection or []) or job_name
        print(f"  {what:<24} {label:<26} {status:<8} {time.monotonic() - started:6.1f} s  run {result.run_id[:8]}")
        for message in failed_check_lines(instance, result.run_id) if rejected else result.failures:
            print("      " + message.replace("\n", "\n        "))
        return result.success

    def days_of(exchange: str, start: object) -> dict[str, str]:
        return {RANGE_START_TAG: str(MultiPartitionKey({"date": str(start), "exchange": exchange})),
                RANGE_END_TAG: str(MultiPartitionKey({"date": today.isoformat(), "exchange": exchange}))}

    # Runs go through the code location of workspace.yaml, so `make ui` lists them under their jobs.
    served = {"SIGNALWORKS_HOME": str(settings.home.resolve()),
              "SIGNALWORKS_SOCIAL_CONFIG": str(settings.social_config.resolve())}
    with code_location(instance, log_path=settings.home / "logs" / "demo-runs.log", env=served) as location:
        if location is not None:
            print(f"  (runs launched through code location {location.location_name}; their logs: "
                  f"{location.log_path})")
        run("markets_job")
        for exchange in settings.exchanges:
            run("candles_1m_job", tags=days_of(exchange, first))
            # 1h candles (and the 2h..1M built from them) over enough history for EMA-200 warm-up ...
            run("candles_1h_job", tags=days_of(exchange, first_hour_day),
                asset_selection=[AssetKey("candles_1h"), AssetKey("candles_mtf")])
            # ... then every indicator of every timeframe for the demo's days
            run("candles_1h_job", tags=days_of(exchange, first), asset_selection=[AssetKey("indicators")])
        run("derivatives_job")
        run("coingecko_job")
        segments = segment_partitions().get_partition_keys()

        def run_named(job: str, tags: Mapping[str, str] | None, config: Mapping[str, Any] | None,
                      selection: list[str] | None, checks_may_reject: bool = False) -> bool:
            return run(job, tags=tags, config=config, asset_selection=[AssetKey(k) for k in selection or []] or None,
                       checks_may_reject=checks_may_reject)

        # -- the live market-signal path replayed over the last hours, then outcomes, paper accounts and
        # scorecards (market_demo.py: why a replay clock, and why it is honest)
        _, scorecard_as_of = run_market_demo(run_named, defs.resources["publishers"],
                                             defs.resources["exchanges"].clock())  # type: ignore[attr-defined]
        # -- models and reports: training, each segment's walk-forward, the Monte Carlo risk (report_demo.py)
        jobs = {job.name for job in defs.get_repository_def().get_all_jobs()}
        run_models(run_named, jobs, segments, hourly_days=max(hourly_days, days))
        run_reports(run_named, segments, hourly_days=max(hourly_days, days))
        print_summary(settings, instance)
        print_market_signals(settings.warehouse_url)
        print_deliveries(settings.warehouse_url)
        print_outcomes(settings.warehouse_url)
        print_scorecard(settings.warehouse_url, scorecard_as_of)
        print_paper_accounts(settings.warehouse_url)
        print_report_summary(settings.home, segments)
        if social:
            from orchestration.social_demo import run_social_demo

            print("Social signals: the bundled synthetic stream through sidecar, sensor, validation and publishers")
            failed |= not run_social_demo(settings, defs, instance, QUIET)
    return 1 if failed else 0


def _span(result: FileResult) -> str:
    if result.first is None or result.last is None:
        return "-"
    return f"{result.first:%Y-%m-%d %H:%M}..{result.last:%Y-%m-%d %H:%M}"


def run_import(paths: list[str], exchange: str, timeframe: str | None, now: datetime | None = None) -> int:
    """Import candle files (resources.candle_import) and print one line per file and the totals.

    Returns 0 when every file was imported, 1 when any file or path had a problem (the valid
    files are still written; a file with a problem is not written at all).
    """
    from pathlib import Path

    from resources.candle_import import import_candle_files
    from resources.warehouse.store import Warehouse

    settings = get_settings()
    warehouse = Warehouse.from_url(settings.warehouse_url)
    report = import_candle_files(warehouse, [Path(p) for p in paths], exchange=exchange,
                                 now=now or datetime.now(UTC), timeframe=timeframe)
    print(f"Importing into {warehouse.description} as exchange {exchange!r}")
    print(f"  {'file':<34} {'symbol':<16} {'tf':<4} {'rows':>8} {'first..last (UTC)':<34} {'new':>8}")
    for result in report.files:
        status = f"{result.written:>8}" if result.ok else "  FAILED"
        print(f"  {result.path.name:<34} {result.symbol:<16} {result.timeframe:<4} {result.rows:>8} "
              f"{_span(result):<34} {status}")
        if result.dropped_open:
            print(f"      dropped {result.dropped_open} candle still open at the time of import")
    imported = [r for r in report.files if r.ok]
    print(f"  total: {len(imported)}/{len(report.files)} files imported, {sum(r.rows for r in imported)} rows, "
          f"{sum(r.written for r in imported)} new, {report.seconds:.1f} s")
    problems = [*report.problems, *(p for r in report.files for p in r.problems)]
    if problems:
        print("Not imported (nothing of these files was written):", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
    return 0 if report.ok else 1


def run_backtest_command(args: argparse.Namespace) -> int:
    """``signalworks backtest``: glue in orchestration.backtest; bad input exits 2 with the reason."""
    from datetime import date
    from pathlib import Path

    from orchestration.backtest import (
        EXIT_BAD_INPUT,
        BacktestInputError,
        BacktestRequest,
        config_from_args,
        run_backtest,
    )
    from resources.warehouse.store import Warehouse

    try:
        start, end = date.fromisoformat(args.start), date.fromisoformat(args.end)
        if args.strategy:
            from orchestration.strategy_backtest import (
                STRATEGY_TIMEFRAMES,
                StrategyBacktestRequest,
                run_strategy_backtest,
                strategy_config_from_args,
            )

            settings = strategy_config_from_args(args.mode, args.train_days, args.test_days, args.period_hours,
                                                 args.fee, args.slippage, args.seed)
            strategy_request = StrategyBacktestRequest(
                strategy=args.strategy, exchange=args.exchange.lower(), symbols=tuple(dict.fromkeys(args.symbols)),
                timeframe=args.timeframe or STRATEGY_TIMEFRAMES[args.strategy], start=start, end=end,
                output=Path(args.output), config=settings, grid=args.grid)
            return run_strategy_backtest(strategy_request, Warehouse.from_url(get_settings().warehouse_url))
        config = config_from_args(args.mode, args.train_days, args.test_days, args.horizon, args.embargo_hours,
                                  args.fee, args.slippage, args.seed)
        request = BacktestRequest(exchange=args.exchange.lower(), symbols=tuple(dict.fromkeys(args.symbols)),
                                  timeframe=args.timeframe or "1h", start=start, end=end, output=Path(args.output),
                                  config=config, grid=args.grid)
        return run_backtest(request, Warehouse.from_url(get_settings().warehouse_url))
    except (BacktestInputError, ValueError) as error:
        print(f"signalworks backtest: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _backtest_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    backtest = commands.add_parser("backtest", help="walk-forward of the segment models, or with --strategy of a "
                                                    "market strategy, on stored candles")
    backtest.add_argument("--strategy", choices=["bos", "ema_cross"],
                          help="backtest this market strategy instead of the segment models")
    backtest.add_argument("--exchange", required=True, help="exchange of the stored candles, e.g. binance")
    backtest.add_argument("--symbols", nargs="+", required=True, metavar="SYMBOL", help="e.g. BTC/USDT ETH/USDT")
    backtest.add_argument("--timeframe", help="candle timeframe (default 1h; bos 1m; ema_cross 15m + 1h)")
    backtest.add_argument("--start", required=True, help="first day, YYYY-MM-DD (UTC)")
    backtest.add_argument("--end", required=True, help="last day, YYYY-MM-DD (UTC, included)")
    backtest.add_argument("--mode", choices=["anchored", "rolling"], default="rolling")
    backtest.add_argument("--train-days", type=int, default=84, help="training window in days (default 84)")
    backtest.add_argument("--test-days", type=int, default=28, help="test window in days (default 28)")
    backtest.add_argument("--horizon", type=int, default=4, help="label horizon in candles (default 4)")
    backtest.add_argument("--embargo-hours", type=float, default=24.0, help="embargo after each test window")
    backtest.add_argument("--fee", type=float, default=0.001, help="fee per side, fraction (default 0.001)")
    backtest.add_argument("--slippage", type=float, default=0.0005, help="slippage per side (default 0.0005)")
    backtest.add_argument("--seed", type=int, default=0)
    backtest.add_argument("--period-hours", type=float, default=24.0,
                          help="--strategy: length of one return period in hours (default 24)")
    backtest.add_argument("--grid", action=argparse.BooleanOptionalAction, default=True,
                          help="run the parameter grid for PBO and the deflated Sharpe (default on)")
    backtest.add_argument("--output", required=True, help="folder for report.json, predictions.csv, plots")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="signalworks", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="materialise the market-data assets and print a summary")
    demo.add_argument("--days", type=int, default=3, help="days of candles, today included (default 3)")
    demo.add_argument("--no-social", action="store_true", help="market data only")
    demo.add_argument("--hourly-days", type=int, default=45, help="days of 1h candles (indicator warm-up)")
    commands.add_parser("summary", help="print what the warehouse holds")
    importer = commands.add_parser("import", help="load freqtrade (feather/json) or CSV candle files")
    importer.add_argument("paths", nargs="+", metavar="PATH", help="files, or folders of PAIR-TF.<ext> files")
    importer.add_argument("--exchange", required=True, help="exchange the candles come from, e.g. binance")
    importer.add_argument("--timeframe", help="import only files of this timeframe; names it where the "
                                              "file name carries none (CSV)")
    _backtest_parser(commands)
    commands.add_parser("listen", help="run the social listener sidecar (see signalworks listen --help)",
                        add_help=False)
    commands.add_parser("feed", help="run the live 1m candle feed sidecar (see signalworks feed --help)",
                        add_help=False)
    raw = list(sys.argv[1:] if argv is None else argv)
    if raw[:1] == ["listen"]:
        from streaming.listen import main as listen_main

        return listen_main(raw[1:])
    if raw[:1] == ["feed"]:
        from streaming.candles.main import main as feed_main

        settings = get_settings()
        return feed_main(raw[1:], warehouse_url=settings.warehouse_url, exchanges=settings.exchanges,
                         sim_seed=settings.sim_seed, quote=settings.quote, top_n=settings.candles_1m_symbols,
                         sim_symbols=settings.sim_symbols)
    args = parser.parse_args(raw)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "demo":
        return run_demo(args.days, social=not args.no_social, hourly_days=args.hourly_days)
    if args.command == "import":
        return run_import(args.paths, args.exchange.lower(), args.timeframe)
    if args.command == "backtest":
        return run_backtest_command(args)
    from orchestration.summary import print_summary

    print_summary(get_settings(), _instance())
    return 0


if __name__ == "__main__":
    sys.exit(main())
