"""Technical indicators over long candle frames: pure, vectorised, no look-ahead.

Entry points: :func:`~ml.indicators.engine.compute_indicators`,
:class:`~ml.indicators.params.IndicatorParams`, :data:`~ml.indicators.engine.INDICATOR_COLUMNS`,
:func:`~ml.indicators.schema.lookback_bars`.

The engine (and TA-Lib with it) is imported on first use, not with the package: the Dagster code
location reads the indicator schema at load time and must stay quick to import.
"""

from typing import Any

from ml.indicators.params import IndicatorParams
from ml.indicators.schema import indicator_columns, lookback_bars, warmup_bars

__all__ = [
    "INDICATOR_COLUMNS",
    "IndicatorParams",
    "compute_indicators",
    "indicator_columns",
    "lookback_bars",
    "warmup_bars",
]


def __getattr__(name: str) -> Any:
    if name in ("INDICATOR_COLUMNS", "compute_indicators"):
        from ml.indicators import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'ml.indicators' has no attribute {name!r}")
