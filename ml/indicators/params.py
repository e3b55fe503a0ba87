"""Parameters of the indicator suite: one frozen, content-hashed model.

The defaults are the periods of the seed suites (EMA 9/10/21/36/200, SMA 50/200, EHMA 180,
MACD 12/26/9, ADX 14, Supertrend 7/3, RSI 14/7, Bollinger 20/2, ATR 14, volume SMA 20, TD
Sequential against the close 4 bars earlier). :attr:`IndicatorParams.version` identifies a
parameter set (plus the revision of the definitions in this package) in the warehouse.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator

#: Bumped whenever a definition in ``ml.indicators`` changes what a column means or holds, so
#: that rows computed by an older definition never share a version with newer ones.
DEFINITIONS_REVISION = 1

#: A window length in bars. TA-Lib rejects windows below 2.
Period = Annotated[int, Field(ge=2, le=100_000)]


class IndicatorParams(BaseModel):
    """Periods and options of every indicator column (frozen; hashable; see :attr:`version`).

    Column names follow the periods (``ema_9``, ``rsi_14``, ...), so
    :func:`ml.indicators.engine.indicator_columns` gives the schema of any parameter set.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # trend
    ema_periods: tuple[Period, ...] = (9, 10, 21, 36, 200)
    sma_periods: tuple[Period, ...] = (50, 200)
    ehma_period: Annotated[int, Field(ge=4, le=100_000)] = 180
    macd_fast: Period = 12
    macd_slow: Period = 26
    macd_signal: Period = 9
    adx_period: Period = 14
    supertrend_period: Period = 7
    supertrend_multiplier: PositiveFloat = 3.0
    # momentum
    rsi_periods: tuple[Period, ...] = (14, 7)
    # volatility
    bb_period: Period = 20
    bb_stddev: PositiveFloat = 2.0
    atr_period: Period = 14
    # volume
    volume_sma_period: Period = 20
    vwap_anchor: Literal["auto", "day", "week", "month"] = "auto"
    # exhaustion
    td_lookback: PositiveInt = 4
    td_max_count: PositiveInt = 13
    # structure
    swing_length: PositiveInt = 5
    structure_max_age: PositiveInt = 500
    # derived
    trend_ema: Period = 200
    ema_crosses: tuple[tuple[Period, Period], ...] = ((9, 21), (10, 36))
    divergence_rsi: Period = 14
    divergence_bars: PositiveInt = 14

    @model_validator(mode="after")
    def _consistent(self) -> IndicatorParams:
        for name in ("ema_periods", "sma_periods", "rsi_periods"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise ValueError(f"{name} repeats a period: {values}")
        if self.macd_fast >= self.macd_slow:
            raise ValueError(f"macd_fast ({self.macd_fast}) must be below macd_slow ({self.macd_slow})")
        if self.trend_ema not in self.ema_periods:
            raise ValueError(f"trend_ema {self.trend_ema} is not one of ema_periods {self.ema_periods}")
        for fast, slow in self.ema_crosses:
            if fast >= slow or fast not in self.ema_periods or slow not in self.ema_periods:
                raise ValueError(
                    f"ema_crosses pair ({fast}, {slow}) needs fast < slow, both in ema_periods"
                )
        if self.divergence_rsi not in self.rsi_periods:
            raise ValueError(
                f"divergence_rsi {self.divergence_rsi} is not one of rsi_periods {self.rsi_periods}"
            )
        return self

    @property
    def ehma_half(self) -> int:
        """Period of the fast EMA inside EHMA: ``ehma_period // 2`` (90 for 180)."""
        return self.ehma_period // 2

    @property
    def ehma_root(self) -> int:
        """Period of the outer EMA of EHMA: ``round(sqrt(ehma_period))`` (13 for 180)."""
        return max(2, round(math.sqrt(self.ehma_period)))

    @property
    def version(self) -> str:
        """Stable 16-hex-digit hash of the parameters and :data:`DEFINITIONS_REVISION`.

        Equal parameter sets give equal versions in every process and on every machine (the
        hash is over canonical JSON, not Python's randomised ``hash``).
        """
        payload = {"revision": DEFINITIONS_REVISION, "params": self.model_dump(mode="json")}
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]
