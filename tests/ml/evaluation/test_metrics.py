"""Metrics against empyrical-reloaded (random and real returns) and by hand."""

from __future__ import annotations

import math

import empyrical
import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ml.evaluation.baselines import buy_and_hold_returns
from ml.evaluation.costs import forward_returns, strategy_returns, trade_returns
from ml.evaluation.metrics import (
    annual_return,
    assess_overfit,
    calmar_ratio,
    max_drawdown,
    mean_return_p_value,
    profit_factor,
    sharpe_ratio,
    sortino_ratio,
    summarise,
    win_rate,
)
from tests.support.fixtures import shared_fixtures_dir


def _assert_same(ours: float, reference: float, what: str, rel: float = 1e-9) -> None:
    if math.isnan(reference) or math.isinf(reference):
        same = ours == reference or (math.isnan(ours) and math.isnan(reference))
        assert same, (what, ours, reference)
    else:
        assert ours == pytest.approx(reference, rel=rel, abs=1e-12), (what, ours, reference)


def _assert_matches_empyrical(returns: np.ndarray, periods_per_year: int) -> None:
    _assert_same(
        sharpe_ratio(returns, periods_per_year=periods_per_year),
        empyrical.sharpe_ratio(returns, annualization=periods_per_year),
        "sharpe",
    )
    _assert_same(
        sortino_ratio(returns, periods_per_year=periods_per_year),
        empyrical.sortino_ratio(returns, annualization=periods_per_year),
        "sortino",
    )
    _assert_same(max_drawdown(returns), empyrical.max_drawdown(returns), "max drawdown")
    _assert_same(
        annual_return(returns, periods_per_year=periods_per_year),
        empyrical.annual_return(returns, annualization=periods_per_year),
        "annual return",
    )
    reference_calmar = empyrical.calmar_ratio(returns, annualization=periods_per_year)
    # A drawdown of a few ulps is rounding residue: its size (and whether it is 0, so nan) depends on
    # the order of operations, and dividing by it amplifies that residue. Compare real drawdowns.
    if max_drawdown(returns) < -1e-6:
        _assert_same(
            calmar_ratio(returns, periods_per_year=periods_per_year),
            reference_calmar,
            "calmar",
            rel=1e-8,
        )


@settings(max_examples=150, deadline=None)
@given(
    arrays(np.float64, st.integers(2, 400), elements=st.floats(-0.05, 0.05, allow_subnormal=False)),
    st.sampled_from([252, 365, 8760]),
)
def test_metrics_match_empyrical_on_random_returns(
    returns: np.ndarray, periods_per_year: int
) -> None:
    _assert_matches_empyrical(returns, periods_per_year)


def test_metrics_match_empyrical_on_real_btc_returns() -> None:
    path = shared_fixtures_dir() / "binance_2024" / "BTC_USDT-1h.feather"
    close = pl.read_ipc(path)["close"].to_numpy()
    moves = forward_returns(close)
    momentum = np.zeros(moves.size)
    momentum[24:] = np.sign(close[24:-1] / close[:-25] - 1)  # sign of the last 24 h, known at t
    hold = buy_and_hold_returns(moves)
    strategy = strategy_returns(momentum, moves)
    assert moves.size > 5000  # Jan-Sep 2024 in 1h candles
    # buy-and-hold telescopes to the price change, the one entry cost taken from the first bar
    entry = (1 + moves[0] - 0.0015) / (1 + moves[0])
    assert np.prod(1 + hold) == pytest.approx(close[-1] / close[0] * entry, rel=1e-9)
    for series in (moves, hold, strategy):
        _assert_matches_empyrical(series, 8760)
    assert max_drawdown(hold) < -0.1  # BTC fell more than 10 % from a peak in 2024
    assert 0 < trade_returns(momentum, moves).size < moves.size


def test_win_rate_and_profit_factor_by_hand() -> None:
    returns = [0.02, 0.0, -0.01, 0.03, -0.02, 0.0]
    assert win_rate(returns) == pytest.approx(0.5)  # 2 wins of 4 non-zero periods
    assert profit_factor(returns) == pytest.approx(0.05 / 0.03)
    assert profit_factor([0.01, 0.0]) == math.inf
    assert math.isnan(profit_factor([0.0, 0.0])) and math.isnan(win_rate([0.0]))


def test_p_value_by_hand() -> None:
    from scipy import stats

    returns = np.array([0.01, 0.02, -0.005, 0.015, 0.0])
    t = returns.mean() / (returns.std(ddof=1) / math.sqrt(returns.size))
    assert mean_return_p_value(returns) == pytest.approx(stats.t.sf(t, df=4))
    assert mean_return_p_value(returns, alternative="two-sided") == pytest.approx(
        2 * stats.t.sf(t, df=4)
    )
    assert mean_return_p_value(-returns) > 0.9
    assert math.isnan(mean_return_p_value([0.01, 0.01]))


def test_drawdown_counts_the_starting_capital_as_a_peak() -> None:
    assert max_drawdown([-0.1, 0.05]) == pytest.approx(-0.1)
    assert max_drawdown([0.1, -0.5, 0.2]) == pytest.approx(-0.5)
    assert max_drawdown([0.01, 0.02]) == 0.0 and math.isnan(
        calmar_ratio([0.01, 0.02], periods_per_year=365)
    )


def test_zero_dispersion_and_short_series() -> None:
    assert math.isnan(sharpe_ratio([0.0, 0.0]))
    assert sharpe_ratio([0.01, 0.01]) == math.inf
    assert math.isnan(sharpe_ratio([0.01]))
    assert annual_return([-1.0, 0.1], periods_per_year=365) == -1.0
    with pytest.raises(ValueError, match="periods_per_year"):
        sharpe_ratio([0.01, 0.02], periods_per_year=0)


@pytest.mark.parametrize(
    ("in_sample", "out_of_sample", "ratio", "overfit"),
    [
        (2.0, 1.5, 2.0 / 1.5, False),
        (2.0, 1.0, 2.0, False),  # exactly 2 is not "exceeds"
        (3.0, 1.0, 3.0, True),
        (1.0, -0.5, math.inf, True),  # the edge reversed out of sample
        (1.0, 0.0, math.inf, True),
        (1.0, math.nan, math.inf, True),
        (-1.0, 0.5, math.nan, False),  # nothing claimed in sample
        (0.0, -0.5, math.nan, False),
    ],
)
def test_overfit_flag(in_sample: float, out_of_sample: float, ratio: float, overfit: bool) -> None:
    result = assess_overfit(in_sample, out_of_sample)
    assert result.overfit is overfit
    assert (math.isnan(ratio) and math.isnan(result.ratio)) or result.ratio == pytest.approx(ratio)


def test_summary_holds_every_metric() -> None:
    positions = np.array([0, 1, 1, 0, -1, -1, 0, 1], dtype=float)
    moves = np.array([0.01, 0.02, -0.01, 0.03, -0.02, 0.01, 0.0, 0.02])
    net = strategy_returns(positions, moves)
    trades = trade_returns(positions, moves)
    summary = summarise(net, trades, periods_per_year=8760)
    assert summary.trades == 3 and summary.periods == 8
    assert summary.sharpe == sharpe_ratio(net, periods_per_year=8760)
    assert summary.win_rate_per_trade == win_rate(trades)
    assert summary.total_return == pytest.approx(np.prod(1 + net) - 1)
    assert summary.p_value == mean_return_p_value(net)


def test_summary_of_a_strategy_that_never_trades() -> None:
    summary = summarise([0.0, 0.0, 0.0], [], periods_per_year=8760)
    assert summary.trades == 0 and summary.total_return == 0.0 and summary.max_drawdown == 0.0
    assert math.isnan(summary.win_rate_per_trade) and math.isnan(summary.sharpe)
    assert math.isnan(summary.p_value) and math.isnan(summary.profit_factor_per_trade)
