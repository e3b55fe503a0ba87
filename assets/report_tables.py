"""The tables the report assets show, built from the stored JSON reports (one formatting for the
UI's metadata, the demo's summary and anyone reading the files)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

#: Baselines in the order the overall table shows them, after the strategy itself.
BASELINES = ("buy_and_hold", "permuted_labels", "always_flat")
#: Per-window columns of a walk-forward report, in display order (names as the report stores them).
WINDOW_COLUMNS = ("window", "test_start", "test_end", "symbols", "train_rows", "test_rows", "is_sharpe",
                  "oos_sharpe", "oos_sortino", "oos_calmar", "oos_max_drawdown", "oos_win_rate_per_trade",
                  "oos_profit_factor_per_trade", "oos_trades", "oos_p_value", "overfit_ratio", "overfit",
                  "buy_and_hold_sharpe", "permuted_labels_sharpe")
OVERALL_COLUMNS = ("sharpe", "sortino", "calmar", "max_drawdown", "win_rate_per_trade", "profit_factor_per_trade",
                   "trades", "p_value", "total_return")
#: Risk figures of one set of paths, in display order (:meth:`ml.risk.RiskSummary.as_dict`).
RISK_COLUMNS = ("var_95", "cvar_95", "var_99", "cvar_99", "max_drawdown_q50", "max_drawdown_q95",
                "max_drawdown_q99", "mean_return")


def _frame(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> pl.DataFrame:
    """``rows`` restricted to ``columns`` (a missing key is an empty cell), values as given."""
    shown = [c for c in columns if any(c in row for row in rows)]
    return pl.DataFrame([{c: row.get(c) for c in shown} for row in rows], infer_schema_length=None)


def _day(value: object) -> object:
    return value[:16].replace("T", " ") if isinstance(value, str) else value


def windows_table(report: Mapping[str, Any]) -> pl.DataFrame:
    """One row per walk-forward window: bounds (UTC), rows, in- and out-of-sample metrics after
    costs, the overfit ratio and flag, and the baselines' Sharpe ratios in the same window."""
    rows = [{**row, "test_start": _day(row.get("test_start")), "test_end": _day(row.get("test_end"))}
            for row in report.get("windows", [])]
    return _frame(rows, WINDOW_COLUMNS)


def overall_table(report: Mapping[str, Any]) -> pl.DataFrame:
    """The whole out-of-sample period: the strategy (with its in-sample Sharpe, IS/OOS ratio and
    overfit flag) beside each baseline in the same rows and costs."""
    overall = dict(report["overall"])
    rows = [{"series": "strategy", **{c: overall.get(c) for c in OVERALL_COLUMNS},
             "in_sample_sharpe": overall.get("in_sample_sharpe"), "is_oos_ratio": overall.get("overfit_ratio"),
             "overfit": overall.get("overfit")}]
    baselines = report.get("baselines", {})
    rows += [{"series": name, **{c: baselines[name].get(c) for c in OVERALL_COLUMNS},
              "in_sample_sharpe": None, "is_oos_ratio": None, "overfit": None}
             for name in BASELINES if name in baselines]
    return pl.DataFrame(rows, infer_schema_length=None)


def selection_figures(report: Mapping[str, Any]) -> dict[str, Any]:
    """PBO, deflated Sharpe and the number of trials they account for (None where undefined)."""
    selection = report.get("selection", {})
    return {"pbo": selection.get("pbo"), "deflated_sharpe": selection.get("deflated_sharpe"),
            "trials": selection.get("trials")}


def summary_row(report: Mapping[str, Any]) -> dict[str, Any]:
    """One line of the demo's walk-forward summary for a segment."""
    overall, baselines = report["overall"], report.get("baselines", {})
    return {"segment": report["segment"], "symbols": len(report.get("symbols", [])),
            "windows": len(report.get("windows", [])), "oos_sharpe": overall.get("sharpe"),
            "max_dd": overall.get("max_drawdown"), "trades": overall.get("trades"),
            "buy_hold_sharpe": baselines.get("buy_and_hold", {}).get("sharpe"),
            "permuted_sharpe": baselines.get("permuted_labels", {}).get("sharpe"),
            **{k: v for k, v in selection_figures(report).items() if k != "trials"},
            "edge": report.get("verdict", {}).get("edge_after_fees")}


def symbol_risk_table(risk: Mapping[str, Any], *, stressed: bool) -> pl.DataFrame:
    """Per symbol: GBM and Merton figures (``stressed=False``) or the Merton volatility stresses
    (``stressed=True``, multipliers above 1)."""
    rows = [row for row in risk.get("symbols", [])
            if (row.get("vol_multiplier", 1.0) > 1.0) == stressed]
    return _frame(rows, ("symbol", "model", "vol_multiplier", *RISK_COLUMNS))


def portfolio_table(risk: Mapping[str, Any]) -> pl.DataFrame:
    """The equal-weight portfolio (one row) or an empty frame when it could not be simulated."""
    portfolio = risk.get("portfolio")
    if not portfolio:
        return pl.DataFrame()
    row = {"assets": len(portfolio["symbols"]), "observations": portfolio.get("observations"),
           "covariance_repaired": portfolio.get("covariance_repaired"),
           **{c: portfolio.get(c) for c in RISK_COLUMNS}}
    return pl.DataFrame([row])


def bootstrap_table(risk: Mapping[str, Any]) -> pl.DataFrame:
    """One row per segment strategy: bootstrap of its realised out-of-sample returns."""
    return _frame(list(risk.get("bootstrap", [])), ("strategy", "observations", *RISK_COLUMNS))


def parameters_table(risk: Mapping[str, Any]) -> pl.DataFrame:
    """Fitted GBM and Merton parameters per symbol (per candle)."""
    return _frame(list(risk.get("parameters", [])),
                  ("symbol", "observations", "gbm_mu", "gbm_sigma", "merton_mu", "merton_sigma",
                   "merton_jump_intensity", "merton_jump_mean", "merton_jump_std"))


def failures_table(failures: Mapping[str, str]) -> pl.DataFrame:
    return pl.DataFrame({"what": list(failures), "why": list(failures.values())},
                        schema={"what": pl.String, "why": pl.String})
