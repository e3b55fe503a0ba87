"""The risk of a book: every symbol's Monte Carlo, an equal-weight correlated portfolio, and a
stationary bootstrap of each strategy's realised out-of-sample returns (what ``risk_report``
publishes).

Pure: the inputs are the closes it is given (one timeframe, oldest first) and realised strategy
returns; nothing after the last close is used. A symbol or strategy whose figures cannot be
computed (too few closes, a non-positive close, a degenerate series) is recorded in
:attr:`BookRisk.failures` with the reason and left out; the others are still computed. The
portfolio holds the symbols whose own figures succeeded, on the timestamps they all share.

Seeds: every symbol's simulations use ``seed`` (common random numbers: two symbols' figures differ
by their parameters only), the portfolio ``seed + 1`` and strategy ``i`` (in sorted name order)
``seed + 2 + i``; the same inputs and seed give the same figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from ml.risk.bootstrap import DEFAULT_MEAN_BLOCK, bootstrap_value_paths
from ml.risk.estimation import DEFAULT_THRESHOLD
from ml.risk.measures import STRESS_MULTIPLIERS, RiskSummary, max_drawdowns, summarise_paths
from ml.risk.paths import DEFAULT_PATHS, DEFAULT_STEPS
from ml.risk.portfolio import estimate_asset_model, simulate_portfolio
from ml.risk.report import symbol_risk

#: Fewest aligned returns the portfolio's covariance is estimated from.
MIN_PORTFOLIO_OBSERVATIONS = 30


@dataclass(frozen=True)
class BookRiskConfig:
    """Simulation size and estimation settings (see :func:`ml.risk.symbol_risk`).

    ``n_steps`` candles is the horizon of every figure (720 1h candles = 30 days), the bootstrap's
    included; ``mean_block`` is the bootstrap's mean block length in candles.
    """

    n_paths: int = DEFAULT_PATHS
    n_steps: int = DEFAULT_STEPS
    dt: float = 1.0
    threshold: float = DEFAULT_THRESHOLD
    multipliers: tuple[float, ...] = STRESS_MULTIPLIERS
    mean_block: float = DEFAULT_MEAN_BLOCK
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_paths < 1 or self.n_steps < 1:
            raise ValueError(f"need n_paths, n_steps >= 1, got {self.n_paths}, {self.n_steps}")


@dataclass(frozen=True)
class PortfolioRisk:
    """The equal-weight buy-and-hold portfolio of ``symbols`` (multivariate GBM, Cholesky)."""

    symbols: tuple[str, ...]
    observations: int
    repaired: bool
    summary: RiskSummary
    max_drawdowns: np.ndarray


@dataclass(frozen=True)
class BookRisk:
    """Result of :func:`book_risk`.

    ``symbols``: one row per symbol x model x volatility multiplier (``symbol``, ``model`` gbm or
    merton, ``vol_multiplier``, then :meth:`RiskSummary.as_dict`'s figures: VaR/CVaR 95/99 as
    positive losses, max-drawdown quantiles, all fractions of the start value). ``parameters``:
    one row per symbol of the fitted GBM and Merton parameters (per candle). ``bootstrap``: one
    row per strategy (``strategy``, ``observations`` + the same figures). ``failures``: what could
    not be computed (``symbol:BTC/USDT``, ``portfolio``, ``strategy:majors``) -> why.
    """

    config: BookRiskConfig
    symbols: pl.DataFrame
    parameters: pl.DataFrame
    portfolio: PortfolioRisk | None
    bootstrap: pl.DataFrame
    bootstrap_drawdowns: dict[str, np.ndarray]
    failures: dict[str, str]

    def to_dict(self) -> dict[str, object]:
        """JSON-able figures (no arrays of paths): config, symbols, parameters, portfolio,
        bootstrap, failures."""
        portfolio = None if self.portfolio is None else {
            "symbols": list(self.portfolio.symbols), "observations": self.portfolio.observations,
            "covariance_repaired": self.portfolio.repaired, **self.portfolio.summary.as_dict()}
        return {
            "config": {"n_paths": self.config.n_paths, "n_steps": self.config.n_steps, "dt": self.config.dt,
                       "jump_threshold": self.config.threshold, "stress_multipliers": list(self.config.multipliers),
                       "bootstrap_mean_block": self.config.mean_block, "seed": self.config.seed},
            "symbols": self.symbols.to_dicts(), "parameters": self.parameters.to_dicts(),
            "portfolio": portfolio, "bootstrap": self.bootstrap.to_dicts(), "failures": dict(self.failures),
        }


def book_risk(closes: pl.DataFrame, strategy_returns: Mapping[str, Sequence[float] | np.ndarray], *,
              config: BookRiskConfig = BookRiskConfig()) -> BookRisk:
    """Risk figures of every symbol in ``closes``, their portfolio and every strategy.

    Parameters
    ----------
    closes
        Long frame with ``symbol``, ``ts`` (UTC) and ``close`` (one timeframe; any order).
    strategy_returns
        Strategy name (e.g. a segment) -> its realised out-of-sample net simple returns per candle,
        oldest first.
    config
        Simulation size, horizon, estimation settings and seed (:class:`BookRiskConfig`).
    """
    missing = {"symbol", "ts", "close"} - set(closes.columns)
    if missing:
        raise ValueError(f"closes lacks columns {sorted(missing)}")
    failures: dict[str, str] = {}
    rows: list[dict[str, object]] = []
    parameters: list[dict[str, object]] = []
    fitted: list[str] = []
    ordered = closes.select("symbol", "ts", pl.col("close").cast(pl.Float64)).sort("symbol", "ts")
    for (symbol,), group in ordered.group_by(["symbol"], maintain_order=True):
        try:
            risk = symbol_risk(group.get_column("close").to_numpy(), n_paths=config.n_paths,
                               n_steps=config.n_steps, dt=config.dt, threshold=config.threshold,
                               multipliers=config.multipliers, seed=config.seed)
        except ValueError as error:
            failures[f"symbol:{symbol}"] = str(error)
            continue
        fitted.append(str(symbol))
        rows += [{"symbol": symbol, **row} for row in risk.rows()]
        parameters.append({"symbol": symbol, "observations": group.height,
                           **{f"gbm_{k}": v for k, v in risk.gbm_params.model_dump().items()},
                           **{f"merton_{k}": v for k, v in risk.merton_params.model_dump().items()}})
    portfolio = None
    try:
        portfolio = _portfolio(ordered, fitted, config)
    except ValueError as error:
        failures["portfolio"] = str(error)
    bootstrap, drawdowns = _bootstrap(strategy_returns, config, failures)
    return BookRisk(config=config, symbols=pl.DataFrame(rows), parameters=pl.DataFrame(parameters),
                    portfolio=portfolio, bootstrap=bootstrap, bootstrap_drawdowns=drawdowns, failures=failures)


def _portfolio(closes: pl.DataFrame, symbols: list[str], config: BookRiskConfig) -> PortfolioRisk:
    if not symbols:
        raise ValueError("no symbol has risk figures: no portfolio to simulate")
    wide = (closes.filter(pl.col("symbol").is_in(symbols))
            .pivot(on="symbol", index="ts", values="close").sort("ts").drop_nulls())
    if wide.height <= MIN_PORTFOLIO_OBSERVATIONS:
        raise ValueError(f"the {len(symbols)} symbols share {wide.height} timestamps; "
                         f"need more than {MIN_PORTFOLIO_OBSERVATIONS}")
    prices = wide.select(symbols).to_numpy()
    model = estimate_asset_model(np.diff(np.log(prices), axis=0), dt=config.dt)
    weights = np.full(len(symbols), 1.0 / len(symbols))
    paths = simulate_portfolio(model, weights, n_paths=config.n_paths, n_steps=config.n_steps, dt=config.dt,
                               seed=config.seed + 1)
    return PortfolioRisk(symbols=tuple(symbols), observations=wide.height - 1, repaired=model.repaired,
                         summary=summarise_paths(paths), max_drawdowns=max_drawdowns(paths))


def _bootstrap(strategy_returns: Mapping[str, Sequence[float] | np.ndarray], config: BookRiskConfig,
               failures: dict[str, str]) -> tuple[pl.DataFrame, dict[str, np.ndarray]]:
    rows: list[dict[str, object]] = []
    drawdowns: dict[str, np.ndarray] = {}
    for index, name in enumerate(sorted(strategy_returns)):
        returns = np.asarray(strategy_returns[name], dtype=float)
        try:
            paths = bootstrap_value_paths(returns, n_paths=config.n_paths, n_steps=config.n_steps,
                                          mean_block=config.mean_block, seed=config.seed + 2 + index)
        except ValueError as error:
            failures[f"strategy:{name}"] = str(error)
            continue
        rows.append({"strategy": name, "observations": int(returns.size), **summarise_paths(paths).as_dict()})
        drawdowns[name] = max_drawdowns(paths)
    return pl.DataFrame(rows), drawdowns
