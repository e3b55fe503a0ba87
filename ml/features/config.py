"""Feature configuration: one frozen, content-hashed model (FreqAI-style expansion included)."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

Window = Annotated[int, Field(ge=2, le=100_000)]
Shift = Annotated[int, Field(ge=1, le=10_000)]


class FeatureConfig(BaseModel):
    """What :func:`ml.features.build.build_features` computes. Periods and windows are in candles
    of the frame's timeframe.

    Expansion in FreqAI's spirit: more ``return_periods`` / ``volatility_windows`` ("extra
    periods"), ``shifts`` (lagged copies of every feature, ``<name>_lag<k>``) and
    ``correlated_symbols`` (those symbols' candle features beside every row, ``<base>_<name>``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    return_periods: tuple[PositiveInt, ...] = (1, 3, 6, 12, 24)
    volatility_windows: tuple[Window, ...] = (24, 72)
    volume_window: Window = 24
    higher_timeframes: tuple[str, ...] = ("4h", "1d")
    higher_rsi_period: Window = 14
    reference_symbol: str = "BTC/USDT"
    beta_window: Window = 72
    open_interest_periods: tuple[PositiveInt, ...] = (1, 24)
    #: Derivative observations older than this (hours) at a candle's close are not used.
    derivatives_max_age_hours: PositiveInt = 9
    shifts: tuple[Shift, ...] = ()
    correlated_symbols: tuple[str, ...] = ()
    #: Indicator columns to join (None: every non-key column of the given indicator frame).
    indicator_columns: tuple[str, ...] | None = None

    @property
    def version(self) -> str:
        """Hash of the content: equal configs share it, any change alters it."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]
