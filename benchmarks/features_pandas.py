"""The reference for the features benchmark: :func:`ml.features.build.build_features`' columns
rebuilt with pandas, one symbol at a time, as a per-symbol feature script would.

Same definitions as the polars build (see ``ml/features/build.py``), for the configurations the
benchmark uses: candle features (log return, returns over ``return_periods``, volume ratio, bar
range, rolling volatilities), the last closed complete higher-timeframe candle's return and
Wilder RSI, the reference symbol's returns at the same candle with the rolling beta and
correlation to it, and ``segment_id``. Not covered: ``shifts``, ``correlated_symbols``,
derivatives and indicator joins (the benchmark builds none of them; a config asking for them is
refused). ``tests/benchmarks/test_features_pandas.py`` checks that both give the same columns and
values (within 1e-9) on small frames with gaps.

Windows count rows of a symbol, as in the polars build. Missing values are NaN here (null there).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from ml.features.config import FeatureConfig
    from ml.features.segments import SegmentsConfig


def build_features_pandas(candles: pd.DataFrame, config: FeatureConfig, segments: SegmentsConfig,
                          ) -> pd.DataFrame:
    """Features of ``candles`` (pandas, CANDLE_SCHEMA columns, ``ts`` tz-aware UTC, one timeframe),
    symbol by symbol; sorted by (exchange, symbol, timeframe, ts), one row per candle.

    The reference symbol's returns are computed once per exchange and joined into every symbol.
    Raises ``ValueError`` for a config using what this reference does not build.
    """
    from ml.features.segments import SEGMENT_IDS, base_asset
    from ml.marketdata.timeframes import timeframe_ms

    if config.shifts or config.correlated_symbols:
        raise ValueError("the pandas reference builds neither shifts nor correlated symbols")
    timeframes = candles["timeframe"].unique()
    if len(timeframes) != 1:
        raise ValueError(f"one timeframe per call, got {sorted(timeframes)}")
    step = timeframe_ms(str(timeframes[0]))
    ref = base_asset(config.reference_symbol).lower()
    segment_ids = {s: SEGMENT_IDS[name] for s, name in
                   segments.segments_of(sorted(candles["symbol"].unique())).items()}
    ordered = candles.sort_values(["exchange", "symbol", "timeframe", "ts"], kind="stable")
    references: dict[str, pd.DataFrame] = {}
    for exchange, rows in ordered[ordered["symbol"] == config.reference_symbol].groupby("exchange", sort=False):
        own = _candle_features(rows, config, step)
        references[str(exchange)] = own[["ts", "logret_1", *[f"ret_{p}" for p in config.return_periods]]].rename(
            columns=lambda c: c if c == "ts" else f"{ref}_{c}")
    parts = []
    for (exchange, symbol), rows in ordered.groupby(["exchange", "symbol"], sort=False):
        out = _candle_features(rows, config, step)
        for timeframe in config.higher_timeframes:
            out = _higher_timeframe(out, rows, timeframe, step, config.higher_rsi_period)
        out = _cross_asset(out, references.get(str(exchange)), config, ref)
        out["segment_id"] = np.int8(segment_ids[str(symbol)])
        parts.append(out.drop(columns="close_ms"))
    return pd.concat(parts, ignore_index=True)


def _epoch_ms(ts: pd.Series) -> np.ndarray:
    return ts.dt.as_unit("ms").astype("int64").to_numpy()


def _candle_features(rows: pd.DataFrame, config: FeatureConfig, step: int) -> pd.DataFrame:
    close, volume = rows["close"], rows["volume"]
    out = rows[["exchange", "symbol", "timeframe", "ts"]].reset_index(drop=True)
    out["close_ms"] = _epoch_ms(rows["ts"]) + step
    logret = np.log(close).diff()
    out["logret_1"] = logret.to_numpy()
    for p in config.return_periods:
        out[f"ret_{p}"] = (close / close.shift(p) - 1).to_numpy()
    mean_volume = volume.rolling(config.volume_window).mean()
    out[f"volume_ratio_{config.volume_window}"] = (volume / mean_volume).where(mean_volume > 0).to_numpy()
    out["bar_range"] = ((rows["high"] - rows["low"]) / close).to_numpy()
    for w in config.volatility_windows:
        out[f"volatility_{w}"] = logret.rolling(w).std().to_numpy()
    return out


def higher_candles_pandas(rows: pd.DataFrame, timeframe: str, step: int, rsi_period: int) -> pd.DataFrame:
    """One symbol's complete ``timeframe`` buckets: ``available_ms`` (bucket close), ``ret``, ``rsi``."""
    from ml.marketdata.timeframes import timeframe_ms

    length = timeframe_ms(timeframe)
    ms = _epoch_ms(rows["ts"])
    frame = pd.DataFrame({"bucket": ms - ms % length, "close": rows["close"].to_numpy()})
    buckets = frame.groupby("bucket", sort=True).agg(close=("close", "last"), n=("close", "size"))
    buckets = buckets[buckets["n"] == length // step].reset_index()
    change = buckets["close"].diff()
    alpha = 1.0 / rsi_period
    gain = change.clip(lower=0).ewm(alpha=alpha, adjust=False, min_periods=rsi_period).mean()
    loss = (-change).clip(lower=0).ewm(alpha=alpha, adjust=False, min_periods=rsi_period).mean()
    consecutive = buckets["bucket"].diff() == length
    return pd.DataFrame({
        "available_ms": buckets["bucket"] + length,
        "ret": (buckets["close"] / buckets["close"].shift(1) - 1).where(consecutive),
        "rsi": (100 * gain / (gain + loss)).where(gain + loss > 0),
    })


def _higher_timeframe(out: pd.DataFrame, rows: pd.DataFrame, timeframe: str, step: int, rsi_period: int,
                      ) -> pd.DataFrame:
    higher = higher_candles_pandas(rows, timeframe, step, rsi_period).rename(
        columns={"ret": f"htf_{timeframe}_ret", "rsi": f"htf_{timeframe}_rsi_{rsi_period}"})
    joined = pd.merge_asof(out, higher, left_on="close_ms", right_on="available_ms", direction="backward")
    return joined.drop(columns="available_ms")


def _cross_asset(out: pd.DataFrame, reference: pd.DataFrame | None, config: FeatureConfig, ref: str,
                 ) -> pd.DataFrame:
    names = [f"{ref}_logret_1", *[f"{ref}_ret_{p}" for p in config.return_periods]]
    if reference is None:
        reference = pd.DataFrame({"ts": pd.Series([], dtype=out["ts"].dtype), **{c: [] for c in names}})
    out = out.merge(reference, on="ts", how="left")
    both = out["logret_1"].notna() & out[f"{ref}_logret_1"].notna()
    x, y = out["logret_1"].where(both), out[f"{ref}_logret_1"].where(both)
    w = config.beta_window

    def mean(values: pd.Series) -> pd.Series:
        return values.rolling(w).mean()

    cov = mean(x * y) - mean(x) * mean(y)
    var_x = mean(x * x) - mean(x) ** 2
    var_y = mean(y * y) - mean(y) ** 2
    out[f"beta_{ref}_{w}"] = (cov / var_y).where(var_y > 0)
    with np.errstate(invalid="ignore"):  # negative products are masked out just below
        corr = (cov / np.sqrt(var_x * var_y)).clip(-1.0, 1.0)
    out[f"corr_{ref}_{w}"] = corr.where((var_x > 0) & (var_y > 0))
    return out
