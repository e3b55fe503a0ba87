"""Data-quality rules for indicator frames: values finite where defined, a row for every candle.

Like :mod:`ml.marketdata.quality`, each rule returns the offending rows (empty when the data is
clean), so that a check can both pass/fail and show exactly what is wrong.
"""

from __future__ import annotations

import polars as pl

from ml.indicators.schema import KEY_COLUMNS


def non_finite_values(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows holding NaN or ±inf in a float column, with the offending columns (``columns``, comma
    separated). Null is not offending: it means "not defined yet" (warm-up, no order block ...)."""
    floats = [name for name, dtype in frame.schema.items() if dtype.is_float()]
    key = [c for c in KEY_COLUMNS if c in frame.columns]
    if not floats:
        return frame.select(key).clear().with_columns(pl.lit(None, pl.String).alias("columns"))
    offending = [pl.when(pl.col(c).is_not_null() & ~pl.col(c).is_finite()).then(pl.lit(c)) for c in floats]
    return (frame.select(*key, pl.concat_str(offending, separator=",", ignore_nulls=True).alias("columns"))
            .filter(pl.col("columns") != ""))


def missing_rows(candles: pl.DataFrame, indicators: pl.DataFrame) -> pl.DataFrame:
    """Keys of the candles that have no indicator row."""
    key = list(KEY_COLUMNS)
    return candles.select(key).join(indicators.select(key), on=key, how="anti").sort(key)
