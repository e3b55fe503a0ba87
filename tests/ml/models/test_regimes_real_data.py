"""Smoke test of the regime detector on real Binance BTC/USDT 1h candles (Jan-Sep 2024)."""

from __future__ import annotations

import numpy as np
import polars as pl

from ml.models.regime_features import REGIMES, RegimeConfig
from ml.models.regimes import PROBABILITY_COLUMNS, fit_regime_model, infer_regimes
from tests.support.fixtures import shared_fixtures_dir

TRAIN = 4000


def test_btc_1h_regimes_are_plausible() -> None:
    path = shared_fixtures_dir() / "binance_2024" / "BTC_USDT-1h.feather"
    candles = pl.read_ipc(path).rename({"date": "ts"}).sort("ts")
    config = RegimeConfig(n_iter=30)
    model = fit_regime_model(candles.head(TRAIN), config, seed=0)
    result = infer_regimes(model, candles)

    assert result.height == candles.height
    body = result.slice(config.warmup)
    assert body.null_count().sum_horizontal().item() == 0
    np.testing.assert_allclose(body.select(PROBABILITY_COLUMNS).sum_horizontal().to_numpy(), 1.0)
    shares = body.get_column("regime").value_counts(normalize=True)
    assert set(shares.get_column("regime")) == set(REGIMES), shares
    # Realised one-candle moves (not the features the labels were read from) per named regime.
    realised = (
        pl.DataFrame({"regime": body["regime"], "r": np.diff(np.log(candles["close"].to_numpy()))[config.warmup - 1 :]})
        .group_by("regime")
        .agg(std=pl.col("r").std(), mean=pl.col("r").mean())
    )
    std = dict(zip(realised["regime"], realised["std"], strict=True))
    mean = dict(zip(realised["regime"], realised["mean"], strict=True))
    assert min(std, key=std.__getitem__) == "Sideways", realised
    assert std["High volatility"] > 1.5 * std["Sideways"], realised
    assert mean["Bear trend"] < 0 < mean["Bull trend"], realised
    assert (np.diag(model.transmat) > 0.5).all(), model.transition_frame()
