"""Configuration and causal features of the HMM regime detector.

Every feature at row ``t`` is a function of candles ``0..t`` only: trailing windows, no centring,
no backward fill. Rows before the longest window is full carry ``NaN`` (the detector does not
observe them) rather than a guess.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, PositiveInt

#: The four regimes, in the fixed order used by every output (probabilities, transition matrix).
REGIMES: tuple[str, ...] = ("Bull trend", "Bear trend", "Sideways", "High volatility")

#: Feature columns, in the order of the HMM's observation vector.
FEATURES: tuple[str, ...] = ("log_return", "volatility", "volume_ratio", "rsi")

#: Floor of the rolling volatility before its log (per candle; far below one tick of any market).
MIN_VOLATILITY = 1e-6


class SizeMultipliers(BaseModel):
    """Fraction of the normal position size allowed in each regime (for long positions).

    Defaults: full size in a bull trend, half in a sideways market where signals are mostly noise,
    a quarter in a bear trend (longs fight the drift) and in high volatility (the same notional
    carries several times the risk).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    bull_trend: float = Field(1.0, ge=0.0, le=1.0)
    bear_trend: float = Field(0.25, ge=0.0, le=1.0)
    sideways: float = Field(0.5, ge=0.0, le=1.0)
    high_volatility: float = Field(0.25, ge=0.0, le=1.0)

    def in_regime_order(self) -> tuple[float, ...]:
        """The multipliers in :data:`REGIMES` order."""
        return (self.bull_trend, self.bear_trend, self.sideways, self.high_volatility)


class RegimeConfig(BaseModel):
    """Parameters of the regime detector (frozen; its content identifies a model version).

    ``covariance_type`` is ``"full"`` by default: the trend features (trailing return and RSI) are
    strongly correlated within a state, and a diagonal model misreads that correlation as extra
    states (on the planted-regime market it confuses trends with high volatility: ~75 % accuracy
    against ~94 % with full covariances). ``"diag"`` is supported by the same inference code.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    return_window: PositiveInt = Field(12, description="candles in the trailing mean log return")
    volatility_window: PositiveInt = Field(24, ge=2, description="candles in the rolling std of log returns")
    volume_window: PositiveInt = Field(24, description="candles in the trailing mean volume")
    rsi_period: PositiveInt = Field(14, description="Wilder RSI period, candles")
    covariance_type: Literal["diag", "full"] = "full"
    n_iter: PositiveInt = Field(50, description="EM iterations per restart")
    n_init: PositiveInt = Field(4, description="EM restarts (seeds derived from the fit's seed); best likelihood wins")
    tol: float = Field(1e-3, gt=0.0, description="EM convergence threshold on the log-likelihood")
    min_train_rows: PositiveInt = Field(200, description="fewer complete feature rows than this is an error")
    size_multipliers: SizeMultipliers = SizeMultipliers()

    @property
    def warmup(self) -> int:
        """Leading rows whose features are undefined (windows not yet full)."""
        return max(self.return_window, self.volatility_window, self.volume_window, self.rsi_period)


def _trailing_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of ``values[t-window+1 .. t]``; NaN until ``window`` values exist or if one is NaN."""
    out = np.full(values.shape, np.nan)
    if values.size < window:
        return out
    csum = np.concatenate([[0.0], np.cumsum(values)])
    out[window - 1 :] = (csum[window:] - csum[:-window]) / window
    return out


def _trailing_std(values: np.ndarray, window: int) -> np.ndarray:
    """Sample std (ddof=1) of ``values[t-window+1 .. t]``, computed per window (no cumsum drift)."""
    out = np.full(values.shape, np.nan)
    if values.size < window:
        return out
    windows = np.lib.stride_tricks.sliding_window_view(values, window)
    out[window - 1 :] = windows.std(axis=1, ddof=1)
    return out


def wilder_rsi(close: np.ndarray, period: int) -> np.ndarray:
    """Wilder's RSI in [0, 100] of ``close``; NaN for the first ``period`` rows.

    Seeded with the simple mean of the first ``period`` gains/losses, then Wilder's recursive
    smoothing ``avg_t = avg_{t-1} + (x_t - avg_{t-1}) / period``: row ``t`` reads closes ``0..t``.
    A window with no losses gives 100, with no moves at all 50.
    """
    close = np.asarray(close, dtype=np.float64)
    out = np.full(close.shape, np.nan)
    if close.size <= period:
        return out
    change = np.diff(close)
    gain = np.clip(change, 0.0, None)
    loss = np.clip(-change, 0.0, None)
    avg_gain = gain[:period].mean()
    avg_loss = loss[:period].mean()
    for t in range(period, close.size):
        if t > period:
            avg_gain += (gain[t - 1] - avg_gain) / period
            avg_loss += (loss[t - 1] - avg_loss) / period
        total = avg_gain + avg_loss
        out[t] = 50.0 if total == 0.0 else 100.0 * avg_gain / total
    return out


def regime_feature_matrix(close: np.ndarray, volume: np.ndarray, config: RegimeConfig) -> np.ndarray:
    """Observation matrix ``(n, 4)`` in :data:`FEATURES` order; NaN rows during warm-up.

    Parameters
    ----------
    close, volume
        Closes (quote currency, > 0) and base volumes (>= 0) of consecutive closed candles, oldest first.
    config
        Window lengths.

    Returns
    -------
    numpy.ndarray
        ``log_return``: ln(close_t / close_{t-w}) / w with ``w = return_window``, the trailing mean
        log return per candle (a single candle's return is too noisy to tell a trend from chance,
        and within high volatility it makes EM split that state by the sign of the last move).
        ``volatility``: ln of the sample std of the last ``volatility_window`` one-candle log
        returns, floored at :data:`MIN_VOLATILITY` so a window without a move stays finite (the log makes 0.4 %, 0.8 % and 3 % evenly spaced clusters rather than one tail).
        ``volume_ratio``: ln(1 + v_t / mean(v over the last ``volume_window`` candles)) (finite for
        zero volume; ln 2 for an average candle, 0 when the whole window traded nothing).
        ``rsi``: (Wilder RSI - 50) / 50 in [-1, 1].
        Row ``t`` depends on candles ``0..t`` only.

    Raises
    ------
    ValueError
        If the arrays differ in length, a close is not a positive finite number or a volume is
        negative or not finite.
    """
    close = np.asarray(close, dtype=np.float64)
    volume = np.asarray(volume, dtype=np.float64)
    if close.shape != volume.shape or close.ndim != 1:
        raise ValueError(f"close and volume must be 1-d arrays of one length, got {close.shape} and {volume.shape}")
    bad_close = np.flatnonzero(~np.isfinite(close) | (close <= 0))
    if bad_close.size:
        raise ValueError(f"close must be positive and finite; row {bad_close[0]} has {close[bad_close[0]]!r}")
    bad_volume = np.flatnonzero(~np.isfinite(volume) | (volume < 0))
    if bad_volume.size:
        raise ValueError(f"volume must be >= 0 and finite; row {bad_volume[0]} has {volume[bad_volume[0]]!r}")

    log_return = np.full(close.shape, np.nan)
    log_return[1:] = np.diff(np.log(close))
    volatility = np.full(close.shape, np.nan)
    volatility[1:] = _trailing_std(log_return[1:], config.volatility_window)
    log_volatility = np.log(np.maximum(volatility, MIN_VOLATILITY))  # NaN (warm-up) stays NaN
    mean_volume = _trailing_mean(volume, config.volume_window)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(mean_volume > 0, volume / mean_volume, 0.0)
    volume_ratio = np.where(np.isnan(mean_volume), np.nan, np.log1p(ratio))
    rsi = (wilder_rsi(close, config.rsi_period) - 50.0) / 50.0
    trend = np.full(close.shape, np.nan)
    w = config.return_window
    if close.size > w:
        trend[w:] = np.log(close[w:] / close[:-w]) / w
    return np.column_stack([trend, log_volatility, volume_ratio, rsi])


def candles_feature_matrix(candles: pl.DataFrame, config: RegimeConfig) -> tuple[pl.Series, np.ndarray]:
    """``(ts, features)`` of one market's candles (columns ``ts``, ``close``, ``volume``).

    Raises
    ------
    ValueError
        If a column is missing, timestamps are not strictly increasing (several markets mixed, or
        duplicates), or a value is invalid (see :func:`regime_feature_matrix`).
    """
    missing = {"ts", "close", "volume"} - set(candles.columns)
    if missing:
        raise ValueError(f"candles lack column(s) {sorted(missing)}")
    ts = candles.get_column("ts")
    if ts.null_count() or not ts.is_sorted() or ts.n_unique() != ts.len():
        raise ValueError("candles must hold one market with strictly increasing ts (sort it, one symbol per call)")
    features = regime_feature_matrix(
        candles.get_column("close").to_numpy(), candles.get_column("volume").to_numpy(), config
    )
    return ts, features
