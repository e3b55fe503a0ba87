"""Reference strategies for the same windows as a model: buy-and-hold and always-flat.

Both go through :func:`ml.evaluation.costs.strategy_returns`, so they pay the same costs by the same
rule as the model they are compared with (buy-and-hold pays its single entry in the first bar).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ml.evaluation.costs import (
    DEFAULT_COSTS,
    FloatArray,
    TradingCosts,
    as_float_array,
    strategy_returns,
)


def buy_and_hold_returns(
    asset_returns: ArrayLike, *, costs: TradingCosts = DEFAULT_COSTS
) -> FloatArray:
    """Net returns of holding one unit long through the whole window, entry cost included."""
    moves = as_float_array(asset_returns, "asset_returns")
    return strategy_returns(np.ones_like(moves), moves, costs=costs)


def always_flat_returns(asset_returns: ArrayLike) -> FloatArray:
    """Net returns of never trading: zero in every period of the window."""
    moves = as_float_array(asset_returns, "asset_returns")
    return np.zeros_like(moves)
