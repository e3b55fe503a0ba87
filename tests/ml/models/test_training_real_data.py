"""The training pipeline on real Binance 1h candles (BTC and ETH, the majors, Jan-Sep 2024): the
last 90 days train, calibrate and test; the figures are finite and the canary passes."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from ml.features.segments import SegmentsConfig
from ml.models.canary import no_look_ahead_canary
from ml.models.dataset import build_dataset, dataset_candles, feature_builder, last_days
from ml.models.regime_features import RegimeConfig
from ml.models.training import TrainingConfig, train_segment
from tests.support.fixtures import shared_fixtures_dir

SYMBOLS = ("BTC", "ETH")


def _candles() -> pl.DataFrame:
    folder = shared_fixtures_dir() / "binance_2024"
    frames = [pl.read_ipc(folder / f"{base}_USDT-1h.feather").rename({"date": "ts"}).with_columns(
        pl.lit("binance").alias("exchange"), pl.lit(f"{base}/USDT").alias("symbol"), pl.lit("1h").alias("timeframe"))
        for base in SYMBOLS]
    return pl.concat(frames).select("exchange", "symbol", "timeframe", pl.col("ts").dt.cast_time_unit("ms"),
                                    "open", "high", "low", "close", "volume")


def test_majors_on_real_candles() -> None:
    candles = _candles()
    segments = SegmentsConfig()
    dataset = last_days(build_dataset(candles, horizon=4, indicators=_no_indicators(), derivatives=_no_derivatives(),
                                      segments=segments), 90)
    params = segments.segments["majors"].xgboost.model_copy(update={"n_estimators": 60})
    trained = train_segment(dataset, dataset_candles(dataset), segment="majors", params=params,
                            config=TrainingConfig(regime=RegimeConfig(n_init=1)), seed=0)
    metrics = trained.metrics
    assert all(math.isfinite(v) for v in metrics.as_dict().values()), metrics
    assert 0.4 < metrics.brier_climatology < 0.8
    assert metrics.rows > 300 and trained.rows["fit"] > 2000
    np.testing.assert_allclose(sum(trained.class_frequencies), 1.0)
    build = feature_builder(indicators=_no_indicators(), derivatives=_no_derivatives(), segments=segments)
    window = dataset_candles(dataset)
    result = no_look_ahead_canary(trained, window, cut=trained.split.test_start, build=build, seed=1)
    assert result.passed, result
    print(f"real majors: test Brier raw {metrics.brier_raw:.4f}, Platt {metrics.brier_calibrated:.4f}, "
          f"climatology {metrics.brier_climatology:.4f}; ECE {metrics.ece_raw:.4f} -> {metrics.ece_calibrated:.4f}; "
          f"accuracy {metrics.accuracy_calibrated:.3f} on {metrics.rows} rows")


def _no_indicators() -> pl.DataFrame:
    from ml.indicators.params import IndicatorParams
    from ml.indicators.schema import indicator_columns

    return pl.DataFrame(schema=indicator_columns(IndicatorParams()))


def _no_derivatives() -> pl.DataFrame:
    from ml.marketdata.frames import DERIVATIVES_SCHEMA

    return pl.DataFrame(schema=DERIVATIVES_SCHEMA)
