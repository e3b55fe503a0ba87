"""Real Binance 1h candles (Jan-Sep 2024, 10 pairs, ../shared/fixtures/binance_2024): features for
all symbols at once, labels and walk-forward windows on them."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest

from ml.features import (
    FeatureConfig,
    build_features,
    make_labels,
    walk_forward_split,
    walk_forward_windows,
)
from ml.marketdata.frames import CANDLE_SCHEMA
from tests.support.fixtures import shared_fixtures_dir

PAIRS = ("BTC", "ETH", "SOL", "AVAX", "LINK", "NEAR", "ARB", "DOGE", "PEPE", "SHIB")


@pytest.fixture(scope="module")
def candles() -> pl.DataFrame:
    folder = shared_fixtures_dir() / "binance_2024"
    frames = [
        pl.read_ipc(folder / f"{base}_USDT-1h.feather").select(
            pl.lit("binance").alias("exchange"), pl.lit(f"{base}/USDT").alias("symbol"),
            pl.lit("1h").alias("timeframe"), pl.col("date").alias("ts"), "open", "high", "low", "close", "volume")
        for base in PAIRS
    ]
    return pl.concat(frames).select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()])


def test_features_for_all_symbols_at_once(candles: pl.DataFrame) -> None:
    config = FeatureConfig(shifts=(1,), correlated_symbols=("ETH/USDT",))
    features = build_features(candles, config=config)
    assert features.height == candles.height
    assert features.select("exchange", "symbol", "timeframe", "ts").equals(
        candles.select("exchange", "symbol", "timeframe", "ts").sort("exchange", "symbol", "timeframe", "ts"))
    segments = dict(features.select("symbol", "segment_id").unique().iter_rows())
    assert segments == {"BTC/USDT": 0, "ETH/USDT": 0, "SOL/USDT": 1, "AVAX/USDT": 1, "LINK/USDT": 1,
                        "NEAR/USDT": 1, "ARB/USDT": 1, "DOGE/USDT": 2, "PEPE/USDT": 2, "SHIB/USDT": 2}
    warm = features.filter(pl.col("ts") >= pl.col("ts").min() + timedelta(days=20))
    empty = {c: n for c, n in warm.null_count().row(0, named=True).items() if n > warm.height * 0.01}
    assert empty == {}, "features mostly null after a 20-day warm-up"
    btc = warm.filter(pl.col("symbol") == "BTC/USDT")
    assert btc.get_column("beta_btc_72").to_numpy() == pytest.approx(1.0)
    corr = warm.filter(pl.col("symbol") != "BTC/USDT").get_column("corr_btc_72")
    assert 0.3 < corr.median() < 0.95  # crypto moves with BTC, not in lockstep
    # one symbol's features do not depend on which other symbols are built with it
    pair = build_features(candles.filter(pl.col("symbol").is_in(["BTC/USDT", "ETH/USDT", "PEPE/USDT"])),
                          config=config)
    pepe = pl.col("symbol") == "PEPE/USDT"
    assert pair.filter(pepe).equals(features.filter(pepe))


def test_labels_and_walk_forward_on_real_data(candles: pl.DataFrame) -> None:
    labels = make_labels(candles, horizon=4)
    counts = labels.group_by("symbol").agg(pl.col("label").null_count().alias("open"),
                                           pl.col("label").n_unique().alias("classes"))
    assert counts.get_column("open").min() >= 4  # every symbol's last 4 horizons are open
    assert counts.get_column("classes").min() == 4  # down, flat, up and null
    start, end = labels.get_column("ts").min(), labels.get_column("ts").max() + timedelta(hours=1)
    windows = walk_forward_windows(start, end, train_length=timedelta(weeks=12),
                                   test_length=timedelta(weeks=4), mode="rolling")
    assert len(windows) == 5
    train, test = walk_forward_split(labels, windows, 2, embargo=timedelta(hours=24))
    assert not labels.filter(train).get_column("label_end_ts").max() > windows[2].test.start
    assert labels.filter(test).height > 0 and labels.filter(train & test).height == 0
