"""Regime features of a segment's series: the HMM's forward-filtered probabilities and regime id.

Every series (exchange, symbol, timeframe) is filtered from its own candles, so row ``t`` reads
candles up to ``t`` only (:func:`ml.models.regimes.infer_regimes`); they are causal features like
the rest. The model itself is fitted on one *anchor* series (:func:`regime_anchor`).
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from ml.models.regime_features import REGIMES
from ml.models.regimes import PROBABILITY_COLUMNS, RegimeModel, infer_regimes

KEY = ["exchange", "symbol", "timeframe", "ts"]
SERIES = ["exchange", "symbol"]
#: The columns :func:`with_regime_features` adds.
REGIME_FEATURES: tuple[str, ...] = (*PROBABILITY_COLUMNS, "regime_id")


def regime_anchor(candles: pl.DataFrame, before: datetime) -> tuple[str, str]:
    """The (exchange, symbol) with the most candles before ``before``, ties to the first in order."""
    counts = (candles.filter(pl.col("ts") < before).group_by(SERIES).len()
              .sort(["len", *SERIES], descending=[True, False, False]))
    if counts.is_empty():
        raise ValueError(f"no candles before {before} to fit the regime model on")
    exchange, symbol, _ = counts.row(0)
    return str(exchange), str(symbol)


def regime_feature_frame(model: RegimeModel, candles: pl.DataFrame) -> pl.DataFrame:
    """Key + forward-filtered ``p_*`` and ``regime_id`` (Float64, null in warm-up) of every candle,
    each series from its own candles only (row ``t`` reads candles up to ``t``)."""
    frames = []
    for (exchange, symbol, timeframe), series in candles.sort(KEY).group_by(
            ["exchange", "symbol", "timeframe"], maintain_order=True):
        inferred = infer_regimes(model, series.select("ts", "close", "volume"))
        regime_id = inferred.get_column("regime").replace_strict(
            {name: float(i) for i, name in enumerate(REGIMES)}, default=None, return_dtype=pl.Float64)
        frames.append(inferred.select(
            pl.lit(exchange).alias("exchange"), pl.lit(symbol).alias("symbol"), pl.lit(timeframe).alias("timeframe"),
            pl.col("ts").cast(candles.schema["ts"]), *PROBABILITY_COLUMNS,
        ).with_columns(regime_id.alias("regime_id")))
    return pl.concat(frames)


def with_regime_features(frame: pl.DataFrame, candles: pl.DataFrame, model: RegimeModel | None) -> pl.DataFrame:
    """``frame`` with the regime features of :func:`regime_feature_frame` joined on the key."""
    if model is None:
        return frame
    regimes = regime_feature_frame(model, candles.filter(pl.col("symbol").is_in(frame.get_column("symbol").unique().to_list())))
    return frame.drop([c for c in REGIME_FEATURES if c in frame.columns]).join(
        regimes.with_columns(pl.col(c).cast(frame.schema[c]) for c in ("exchange", "symbol", "timeframe", "ts")),
        on=KEY, how="left")
