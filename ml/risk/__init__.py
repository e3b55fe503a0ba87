"""Monte Carlo risk: GBM and Merton jump-diffusion paths, parameter estimation, VaR / CVaR,
drawdown distributions, volatility stress tests, a correlated portfolio and a stationary
bootstrap of realised returns. Pure numpy (no Dagster, no I/O); every random draw is seeded."""

from ml.risk.bootstrap import bootstrap_value_paths, stationary_bootstrap_indices
from ml.risk.estimation import (
    detect_jumps,
    estimate_gbm,
    estimate_merton,
    log_returns_from_closes,
)
from ml.risk.measures import (
    RiskSummary,
    expected_shortfall,
    max_drawdowns,
    stress_test,
    summarise_paths,
    value_at_risk,
)
from ml.risk.params import GBMParams, MertonParams
from ml.risk.paths import simulate_gbm, simulate_merton
from ml.risk.portfolio import (
    AssetModel,
    estimate_asset_model,
    nearest_positive_definite,
    simulate_portfolio,
)
from ml.risk.report import SymbolRisk, symbol_risk

__all__ = [
    "AssetModel",
    "GBMParams",
    "MertonParams",
    "RiskSummary",
    "SymbolRisk",
    "bootstrap_value_paths",
    "detect_jumps",
    "estimate_asset_model",
    "estimate_gbm",
    "estimate_merton",
    "expected_shortfall",
    "log_returns_from_closes",
    "max_drawdowns",
    "nearest_positive_definite",
    "simulate_gbm",
    "simulate_merton",
    "simulate_portfolio",
    "stationary_bootstrap_indices",
    "stress_test",
    "summarise_paths",
    "symbol_risk",
    "value_at_risk",
]
