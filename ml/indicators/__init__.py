"""Technical indicators over long candle frames: pure, vectorised, no look-ahead.

Entry points: :func:`~ml.indicators.engine.compute_indicators`,
:class:`~ml.indicators.params.IndicatorParams`, :data:`~ml.indicators.engine.INDICATOR_COLUMNS`,
:func:`~ml.indicators.schema.lookback_bars`.
"""

from ml.indicators.engine import INDICATOR_COLUMNS, compute_indicators
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
