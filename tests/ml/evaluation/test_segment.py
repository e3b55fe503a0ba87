"""Segment walk-forward and its parameter grid: known answers (a planted edge is found, random walks
claim nothing), no look-ahead, the portfolio and baselines by hand, the JSON layout, clear errors."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from ml.evaluation.costs import strategy_returns, trade_count, trade_returns
from ml.evaluation.grid import ParameterGrid, run_grid, with_grid
from ml.evaluation.metrics import PerformanceSummary, sharpe_ratio
from ml.evaluation.positions import rule_positions
from ml.evaluation.segment import (
    DEFAULT_MARGIN,
    SCHEMA_VERSION,
    SegmentWalkForwardConfig,
    portfolio_returns,
    segment_walk_forward,
)
from ml.evaluation.verdict import verdict_of
from ml.evaluation.walkforward import PositionRule
from ml.features.segments import XGBoostParams
from tests.support.builders import make_candles
from tests.support.planted_candles import planted_candles

#: Small and fast: 20-day training, 10-day test windows, 40 shallow trees.
CONFIG = SegmentWalkForwardConfig(train_length=timedelta(days=20), test_length=timedelta(days=10),
                                  embargo=timedelta(hours=6), horizon=2,
                                  xgboost=XGBoostParams(n_estimators=40, max_depth=3, learning_rate=0.3))
SMALL_GRID = ParameterGrid(threshold_factors=(0.5, 1.0), horizons=(1, 2), margins=(0.1, 0.2))


@pytest.fixture(scope="module")
def planted():
    candles = planted_candles(1500, seed=1)
    return candles, segment_walk_forward(candles, segment="majors", config=CONFIG)


def test_planted_edge_is_found_after_fees_and_survives_the_grid(planted) -> None:
    candles, result = planted
    assert result.windows.height == 4 and result.symbols == ("BTC/USDT", "ETH/USDT")
    assert result.out_of_sample.sharpe > 5
    assert result.deflated_sharpe >= 0.95
    assert result.verdict.edge, result.verdict.text
    assert result.verdict.text.startswith("edge after fees")

    grid = run_grid(candles, segment="majors", config=CONFIG, grid=SMALL_GRID, reuse=result)
    assert len(grid.trials) == 8 and grid.returns.height == result.portfolio.height
    assert grid.pbo is not None and grid.pbo.pbo < 0.5
    assert grid.deflated_sharpe >= 0.95
    graded = with_grid(result, grid)
    assert graded.trials == 8 and graded.pbo == grid.pbo.pbo
    assert graded.deflated_sharpe <= result.deflated_sharpe  # eight tries raise the bar
    assert graded.verdict.edge, graded.verdict.text


@pytest.mark.parametrize("edge", [0.0, None], ids=["random-walk-with-ranges", "plain-random-walk"])
def test_random_walks_claim_no_edge_in_at_least_95_percent_of_seeds(edge: float | None) -> None:
    claims = []
    for seed in range(20):
        candles = (make_candles(1000, symbols=("BTC/USDT", "ETH/USDT"), seed=seed) if edge is None
                   else planted_candles(1000, seed=seed, edge=edge))
        result = segment_walk_forward(candles, segment="majors", config=CONFIG)
        claims.append(result.verdict.edge)
        if not result.verdict.edge:
            assert result.verdict.text.startswith("no edge after fees: ")
    assert sum(claims) <= 1, f"{sum(claims)} of 20 random walks claimed an edge"


def test_positions_hold_each_forecast_for_the_label_horizon_across_window_boundaries(planted) -> None:
    candles, result = planted
    rule = CONFIG.position_rule
    assert rule == PositionRule(margin=DEFAULT_MARGIN, hold=CONFIG.horizon)
    assert result.to_dict()["config"]["position_hold"] == CONFIG.horizon
    predictions = result.predictions  # by symbol, then time: each symbol's test windows as one series
    positions = predictions["position"].to_numpy()
    np.testing.assert_array_equal(positions, rule_positions(predictions, rule))
    # a position taken at a window's last bar is carried into the next although the next model's
    # first forecast is unconfident
    score = (predictions["p_up"] - predictions["p_down"]).abs().to_numpy()
    window, symbol = predictions["window"].to_numpy(), predictions["symbol"].to_numpy()
    first_of_window = np.r_[False, (window[1:] != window[:-1]) & (symbol[1:] == symbol[:-1])]
    carried = first_of_window & (score <= rule.margin) & (positions != 0)
    assert carried.sum() >= 1
    # holding trades less than re-deciding every candle on the same forecasts
    per_candle = rule_positions(predictions, PositionRule(margin=rule.margin))
    assert result.out_of_sample.trades < sum(trade_count(per_candle[symbol == s]) for s in result.symbols)

    # the grid trial with the reported parameters (its hold is its horizon) is the reported strategy
    grid = run_grid(candles, segment="majors", config=CONFIG, grid=SMALL_GRID, reuse=result)
    index = next(i for i, t in enumerate(grid.trials)
                 if t.horizon == CONFIG.horizon and t.margin == DEFAULT_MARGIN and math.isclose(t.threshold, 0.005))
    np.testing.assert_array_equal(grid.returns[f"trial_{index}"].to_numpy(), result.portfolio["strategy"].to_numpy())
    _, unheld = portfolio_returns(predictions, per_candle, CONFIG.costs)
    assert not np.array_equal(grid.returns[f"trial_{index}"].to_numpy(), unheld)


def test_altering_candles_after_a_test_window_changes_none_of_its_predictions(planted) -> None:
    candles, result = planted
    window = result.windows.row(1, named=True)
    future = pl.col("ts") >= window["test_end"]
    rng = np.random.default_rng(5)
    factor = pl.Series(rng.uniform(0.5, 2.0, candles.height))
    altered = candles.with_columns(
        *[pl.when(future).then(pl.col(c) * factor).otherwise(pl.col(c)).alias(c) for c in ("open", "close", "volume")],
        pl.when(future).then(pl.max_horizontal("open", "close", "high") * factor * 2).otherwise(pl.col("high")).alias("high"),
        pl.when(future).then(pl.min_horizontal("open", "close", "low") * factor / 2).otherwise(pl.col("low")).alias("low"),
    )
    assert not altered.equals(candles)
    again = segment_walk_forward(altered, segment="majors", config=CONFIG)
    columns = ["symbol", "ts", "p_down", "p_flat", "p_up", "position", "permuted_position"]
    for index in (0, 1):
        before = result.predictions.filter(pl.col("window") == index).select(columns)
        after = again.predictions.filter(pl.col("window") == index).select(columns)
        assert before.height > 0 and before.equals(after)
    later = result.predictions.filter(pl.col("window") == 3).select(columns)
    assert not later.equals(again.predictions.filter(pl.col("window") == 3).select(columns))


def test_portfolio_is_the_equal_weight_mean_of_each_symbols_net_returns(planted) -> None:
    _, result = planted
    per_symbol = {}
    trades = 0
    for (symbol,), part in result.predictions.sort("ts").group_by(["symbol"], maintain_order=True):
        positions, moves = part["position"].to_numpy(), part["asset_return"].to_numpy()
        per_symbol[symbol] = pl.DataFrame({"ts": part["ts"], symbol: strategy_returns(positions, moves)})
        trades += trade_returns(positions, moves).size
    wide = per_symbol["BTC/USDT"].join(per_symbol["ETH/USDT"], on="ts", how="full", coalesce=True).sort("ts")
    expected = wide.select(pl.mean_horizontal("BTC/USDT", "ETH/USDT")).to_series().to_numpy()
    assert np.allclose(result.portfolio["strategy"].to_numpy(), expected, rtol=0, atol=1e-15)
    assert result.out_of_sample.trades == trades
    assert math.isclose(result.out_of_sample.sharpe, sharpe_ratio(expected), rel_tol=1e-12)
    # buy-and-hold pays one entry per symbol and window, flat earns nothing
    entries = result.windows.height * 2
    gross = result.predictions.group_by("ts").agg(pl.col("asset_return").mean()).sort("ts")["asset_return"]
    paid = (gross.to_numpy() - result.portfolio["buy_and_hold"].to_numpy()).sum()
    assert math.isclose(paid, entries * 0.0015 / 2, rel_tol=1e-9)
    assert result.baselines["buy_and_hold"].trades == entries
    assert result.baselines["always_flat"].total_return == 0.0


def test_report_dict_is_json_with_the_documented_sections(planted) -> None:
    _, result = planted
    report = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert report["schema_version"] == SCHEMA_VERSION
    assert {"segment", "symbols", "config", "costs", "threshold", "xgboost", "features", "windows", "overall",
            "baselines", "selection", "verdict"} <= set(report)
    assert report["config"]["test_days"] == 10 and report["threshold"] == 0.005
    assert set(report["baselines"]) == {"buy_and_hold", "always_flat", "permuted_labels"}
    assert len(report["windows"]) == 4 and report["windows"][0]["test_start"].startswith("2024-01-21T00:00:00")
    assert report["verdict"]["edge_after_fees"] is True and report["selection"]["trials"] == 1


def test_clear_errors_for_unknown_segment_foreign_symbols_and_short_ranges() -> None:
    candles = make_candles(300, symbols=("BTC/USDT",))
    with pytest.raises(ValueError, match="unknown segment 'bluechips'"):
        segment_walk_forward(candles, segment="bluechips", config=CONFIG)
    with pytest.raises(ValueError, match="no symbol of segment 'memes'"):
        segment_walk_forward(candles, segment="memes", config=CONFIG)
    with pytest.raises(ValueError, match="covers no complete window"):
        segment_walk_forward(candles, segment="majors", config=CONFIG)
    with pytest.raises(ValueError, match="horizon must be at least 1"):
        replace(CONFIG, horizon=0)


def _summary(sharpe: float) -> PerformanceSummary:
    return PerformanceSummary(periods=100, sharpe=sharpe, sortino=sharpe, calmar=math.nan, max_drawdown=-0.1,
                              annual_return=0.0, total_return=0.0, win_rate_per_period=0.5, win_rate_per_trade=0.5,
                              profit_factor_per_period=1.0, profit_factor_per_trade=1.0, trades=10, p_value=0.5)


@pytest.mark.parametrize(("sharpe", "permuted", "buy_hold", "dsr", "edge", "failed"), [
    (3.0, 1.0, 2.0, 0.99, True, ()),
    (3.0, 1.0, 2.0, 0.90, False, ("deflated Sharpe 0.900 is below 0.95 over 9 trial(s)",)),
    (3.0, 3.5, 2.0, 0.99, False, ("does not beat permuted labels (3.50)",)),
    (3.0, 1.0, 3.0, 0.99, False, ("does not beat buy-and-hold (3.00)",)),
    (-1.0, math.nan, 2.0, 0.01, False, ("below 0.95", "does not beat permuted labels (nan)", "buy-and-hold (2.00)")),
    (math.nan, 1.0, 2.0, math.nan, False, ("below 0.95", "permuted labels", "buy-and-hold")),
])
def test_verdict_claims_an_edge_only_when_all_three_checks_pass(sharpe: float, permuted: float, buy_hold: float,
                                                                dsr: float, edge: bool, failed: tuple[str, ...]) -> None:
    baselines = {"permuted_labels": _summary(permuted), "buy_and_hold": _summary(buy_hold),
                 "always_flat": _summary(math.nan)}
    verdict = verdict_of(_summary(sharpe), baselines, dsr, 9)
    assert verdict.edge is edge and all(verdict.checks.values()) is edge
    assert verdict.text.startswith("edge after fees" if edge else "no edge after fees: ")
    for reason in failed:
        assert reason in verdict.text


def test_anchored_windows_grow_from_the_start_and_share_the_rolling_test_bars(planted) -> None:
    candles, rolling = planted
    anchored = segment_walk_forward(candles, segment="majors", config=replace(CONFIG, mode="anchored"),
                                    permuted_baseline=False)
    starts = anchored.windows["train_start"].to_list()
    assert len(set(starts)) == 1 and starts[0] == rolling.windows["train_start"][0]
    assert anchored.windows["train_rows"].is_sorted() and anchored.windows["train_rows"][-1] > rolling.windows["train_rows"][-1]
    assert anchored.portfolio["ts"].equals(rolling.portfolio["ts"])
    assert anchored.predictions.filter(pl.col("window") == 0).select("p_up").equals(
        rolling.predictions.filter(pl.col("window") == 0).select("p_up"))  # the first window is the same fit
    assert math.isnan(anchored.baselines["permuted_labels"].sharpe)
