"""The model dataset: one row per candle with its OHLCV, its features and its label.

What the ``features`` asset persists and every model asset reads, so training, checks and
predictions see the same rows. Features come from :func:`ml.features.build_features` with
:data:`MODEL_FEATURES` (scale-free indicators only: a price-unit indicator would not transfer
between symbols), labels from :func:`ml.features.make_labels`. The raw candle columns ride along
for the regime features and the no-look-ahead canary; they are never model inputs
(:data:`ml.models.training.NON_FEATURES`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import polars as pl

from ml.features import FeatureConfig, SegmentsConfig, build_features, make_labels
from ml.features.segments import SEGMENT_IDS
from ml.marketdata.frames import CANDLE_SCHEMA

KEY = ["exchange", "symbol", "timeframe", "ts"]
CANDLE_COLUMNS = ("open", "high", "low", "close", "volume")
LABEL_COLUMNS = ("forward_return", "threshold", "label", "label_end_ts")
#: Indicators (ml.indicators) used as features: bounded or ratios, comparable across symbols.
INDICATOR_FEATURES = ("rsi_14", "adx_14", "bb_position", "bb_width", "volume_sma_ratio")
MODEL_FEATURES = FeatureConfig(indicator_columns=INDICATOR_FEATURES)


def build_dataset(
    candles: pl.DataFrame,
    *,
    horizon: int,
    indicators: pl.DataFrame,
    derivatives: pl.DataFrame,
    segments: SegmentsConfig,
    liquidity_ranks: Mapping[str, int] | None = None,
    config: FeatureConfig = MODEL_FEATURES,
) -> pl.DataFrame:
    """Candles (one timeframe, any exchanges and symbols) with features and labels, sorted by the key.

    ``indicators`` and ``derivatives`` may be empty (their feature columns are then null, but
    present, so every dataset has the same columns). One row per candle.
    """
    ranks = dict(liquidity_ranks or {})
    features = build_features(candles, config=config, segments=segments, indicators=indicators,
                              derivatives=derivatives, liquidity_ranks=ranks)
    labels = make_labels(candles, horizon=horizon, segments=segments, liquidity_ranks=ranks)
    base = candles.select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()])
    return (base.join(features, on=KEY, how="inner")
            .join(labels.select(*KEY, *LABEL_COLUMNS), on=KEY, how="inner").sort(KEY))


def feature_builder(*, indicators: pl.DataFrame, derivatives: pl.DataFrame, segments: SegmentsConfig,
                    liquidity_ranks: Mapping[str, int] | None = None,
                    config: FeatureConfig = MODEL_FEATURES):  # type: ignore[no-untyped-def]
    """``build(candles) -> features`` exactly as :func:`build_dataset` builds them (for the canary)."""
    ranks = dict(liquidity_ranks or {})

    def build(candles: pl.DataFrame) -> pl.DataFrame:
        return build_features(candles, config=config, segments=segments, indicators=indicators,
                              derivatives=derivatives, liquidity_ranks=ranks)

    return build


def dataset_candles(dataset: pl.DataFrame) -> pl.DataFrame:
    """The candles of a dataset (CANDLE_SCHEMA)."""
    return dataset.select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()])


def segment_rows(dataset: pl.DataFrame, segment: str) -> pl.DataFrame:
    """Rows of the symbols in ``segment`` (by the dataset's ``segment_id``)."""
    if segment not in SEGMENT_IDS:
        raise ValueError(f"unknown segment {segment!r}; expected one of {sorted(SEGMENT_IDS)}")
    return dataset.filter(pl.col("segment_id") == SEGMENT_IDS[segment])


def last_days(dataset: pl.DataFrame, days: float) -> pl.DataFrame:
    """Rows whose ``ts`` is within ``days`` of the newest ``ts`` (inclusive of it)."""
    if dataset.is_empty():
        return dataset
    newest = dataset.get_column("ts").max()
    return dataset.filter(pl.col("ts") > newest - timedelta(days=days))


def null_share(dataset: pl.DataFrame) -> float:
    """Share of null cells among the feature columns (0 for an empty frame)."""
    columns = [c for c in dataset.columns if c not in (*KEY, *CANDLE_COLUMNS, *LABEL_COLUMNS, "segment_id")]
    cells = dataset.height * len(columns)
    if not cells:
        return 0.0
    return float(dataset.select(pl.sum_horizontal(pl.col(columns).null_count())).item()) / cells
