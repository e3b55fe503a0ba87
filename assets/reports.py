"""``walk_forward_report`` (one partition per segment) and ``risk_report``: the honest figures.

``walk_forward_report[segment]`` reads a bounded window of 1h candles of the segment's symbols
(ending at the newest stored candle), runs the segment walk-forward and its parameter grid
(:mod:`ml.evaluation.segment`, :mod:`ml.evaluation.grid`: retraining per window, fees and
slippage, baselines, PBO, deflated Sharpe, verdict) and stores the JSON report under the data
home, with the per-bar out-of-sample returns the risk report bootstraps.

``risk_report`` reads the segments' stored reports and the closes of their symbols over its own
window, and computes every symbol's Monte Carlo, the equal-weight portfolio and each segment's
bootstrap (:func:`ml.risk.book.book_risk`). A symbol or segment that cannot be computed is listed
in the metadata and the JSON; the others are still reported.
"""


from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    PartitionsDefinition,
    asset,
)
from pydantic import Field

from assets.metadata import plot_metadata, table_metadata
from assets.report_tables import (
    bootstrap_table,
    failures_table,
    overall_table,
    parameters_table,
    portfolio_table,
    symbol_risk_table,
    windows_table,
)
from ml.features.config import FeatureConfig
from ml.features.members import screen_candles, segment_members, with_members
from ml.features.segments import SegmentsConfig, load_segments
from resources.report_store import ReportStoreResource
from resources.warehouse.resource import WarehouseResource
from resources.warehouse.store import Warehouse

TIMEFRAME = "1h"
HOUR = timedelta(hours=1)
WALK_FORWARD_KIND = "walk_forward"
RISK_KIND, RISK_NAME = "risk", "risk_report"


class WalkForwardReportConfig(Config):
    """What one segment's walk-forward reads and how it is cut (defaults: the seed's 4-week test
    windows over 12 weeks of training, about 6 windows in 270 days)."""

    exchange: str = Field(default="", description="exchange whose 1h candles are read (empty: the first configured)")
    days: float = Field(default=270.0, gt=0, description="days of 1h candles read, ending at the newest stored one")
    mode: str = Field(default="rolling", pattern="^(rolling|anchored)$", description="rolling or anchored windows")
    train_days: float = Field(default=84.0, gt=0, description="training window length (days)")
    test_days: float = Field(default=28.0, gt=0, description="test window length (days)")
    embargo_hours: float = Field(default=24.0, ge=0, description="embargo after each test window (hours)")
    horizon: int = Field(default=4, ge=1, description="label horizon (candles)")
    max_symbols: int = Field(default=8, ge=1, description="most symbols per segment (listed bases first, then by liquidity)")
    n_estimators: int = Field(default=0, ge=0, description="trees per model; 0 = the segment's own (config/segments.yaml)")
    max_depth: int = Field(default=0, ge=0, description="tree depth; 0 = the segment's own")
    learning_rate: float = Field(default=0.0, ge=0, le=1, description="learning rate; 0 = the segment's own")
    threshold_factors: list[float] = Field(default=[0.5, 1.0, 2.0], description="grid: threshold multipliers")
    horizons: list[int] = Field(default=[1, 4, 12], description="grid: label horizons (candles)")
    margins: list[float] = Field(default=[0.05, 0.1, 0.2], description="grid: position margins (|P(up) - P(down)|)")
    seed: int = Field(default=0, description="seed of XGBoost's subsampling and the label permutation")


class RiskReportConfig(Config):
    """Monte Carlo size and the window the parameters are estimated from."""

    exchange: str = Field(default="", description="exchange whose 1h candles are read (empty: the first configured)")
    days: float = Field(default=90.0, gt=0, description="days of 1h closes the parameters are estimated from")
    n_paths: int = Field(default=10_000, ge=100, description="Monte Carlo paths per simulation")
    horizon_hours: int = Field(default=720, ge=1, description="horizon of every figure (1h steps; 720 = 30 days)")
    seed: int = Field(default=0, description="seed of every simulation and bootstrap")


def _window(store: Warehouse, exchange: str, days: float) -> tuple[datetime, datetime]:
    """``[start, end)`` of the ``days`` of 1h candles ending with the newest stored one."""
    newest = store.latest_candle_ts(exchange=exchange, timeframe=TIMEFRAME)
    if newest is None:
        raise Failure(f"no {TIMEFRAME} candles of exchange {exchange!r} in the warehouse: run candles_1h_job "
                      "(or `signalworks import`) first")
    end = newest + HOUR
    return end - timedelta(days=days), end


def _segment_config(config: WalkForwardReportConfig, segments: SegmentsConfig, segment: str) -> Any:
    from ml.evaluation.segment import SegmentWalkForwardConfig

    overrides = {name: value for name, value in (("n_estimators", config.n_estimators), ("max_depth", config.max_depth),
                                                 ("learning_rate", config.learning_rate)) if value}
    params = segments.segments[segment].xgboost  # type: ignore[index]
    return SegmentWalkForwardConfig(
        mode=config.mode, train_length=timedelta(days=config.train_days),  # type: ignore[arg-type]
        test_length=timedelta(days=config.test_days), embargo=timedelta(hours=config.embargo_hours),
        horizon=config.horizon, seed=config.seed,
        xgboost=params.model_copy(update=overrides) if overrides else None)


@dataclass(frozen=True)
class SegmentReport:
    """A segment's walk-forward with its grid, its out-of-sample calibration (None when no window
    after the first has a label), the JSON report and the symbols left out (symbol -> why)."""

    result: Any
    calibration: Any
    report: dict[str, Any]
    skipped: dict[str, str]


def run_segment_report(store: Warehouse, *, exchange: str, segment: str, segments: SegmentsConfig,
                       config: WalkForwardReportConfig) -> SegmentReport:
    """Read the window's candles of ``segment``'s members and run its walk-forward and grid."""
    from ml.evaluation.grid import ParameterGrid, run_grid, with_grid
    from ml.evaluation.oos_calibration import out_of_sample_calibration
    from ml.evaluation.segment import segment_walk_forward

    start, end = _window(store, exchange, config.days)
    ranks = {row["symbol"]: row["liquidity_rank"] for row in store.read_markets(exchange).iter_rows(named=True)
             if row["is_spot"] and row["liquidity_rank"] is not None}
    stored = store.first_candle_ts(exchange=exchange, timeframe=TIMEFRAME)
    members = segment_members(stored, segment=segment, segments=segments, liquidity_ranks=ranks,
                              max_symbols=config.max_symbols)
    if not members:
        raise Failure(f"no {TIMEFRAME} candles of any {segment} symbol on {exchange}")
    reference = [FeatureConfig().reference_symbol] if FeatureConfig().reference_symbol in stored else []
    candles = store.read_candles(timeframe=TIMEFRAME, exchange=exchange, symbols=sorted({*members, *reference}),
                                 start=start, end=end)
    candles, skipped = screen_candles(candles, min_candles=round(config.test_days * 24))
    if not set(members) - set(skipped):
        raise Failure(f"no usable {segment} symbol on {exchange}: " + "; ".join(f"{s}: {w}" for s, w in skipped.items()))
    widened = with_members(segments, segment, [m for m in members if m not in skipped])
    wf_config = _segment_config(config, segments, segment)
    grid = ParameterGrid(threshold_factors=tuple(config.threshold_factors), horizons=tuple(config.horizons),
                         margins=tuple(config.margins))
    try:
        result = segment_walk_forward(candles, segment=segment, config=wf_config, segments=widened)
        result = with_grid(result, run_grid(candles, segment=segment, config=wf_config, grid=grid,
                                            segments=widened, reuse=result))
    except ValueError as error:
        raise Failure(f"{segment} walk-forward on {exchange} {start:%Y-%m-%d %H:%M}..{end:%Y-%m-%d %H:%M} UTC: "
                      f"{error}") from error
    calibration = out_of_sample_calibration(result.predictions)
    portfolio = result.portfolio
    report = {**result.to_dict(), "exchange": exchange, "timeframe": TIMEFRAME,
              "data_window": {"start": start, "end": end}, "skipped_symbols": skipped,
              "calibration": None if calibration is None else calibration.to_dict(),
              "portfolio_returns": {name: portfolio.get_column(name).to_list() for name in portfolio.columns}}
    return SegmentReport(result, calibration, report, skipped)


def walk_forward_metadata(segment_report: SegmentReport, path: str) -> dict[str, Any]:
    from ml.reporting.plots import drawdown_png, equity_curves_png, reliability_png

    result, report, calibration = segment_report.result, segment_report.report, segment_report.calibration
    portfolio = result.portfolio
    curves = {name: portfolio.get_column(name).to_numpy() for name in
              ("strategy", "buy_and_hold", "permuted_labels", "always_flat") if name in portfolio.columns}
    verdict, selection = report["verdict"], report["selection"]
    metadata = {
        "verdict": MetadataValue.md(verdict_markdown(verdict["text"])),
        "edge_after_fees": MetadataValue.bool(bool(verdict["edge_after_fees"])),
        "overall_vs_baselines": table_metadata(overall_table(report)),
        "windows": table_metadata(windows_table(report)),
        "pbo": _number(selection.get("pbo")),
        "deflated_sharpe": _number(selection.get("deflated_sharpe")),
        "trials": MetadataValue.int(int(selection["trials"])),
        "oos_sharpe": _number(report["overall"].get("sharpe")),
        "symbols": MetadataValue.text(", ".join(report["symbols"])),
        "skipped_symbols": table_metadata(failures_table(report["skipped_symbols"])),
        "data_window": MetadataValue.text(f"{report['data_window']['start']:%Y-%m-%d %H:%M} .. "
                                          f"{report['data_window']['end']:%Y-%m-%d %H:%M} UTC"),
        "equity_curves": plot_metadata(equity_curves_png(portfolio.get_column("ts"), curves),
                                       f"{result.segment} out-of-sample equity"),
        "drawdown": plot_metadata(drawdown_png(portfolio.get_column("ts"), curves["strategy"]),
                                  f"{result.segment} out-of-sample drawdown"),
        "report_path": MetadataValue.path(path),
    }
    if calibration is not None:
        metadata |= {
            "brier_before": _number(calibration.brier_before), "brier_after": _number(calibration.brier_after),
            "ece_before": _number(calibration.ece_before), "ece_after": _number(calibration.ece_after),
            "reliability": plot_metadata(reliability_png(
                {"before calibration": calibration.before, "after temperature scaling": calibration.after},
                title=f"{result.segment}: out-of-sample reliability (windows 1..)"),
                f"{result.segment} out-of-sample reliability")}
    return metadata


def verdict_markdown(text: str) -> str:
    """The verdict as a bold conclusion and one line per reason (the UI does not wrap one long line):
    ``"no edge after fees: a; b"`` -> ``"**no edge after fees**"`` then ``- a``, ``- b``."""
    conclusion, _, reasons = text.partition(": ")
    return "\n".join([f"**{conclusion}**", "", *(f"- {reason}" for reason in reasons.split("; ") if reason)])


def _number(value: float | None) -> MetadataValue:
    """A float, or the text "undefined" (JSON and the UI have no NaN)."""
    return MetadataValue.text("undefined") if value is None else MetadataValue.float(float(value))


def build_walk_forward_report_asset(partitions_def: PartitionsDefinition, *, default_exchange: str,
                                    segments_path: str) -> AssetsDefinition:
    @asset(
        name="walk_forward_report",
        partitions_def=partitions_def,
        deps=["candles_1h"],
        group_name="reports",
        kinds={"xgboost", "polars"},
        description="Per segment: rolling (or anchored) walk-forward of the segment's XGBoost, retrained per "
        "window, after fees and slippage, beside buy-and-hold, always-flat and permuted labels; PBO and "
        "deflated Sharpe over the parameter grid; a plain verdict. JSON: $SIGNALWORKS_HOME/reports/walk_forward/.",
    )
    def walk_forward_report(context: AssetExecutionContext, config: WalkForwardReportConfig,
                            warehouse: WarehouseResource, reports: ReportStoreResource) -> MaterializeResult:
        segment, exchange = context.partition_key, config.exchange or default_exchange
        outcome = run_segment_report(warehouse.store(), exchange=exchange, segment=segment,
                                     segments=load_segments(segments_path), config=config)
        for symbol, why in outcome.skipped.items():
            context.log.warning("%s: %s left out: %s", segment, symbol, why)
        path = reports.write_json(WALK_FORWARD_KIND, segment, outcome.report)
        context.log.info("%s: %s", segment, outcome.report["verdict"]["text"])
        return MaterializeResult(metadata=walk_forward_metadata(outcome, str(path)))

    return walk_forward_report


def strategy_returns_of(reports: ReportStoreResource, segments: Sequence[str]
                        ) -> tuple[dict[str, list[float]], list[str], dict[str, str]]:
    """(segment -> realised out-of-sample strategy returns, symbols of the reports (those the
    walk-forward left out included), segment -> why it is missing) from the stored reports."""
    returns: dict[str, list[float]] = {}
    symbols: set[str] = set()
    failures: dict[str, str] = {}
    for segment in segments:
        try:
            report = reports.read_json(WALK_FORWARD_KIND, segment)
            returns[segment] = [float(r) for r in report["portfolio_returns"]["strategy"]]
            symbols.update(report["symbols"])
            symbols.update(report.get("skipped_symbols", {}))  # their risk is still wanted, or its failure
        except FileNotFoundError:
            failures[f"segment:{segment}"] = f"no walk-forward report: materialise walk_forward_report[{segment}]"
        except (ValueError, KeyError, TypeError) as error:
            failures[f"segment:{segment}"] = f"unreadable walk-forward report: {error!r}"
    return returns, sorted(symbols), failures


def build_risk_report_asset(*, segments: Sequence[str], default_exchange: str) -> AssetsDefinition:
    @asset(
        name="risk_report",
        deps=["walk_forward_report", "candles_1h"],
        group_name="reports",
        kinds={"numpy"},
        description="Monte Carlo risk per symbol of the segment reports (GBM and Merton fitted to its 1h returns, "
        "VaR/CVaR 95/99, max-drawdown quantiles, Merton stresses at 2x/3x/5x volatility), the equal-weight "
        "portfolio through a Cholesky factor, and a stationary bootstrap of each segment's realised "
        "out-of-sample returns. JSON: $SIGNALWORKS_HOME/reports/risk/risk_report.json.",
    )
    def risk_report(context: AssetExecutionContext, config: RiskReportConfig, warehouse: WarehouseResource,
                    reports: ReportStoreResource) -> MaterializeResult:
        from ml.risk.book import BookRiskConfig, book_risk

        store, exchange = warehouse.store(), config.exchange or default_exchange
        returns, symbols, failures = strategy_returns_of(reports, segments)
        if not symbols:
            raise Failure("no walk-forward report to take symbols from:\n" + "\n".join(failures.values()))
        start, end = _window(store, exchange, config.days)
        closes = store.read_candles(timeframe=TIMEFRAME, exchange=exchange, symbols=symbols, start=start, end=end)
        for symbol in sorted(set(symbols) - set(closes.get_column("symbol").unique().to_list())):
            failures[f"symbol:{symbol}"] = f"no {TIMEFRAME} candles on {exchange} in the window"
        risk = book_risk(closes, returns, config=BookRiskConfig(n_paths=config.n_paths, n_steps=config.horizon_hours,
                                                                seed=config.seed))
        payload = {**risk.to_dict(), "exchange": exchange, "data_window": {"start": start, "end": end}}
        payload["failures"] = {**failures, **payload["failures"]}  # type: ignore[dict-item]
        for what, why in payload["failures"].items():  # type: ignore[union-attr]
            context.log.warning("risk_report: %s left out: %s", what, why)
        path = reports.write_json(RISK_KIND, RISK_NAME, payload)
        return MaterializeResult(metadata=risk_metadata(risk, payload, str(path)))

    return risk_report


def risk_metadata(risk: Any, payload: dict[str, Any], path: str) -> dict[str, Any]:
    from ml.reporting.plots import distribution_png

    metadata: dict[str, Any] = {
        "symbol_risk": table_metadata(symbol_risk_table(payload, stressed=False)),
        "stress": table_metadata(symbol_risk_table(payload, stressed=True)),
        "portfolio": table_metadata(portfolio_table(payload)),
        "strategy_bootstrap": table_metadata(bootstrap_table(payload)),
        "parameters": table_metadata(parameters_table(payload)),
        "failures": table_metadata(failures_table(payload["failures"])),
        "symbols": MetadataValue.int(risk.parameters.height),
        "n_paths": MetadataValue.int(risk.config.n_paths),
        "horizon_hours": MetadataValue.int(risk.config.n_steps),
        "report_path": MetadataValue.path(path),
    }
    if risk.portfolio is not None:
        summary = risk.portfolio.summary
        metadata |= {"portfolio_var_95": _number(summary.var[0.95]), "portfolio_cvar_95": _number(summary.cvar[0.95]),
                     "portfolio_var_99": _number(summary.var[0.99]), "portfolio_cvar_99": _number(summary.cvar[0.99])}
        metadata["portfolio_drawdowns"] = plot_metadata(distribution_png(
            risk.portfolio.max_drawdowns, title=f"Equal-weight portfolio max drawdown over {risk.config.n_steps} h",
            xlabel="max drawdown (fraction of the peak)"), "portfolio max-drawdown distribution")
    for name, drawdowns in risk.bootstrap_drawdowns.items():
        metadata[f"bootstrap_drawdowns_{name}"] = plot_metadata(distribution_png(
            drawdowns, title=f"{name} strategy max drawdown over {risk.config.n_steps} h (bootstrap)",
            xlabel="max drawdown (fraction of the peak)"), f"{name} bootstrap max-drawdown distribution")
    return metadata

