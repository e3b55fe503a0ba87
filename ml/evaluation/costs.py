"""Positions to net strategy returns, with fees and slippage on every change of position.

The rule (one bar = one period of the candle timeframe, all times UTC):

* ``asset_returns[t]`` is the simple return of the asset from the close of bar ``t`` to the close of
  bar ``t + 1`` (:func:`forward_returns` builds it from closes; the last close has none).
* ``positions[t]`` is the exposure decided at the close of bar ``t`` (``+1`` long, ``-1`` short,
  ``0`` flat, any fraction in between) and held until the close of bar ``t + 1``. It therefore earns
  ``positions[t] * asset_returns[t]`` and nothing earlier: a position never earns the move that
  produced the signal, so there is no look-ahead as long as ``positions[t]`` uses data up to ``t``.
* Every change of position pays ``fee_per_side + slippage`` per unit of traded notional, charged in
  the bar where the new position is taken: going from ``0`` to ``+1`` trades one unit (one side),
  from ``+1`` to ``-1`` two units (the exit side and the entry side). The book starts flat, so the
  first non-zero position pays its entry. A position still open after the last bar is not closed in
  the period series; :func:`trade_returns` charges its exit so no trade is counted cost-free.

So ``net[t] = positions[t] * asset_returns[t] - (fee_per_side + slippage) * |positions[t] -
positions[t - 1]|`` with ``positions[-1] = 0``. ``net[t]`` depends on ``positions[: t + 1]`` and
``asset_returns[t]`` only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class TradingCosts:
    """Proportional trading costs, as fractions of traded notional.

    Parameters
    ----------
    fee_per_side
        Exchange fee paid on each side of a trade (default 0.001 = 0.1 %).
    slippage
        Price slippage against the trader on each side (default 0.0005 = 5 bp).
    """

    fee_per_side: float = 0.001
    slippage: float = 0.0005

    def __post_init__(self) -> None:
        for name in ("fee_per_side", "slippage"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0 or value >= 1:
                raise ValueError(f"{name} must be a fraction in [0, 1), got {value!r}")

    @property
    def per_unit_traded(self) -> float:
        """Cost of trading one unit of notional on one side (fee plus slippage)."""
        return self.fee_per_side + self.slippage


DEFAULT_COSTS = TradingCosts()
NO_COSTS = TradingCosts(fee_per_side=0.0, slippage=0.0)


def as_float_array(values: ArrayLike, name: str) -> FloatArray:
    """One-dimensional float64 copy of ``values``; raises on other shapes or non-finite values."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(f"{name} has a non-finite value at index {int(bad[0])}: {array[bad[0]]!r}")
    return array


def forward_returns(close: ArrayLike) -> FloatArray:
    """Simple return from each close to the next: ``close[t + 1] / close[t] - 1``.

    Returns one value fewer than ``close`` (the last close has no next bar yet). Closes must be
    finite and strictly positive.
    """
    prices = as_float_array(close, "close")
    if np.any(prices <= 0):
        raise ValueError(
            f"close must be strictly positive; index {int(np.argmax(prices <= 0))} is not"
        )
    return prices[1:] / prices[:-1] - 1.0


def _aligned(positions: ArrayLike, asset_returns: ArrayLike) -> tuple[FloatArray, FloatArray]:
    held = as_float_array(positions, "positions")
    moves = as_float_array(asset_returns, "asset_returns")
    if held.shape != moves.shape:
        raise ValueError(
            f"positions ({held.size}) and asset_returns ({moves.size}) must have the same length"
        )
    return held, moves


def turnover(positions: ArrayLike) -> FloatArray:
    """Units of notional traded in each bar, ``|positions[t] - positions[t - 1]|``, starting flat."""
    held = as_float_array(positions, "positions")
    return np.abs(np.diff(held, prepend=0.0))


def strategy_returns(
    positions: ArrayLike, asset_returns: ArrayLike, *, costs: TradingCosts = DEFAULT_COSTS
) -> FloatArray:
    """Net simple return per bar of holding ``positions`` (rule in the module docstring).

    Parameters
    ----------
    positions
        Exposure held from the close of bar ``t`` to the close of bar ``t + 1`` (fraction of equity;
        negative is short).
    asset_returns
        Simple asset return over the same interval, same length as ``positions``.
    costs
        Fee and slippage per side.

    Returns
    -------
    Net simple returns per bar, fees and slippage included. ``result[t]`` depends on
    ``positions[: t + 1]`` and ``asset_returns[t]`` only.
    """
    held, moves = _aligned(positions, asset_returns)
    return held * moves - costs.per_unit_traded * turnover(held)


def trade_returns(
    positions: ArrayLike, asset_returns: ArrayLike, *, costs: TradingCosts = DEFAULT_COSTS
) -> FloatArray:
    """Compounded net return of every trade, in order of entry.

    A trade is a maximal run of bars whose positions are non-zero and of one sign (resizing inside
    the run stays in the trade and pays its turnover; a flip from long to short closes one trade
    and opens the next). A trade's return compounds its bars' ``position * asset_return``, minus its
    own entry cost on the first bar, its resizing costs, and finally its exit cost
    ``cost * |last position|``. A trade still open after the last bar is marked at the last close
    and charged that exit cost as well, so no trade escapes its costs.
    """
    held, moves = _aligned(positions, asset_returns)
    side = np.sign(held)
    starts = np.flatnonzero((side != 0) & (side != np.concatenate(([0.0], side[:-1]))))
    rate = costs.per_unit_traded
    results = np.empty(starts.size, dtype=np.float64)
    for index, start in enumerate(starts):
        stop = start + 1
        while stop < held.size and side[stop] == side[start]:
            stop += 1
        run = held[start:stop]
        resizing = np.abs(np.diff(run, prepend=0.0))
        growth = np.prod(1.0 + run * moves[start:stop] - rate * resizing)
        results[index] = growth * (1.0 - rate * abs(run[-1])) - 1.0
    return results


def trade_count(positions: ArrayLike) -> int:
    """Number of trades (entries) in ``positions``, as defined in :func:`trade_returns`."""
    side = np.sign(as_float_array(positions, "positions"))
    previous = np.concatenate(([0.0], side[:-1]))
    return int(np.count_nonzero((side != 0) & (side != previous)))
