"""Labels: the forward return over a horizon, classified down / flat / up by the segment's threshold.

A row's label uses its own close (the entry, at ``ts + step``) and the close of the candle opening
``horizon`` candles later (the exit, at ``label_end_ts = ts + (horizon + 1) * step``). The exit
candle is looked up by time, not by row position: when it is missing (a gap, or not closed yet at
the end of the data) the label is null, so the last ``horizon`` rows of every symbol have none.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from ml.features.segments import SegmentsConfig
from ml.marketdata.frames import CANDLE_KEY, TS
from ml.marketdata.timeframes import timeframe_ms

#: Class codes (XGBoost wants 0..k-1).
LABEL_DOWN, LABEL_FLAT, LABEL_UP = 0, 1, 2
LABEL_NAMES: dict[int, str] = {LABEL_DOWN: "down", LABEL_FLAT: "flat", LABEL_UP: "up"}

DEFAULT_SEGMENTS = SegmentsConfig()

LABEL_SCHEMA: dict[str, pl.DataType] = {
    "exchange": pl.String(), "symbol": pl.String(), "timeframe": pl.String(), "ts": TS,
    "forward_return": pl.Float64(), "threshold": pl.Float64(), "label": pl.Int8(), "label_end_ts": TS,
}


def make_labels(
    candles: pl.DataFrame,
    *,
    horizon: int,
    segments: SegmentsConfig = DEFAULT_SEGMENTS,
    liquidity_ranks: Mapping[str, int] | None = None,
) -> pl.DataFrame:
    """Forward returns and class labels of every candle (any exchanges, symbols and timeframes).

    Parameters
    ----------
    candles
        CANDLE_SCHEMA rows, unique on the key.
    horizon
        Candles between entry and exit (>= 1).
    segments, liquidity_ranks
        Give each symbol its segment's movement threshold (fraction).

    Returns
    -------
    pl.DataFrame
        LABEL_SCHEMA, sorted by the key, one row per candle: ``forward_return`` = exit close /
        entry close - 1; ``label`` = LABEL_UP if it exceeds ``threshold``, LABEL_DOWN if below
        ``-threshold``, LABEL_FLAT otherwise; both null when the exit candle is absent.
        ``label_end_ts`` (UTC) is when the label becomes known: the exit candle's close.
    """
    if horizon < 1:
        raise ValueError(f"horizon must be at least one candle, got {horizon}")
    key = list(CANDLE_KEY)
    if candles.select(key).is_duplicated().any():
        raise ValueError("candles hold duplicate keys")
    steps = {tf: timeframe_ms(tf) for tf in candles.get_column("timeframe").unique().to_list()}
    step = pl.col("timeframe").replace_strict(steps, return_dtype=pl.Int64)
    symbols = candles.get_column("symbol").unique().to_list()
    thresholds = {s: segments.threshold_of(s, (liquidity_ranks or {}).get(s)) for s in symbols}
    base = candles.select(
        *[pl.col(c).cast(LABEL_SCHEMA[c]) for c in key], pl.col("close").cast(pl.Float64),
    ).with_columns(
        (pl.col("ts").dt.epoch("ms") + horizon * step).alias("_exit_ms"),
        (pl.col("ts").dt.epoch("ms") + (horizon + 1) * step).cast(TS).alias("label_end_ts"),
    )
    exits = base.select("exchange", "symbol", "timeframe",
                        pl.col("ts").dt.epoch("ms").alias("_exit_ms"), pl.col("close").alias("_exit_close"))
    joined = base.join(exits, on=["exchange", "symbol", "timeframe", "_exit_ms"], how="left")
    forward = pl.col("_exit_close") / pl.col("close") - 1
    threshold = pl.col("symbol").replace_strict(thresholds, return_dtype=pl.Float64)
    label = (
        pl.when(forward.is_null()).then(None)
        .when(forward > threshold).then(LABEL_UP)
        .when(forward < -threshold).then(LABEL_DOWN)
        .otherwise(LABEL_FLAT)
    )
    return joined.select(
        *key, forward.alias("forward_return"), threshold.alias("threshold"),
        label.cast(pl.Int8).alias("label"), "label_end_ts",
    ).sort(key)
