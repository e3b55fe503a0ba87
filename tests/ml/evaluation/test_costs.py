"""Positions to net returns: the cost rule by hand, no look-ahead, trades consistent with periods."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.evaluation.baselines import always_flat_returns, buy_and_hold_returns
from ml.evaluation.costs import (
    NO_COSTS,
    TradingCosts,
    forward_returns,
    strategy_returns,
    trade_count,
    trade_returns,
    turnover,
)

RATE = 0.001 + 0.0005  # default fee per side plus default slippage
POSITIONS = [0.0, 1.0, 1.0, -1.0, 0.0]
MOVES = [0.01, 0.02, -0.01, 0.03, 0.05]


def test_defaults_are_ten_bp_fee_and_five_bp_slippage() -> None:
    assert TradingCosts() == TradingCosts(fee_per_side=0.001, slippage=0.0005)
    assert TradingCosts().per_unit_traded == pytest.approx(RATE)


def test_net_returns_by_hand() -> None:
    expected = [0.0, 0.02 - RATE, -0.01, -0.03 - 2 * RATE, -RATE]  # the flip trades two units
    np.testing.assert_allclose(strategy_returns(POSITIONS, MOVES), expected, rtol=0, atol=1e-15)
    np.testing.assert_allclose(turnover(POSITIONS), [0, 1, 0, 2, 1])


def test_fractional_positions_pay_turnover() -> None:
    net = strategy_returns(
        [0.5, -0.25], [0.04, 0.02], costs=TradingCosts(fee_per_side=0.01, slippage=0.0)
    )
    np.testing.assert_allclose(net, [0.5 * 0.04 - 0.005, -0.25 * 0.02 - 0.0075])


def test_trades_by_hand() -> None:
    long_trade = (1 + 0.02 - RATE) * (1 - 0.01) * (1 - RATE) - 1
    short_trade = (1 - 0.03 - RATE) * (1 - RATE) - 1
    np.testing.assert_allclose(trade_returns(POSITIONS, MOVES), [long_trade, short_trade])
    assert trade_count(POSITIONS) == 2
    assert trade_count([0, 0, 0]) == 0 and trade_returns([0, 0], [0.1, 0.2]).size == 0


def test_open_trade_at_the_end_pays_its_exit() -> None:
    np.testing.assert_allclose(
        trade_returns([0, 1], [0.5, 0.1]), [(1 + 0.1 - RATE) * (1 - RATE) - 1]
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([0.0, 1.0]), st.floats(-0.2, 0.2, allow_subnormal=False)),
        min_size=1,
        max_size=60,
    )
)
def test_long_only_trades_compound_to_the_period_returns(rows: list[tuple[float, float]]) -> None:
    """For 0/1 positions that end flat, the trades' and the periods' growth are the same money."""
    positions = np.array([p for p, _ in rows] + [0.0])
    moves = np.array([m for _, m in rows] + [0.0])
    by_period = np.prod(1 + strategy_returns(positions, moves))
    by_trade = np.prod(1 + trade_returns(positions, moves))
    assert by_trade == pytest.approx(by_period, rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 96))
def test_altering_the_future_changes_no_past_return(seed: int, cut: int) -> None:
    """net[t] is fixed once the close of t + 1 is known: changing closes after t + 1 and positions
    after t leaves every net return up to t unchanged."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 100)))
    positions = rng.choice([-1.0, 0.0, 0.5, 1.0], size=99)
    altered_close = close.copy()
    altered_close[cut + 2 :] *= np.exp(rng.normal(0, 0.2, close.size - cut - 2))
    altered_positions = positions.copy()
    altered_positions[cut + 1 :] = rng.choice([-1.0, 1.0], size=positions.size - cut - 1)

    original = strategy_returns(positions, forward_returns(close))
    altered = strategy_returns(altered_positions, forward_returns(altered_close))
    np.testing.assert_array_equal(original[: cut + 1], altered[: cut + 1])
    assert forward_returns(close)[cut + 1] != forward_returns(altered_close)[cut + 1]  # it did
    assert not np.array_equal(original[cut + 1 :], altered[cut + 1 :])  # reach the future


def test_position_never_earns_the_return_that_produced_it() -> None:
    close = np.array([100.0, 110.0, 99.0, 99.0])
    moves = forward_returns(close)
    np.testing.assert_allclose(moves, [0.1, -0.1, 0.0])
    positions = np.sign(np.diff(close, prepend=close[0]))[:-1]  # last move's sign, known at t
    np.testing.assert_allclose(strategy_returns(positions, moves, costs=NO_COSTS), [0.0, -0.1, 0.0])


@pytest.mark.parametrize(
    ("positions", "moves", "message"),
    [
        ([0, 1], [0.1], "same length"),
        ([0, np.nan], [0.1, 0.2], "positions has a non-finite value at index 1"),
        ([[0, 1]], [[0.1, 0.2]], "one-dimensional"),
    ],
)
def test_bad_input_is_refused_clearly(positions: object, moves: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        strategy_returns(positions, moves)  # type: ignore[arg-type]


def test_bad_costs_and_prices_are_refused() -> None:
    with pytest.raises(ValueError, match="fee_per_side"):
        TradingCosts(fee_per_side=-0.001)
    with pytest.raises(ValueError, match="strictly positive; index 1"):
        forward_returns([1.0, 0.0, 2.0])


def test_baselines() -> None:
    moves = np.array([0.01, -0.02, 0.03])
    np.testing.assert_allclose(buy_and_hold_returns(moves), [0.01 - RATE, -0.02, 0.03])
    np.testing.assert_array_equal(always_flat_returns(moves), np.zeros(3))
