"""The models and reports of ``signalworks demo``: the model pipeline's training runs (when the code
location has them), each segment's walk-forward on the simulated market, then the Monte Carlo risk
report, launched like any other run, and the reports' summary.

The demo's market holds ``hourly_days`` of 1h candles (45 by default), too short for the seed's
12-week training and 4-week test windows; it uses windows scaled to them (45 days: 23-day training
and 7-day test windows, three rolling windows), at most :data:`DEMO_SYMBOLS` symbols per segment, a 3 x 1 x 2 parameter grid and
2,000 Monte Carlo paths, so that the whole demo stays within its time budget. The assets'
defaults (270 days, 84 + 28 days, 18 trials, 10,000 paths) are what the daily schedules run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import polars as pl

#: Symbols per segment in the demo (listed bases first, then by liquidity).
DEMO_SYMBOLS = 3
DEMO_PATHS = 2_000
#: Fewer stored days than this and the demo trains no models: the HMM behind the regime features
#: needs 200 complete 1h rows in the fit slice (70 % of the window, after 24 h of warm-up).
MIN_MODEL_DAYS = 16
PARTITION_TAG = "dagster/partition"

#: Dagster's message when a blocking asset check failed and stopped the steps after it.
BLOCKING_CHECK_FAILED = "blocking asset check failed"


class Run(Protocol):
    """The demo's launcher: launch, wait, print one line; whether the run succeeded (or, with
    ``checks_may_reject``, was stopped only by its blocking checks)."""

    def __call__(self, job: str, tags: Mapping[str, str] | None, config: Mapping[str, Any] | None,
                 selection: list[str] | None, checks_may_reject: bool = False) -> bool: ...


def stopped_by_blocking_checks(result: Any) -> bool:
    """Whether a failed run (:class:`orchestration.launcher.LaunchedRun`) failed only because a
    blocking asset check did: every failure it reports says so."""
    return not result.success and bool(result.failures) and all(
        BLOCKING_CHECK_FAILED in message for message in result.failures)


def failed_check_lines(instance: Any, run_id: str) -> list[str]:
    """One line per asset check that failed in run ``run_id``: the check, its partition and its
    figures (what a user needs to see why a model was rejected, not Dagster's exception)."""
    from dagster import DagsterEventType

    lines = []
    records = instance.get_records_for_run(run_id=run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        if evaluation.passed:
            continue
        figures = ", ".join(f"{name} {_figure(entry.value)}" for name, entry in evaluation.metadata.items()
                            if name not in ("model_version", "model_status"))
        partition = f"[{evaluation.partition}]" if evaluation.partition else ""
        lines.append(f"{evaluation.check_name}{partition} failed: {figures}")
    return lines


def _figure(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def demo_walk_forward_config(hourly_days: int) -> dict[str, Any]:
    """Windows scaled to the ``hourly_days`` of 1h candles the demo stores: test windows of a sixth
    of them (whole days) and the training window what is left for three of them, less a day of
    slack, so three rolling windows fit (45 days: 23-day training, 7-day test windows, 24 h
    embargo)."""
    test_days = max(1, hourly_days // 6)
    train_days = max(1, hourly_days - 3 * test_days - 1)
    return {"days": float(hourly_days), "train_days": float(train_days), "test_days": float(test_days),
            "embargo_hours": min(24.0, 6.0 * test_days), "max_symbols": DEMO_SYMBOLS,
            "threshold_factors": [0.5, 1.0, 2.0], "horizons": [4], "margins": [0.1, 0.2]}


def run_models(run: Run, jobs: set[str], segments: list[str], *, hourly_days: int) -> bool:
    """Train what the code location has of the model pipeline (features, HMM regimes, one XGBoost
    per segment, predictions) over the stored days; nothing when it has no model jobs. Whether
    every run succeeded; a model its blocking checks reject stops its run before the predictions,
    which the demo shows as REJECTED, the checks doing their job)."""
    if hourly_days < MIN_MODEL_DAYS and jobs & {"regime_training_job", "xgb_training_job"}:
        print(f"  models: not trained, {hourly_days} days of 1h candles stored and training needs at least "
              f"{MIN_MODEL_DAYS} (run the demo with --hourly-days {MIN_MODEL_DAYS} or more)")
        return True
    ok = True
    window = {"window_days": hourly_days}
    if "model_features_job" in jobs:
        ok &= run("model_features_job", None, {"ops": {"features": {"config": window}}}, ["features"])
    if "regime_training_job" in jobs:
        ok &= run("regime_training_job", None, {"ops": {"regime_model": {"config": {**window, "n_init": 1}}}}, None)
    if "xgb_training_job" in jobs:
        for segment in segments:
            ok &= run("xgb_training_job", {PARTITION_TAG: segment},
                      {"ops": {"xgb_models": {"config": {**window, "regime_n_init": 1}}}}, None,
                      checks_may_reject=True)
    return ok


def run_reports(run: Run, segments: list[str], *, hourly_days: int) -> bool:
    """Launch ``walk_forward_report[segment]`` for each segment, then ``risk_report``; whether all
    succeeded (a failing segment does not stop the others, the risk report lists it)."""
    config = demo_walk_forward_config(hourly_days)
    ok = True
    for segment in segments:
        ok &= run("walk_forward_report_job", {PARTITION_TAG: segment},
                  {"ops": {"walk_forward_report": {"config": config}}}, None)
    ok &= run("risk_report_job", None, {"ops": {"risk_report": {"config": {
        "days": float(hourly_days), "n_paths": DEMO_PATHS}}}}, None)
    return ok


def _read(path: Path) -> dict[str, Any] | None:
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _fmt(value: object, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return format(value, spec)


def print_report_summary(home: Path, segments: list[str]) -> None:
    """Per segment: out-of-sample figures after costs beside the baselines, PBO, DSR, verdict; then
    the risk headline (portfolio and per-symbol VaR/CVaR, strategy bootstraps)."""
    from assets.report_tables import summary_row

    folder = home / "reports"
    print("Walk-forward per segment (out of sample, after 0.1 % fee + 5 bp slippage per side; "
          f"JSON in {folder / 'walk_forward'}):")
    for segment in segments:
        report = _read(folder / "walk_forward" / f"{segment}.json")
        if report is None:
            print(f"  {segment:<7} no report (its run failed: see above)")
            continue
        row = summary_row(report)
        window = report.get("data_window", {})
        print(f"  {segment:<7} {row['symbols']} symbols, {row['windows']} windows "
              f"({str(window.get('start', ''))[:10]}..{str(window.get('end', ''))[:10]}): "
              f"Sharpe {_fmt(row['oos_sharpe'], '.2f')}, max DD {_fmt(row['max_dd'], '.1%')}, "
              f"{row['trades']} trades | buy-and-hold Sharpe {_fmt(row['buy_hold_sharpe'], '.2f')}, "
              f"permuted labels {_fmt(row['permuted_sharpe'], '.2f')} | PBO {_fmt(row['pbo'], '.2f')}, "
              f"DSR {_fmt(row['deflated_sharpe'], '.3f')} over {report['selection']['trials']} trials")
        print(f"          verdict: {report['verdict']['text']}")
        for symbol, why in report.get("skipped_symbols", {}).items():
            print(f"          left out {symbol}: {why}")
    risk = _read(folder / "risk" / "risk_report.json")
    print()
    if risk is None:
        print("Risk report: none (its run failed: see above)\n")
        return
    horizon, paths = risk["config"]["n_steps"], risk["config"]["n_paths"]
    print(f"Monte Carlo risk over {horizon} h ({paths:,} paths; losses as fractions of the start value):")
    portfolio = risk.get("portfolio")
    if portfolio:
        print(f"  equal-weight portfolio of {len(portfolio['symbols'])} symbols: VaR 95 {_fmt(portfolio['var_95'], '.1%')}, "
              f"CVaR 95 {_fmt(portfolio['cvar_95'], '.1%')}, VaR 99 {_fmt(portfolio['var_99'], '.1%')}, "
              f"CVaR 99 {_fmt(portfolio['cvar_99'], '.1%')}, median max DD {_fmt(portfolio['max_drawdown_q50'], '.1%')}")
    symbols = pl.DataFrame(risk.get("symbols", []))
    if symbols.height:
        merton = symbols.filter((pl.col("model") == "merton") & (pl.col("vol_multiplier") == 1.0))
        stress = symbols.filter((pl.col("model") == "merton") & (pl.col("vol_multiplier") == 3.0)).select(
            "symbol", pl.col("var_99").alias("var_99_at_3x_vol"))
        table = merton.select("symbol", "var_95", "cvar_95", "var_99", "cvar_99", "max_drawdown_q95").join(
            stress, on="symbol", how="left").sort("var_99", descending=True)
        with pl.Config(tbl_rows=30, tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True,
                       float_precision=3, tbl_width_chars=140):
            print("  per symbol (Merton jump diffusion fitted to its 1h returns), riskiest first:")
            print(table)
    for row in risk.get("bootstrap", []):
        print(f"  {row['strategy']} strategy (bootstrap of its {row['observations']} realised out-of-sample hours): "
              f"VaR 95 {_fmt(row['var_95'], '.1%')}, CVaR 99 {_fmt(row['cvar_99'], '.1%')}")
    for what, why in risk.get("failures", {}).items():
        print(f"  left out {what}: {why}")
    print()


# -- market signals (issue 11) ----------------------------------------------------------------------
#: Hours of 1m candles the demo's market_signals_job run scans: on the simulated market's 87 symbols
#: about 30 BOS and 6-8 EMA-crossover signals, so both strategies show while enqueueing and publishing
#: stay a few seconds (three days give ~460 signals and add a minute).
DEMO_SIGNAL_HOURS = 8


def market_signals_config(hours: int = DEMO_SIGNAL_HOURS) -> dict[str, Any]:
    """The demo's one market_signals_job run: every market with 1m candles, over the last ``hours``
    (the sensor-requested runs scan only what is new since the run before)."""
    return {"ops": {"market_signals_op": {"config": {"window_minutes": hours * 60}}},
            "execution": {"config": {}}}  # the job's own in-process executor (not the demo's multi-or-in-process one)


def market_signal_rows(warehouse_url: str) -> list[dict[str, Any]]:
    """The outbox's market signals and funding alerts, oldest trigger first, one dict each."""
    import json

    from sqlalchemy import select

    from resources.warehouse.schema import signals
    from resources.warehouse.store import Warehouse

    query = select(signals.c.kind, signals.c.payload, signals.c.confidence).where(
        signals.c.kind.in_(["market", "funding"]))
    with Warehouse.from_url(warehouse_url).engine.connect() as connection:
        rows = connection.execute(query).all()
    records = [{"kind": kind, "confidence": confidence, **json.loads(payload)} for kind, payload, confidence in rows]
    return sorted(records, key=lambda r: (str(r.get("trigger_ts", r.get("ts"))), r["kind"]))


def print_market_signals(warehouse_url: str, *, limit: int = 20) -> None:
    """Per strategy: how many signals, then the latest ``limit`` with entry, stop, targets, R:R,
    confidence and risk; funding alerts counted with their latest few."""
    rows = market_signal_rows(warehouse_url)
    market = [r for r in rows if r["kind"] == "market"]
    funding = [r for r in rows if r["kind"] == "funding"]
    counts = {s: sum(1 for r in market if r["strategy"] == s) for s in sorted({r["strategy"] for r in market})}
    print(f"Market signals (outbox, kind market): {len(market)} "
          f"({', '.join(f'{s} {n}' for s, n in counts.items()) or 'none'}); funding alerts: {len(funding)}")
    if market:
        print(f"  {'strategy':<10} {'symbol':<12} {'dir':<5} {'trigger (UTC)':<16} {'entry':>11} {'stop':>11} "
              f"{'targets':<23} {'R:R':>5} {'conf':>5} {'risk':<6}")
    shown = market[-limit:]
    for strategy in counts:  # every strategy shows at least its latest signal
        if not any(r["strategy"] == strategy for r in shown):
            shown = [next(r for r in reversed(market) if r["strategy"] == strategy), *shown]
    for r in sorted(shown, key=lambda r: r["trigger_ts"]):
        targets = ", ".join(f"{t:.5g}" for t in r["targets"])
        print(f"  {r['strategy']:<10} {r['symbol']:<12} {r['direction']:<5} {r['trigger_ts'][:16].replace('T', ' '):<16} "
              f"{r['entry']:>11.5g} {r['stop']:>11.5g} {targets:<23} {r['risk_reward']:>5.2f} "
              f"{r['confidence']:>5.2f} {r['risk_level']:<6}")
    for r in funding[-3:]:
        print(f"  funding    {r['symbol']:<16} {r['side']:<10} rate {r['funding_rate']:.4%} "
              f"({r['annualised_pct']:.0f} %/year) at {r['ts'][:16].replace('T', ' ')}")
    print()
