"""Labels: forward returns over a horizon, classified by each symbol's segment threshold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from ml.features import LABEL_DOWN, LABEL_FLAT, LABEL_UP, make_labels
from ml.marketdata.frames import CANDLE_SCHEMA

START = datetime(2024, 1, 1, tzinfo=UTC)


def _candles(symbol: str, closes: list[float], drop: tuple[int, ...] = ()) -> pl.DataFrame:
    hours = [h for h in range(len(closes)) if h not in drop]
    return pl.DataFrame({
        "exchange": "sim", "symbol": symbol, "timeframe": "1h",
        "ts": [START + timedelta(hours=h) for h in hours], "open": 1.0, "high": 1.0, "low": 1.0,
        "close": [closes[h] for h in hours], "volume": 1.0,
    }).select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()])


@pytest.mark.parametrize(("symbol", "closes", "expected"), [
    # majors, 0.5 %: +0.6 % up, -0.6 % down, +0.4 % flat
    ("BTC/USDT", [100.0, 0, 100.6, 0, 100.0, 0, 99.4, 0, 99.8], [LABEL_UP, LABEL_DOWN, LABEL_DOWN, LABEL_FLAT]),
    # alts, 0.8 %: the same +0.6 % is flat
    ("SOL/USDT", [100.0, 0, 100.6, 0, 101.5, 0, 100.0], [LABEL_FLAT, LABEL_UP, LABEL_DOWN]),
    # memes, 1.5 %
    ("PEPE/USDT", [100.0, 0, 101.4, 0, 103.0], [LABEL_FLAT, LABEL_UP]),
])
def test_labels_use_the_segment_threshold(symbol: str, closes: list[float], expected: list[int]) -> None:
    closes = [c if c else 50.0 for c in closes]  # odd hours are filler (their labels are not checked)
    labels = make_labels(_candles(symbol, closes), horizon=2)
    even = labels.filter(pl.col("ts").dt.hour() % 2 == 0)
    assert even.get_column("label").to_list()[: len(expected)] == expected
    assert even.get_column("label").to_list()[len(expected):] == [None]  # the last even row's horizon is open


def test_open_horizons_and_gaps_have_no_label_and_the_end_time_is_the_exit_close() -> None:
    labels = make_labels(_candles("ETH/USDT", [100.0, 101.0, 102.0, 103.0, 104.0, 105.0], drop=(3,)), horizon=2)
    assert labels.get_column("forward_return").to_list() == pytest.approx([0.02, None, 104 / 102 - 1, None, None])
    assert labels.get_column("label").to_list() == [LABEL_UP, None, LABEL_UP, None, None]
    # hour 1's exit (hour 3) is missing; hours 4, 5 have no candle 2 hours later
    ends = labels.get_column("label_end_ts").to_list()
    assert ends == [START + timedelta(hours=h + 3) for h in (0, 1, 2, 4, 5)]


def test_unlisted_symbols_follow_the_liquidity_rule() -> None:
    candles = pl.concat([_candles("XYZ/USDT", [100.0, 101.0]), _candles("ABC/USDT", [100.0, 101.0])])
    labels = make_labels(candles, horizon=1, liquidity_ranks={"XYZ/USDT": 10, "ABC/USDT": 400})
    thresholds = dict(labels.select("symbol", "threshold").unique().iter_rows())
    assert thresholds == {"XYZ/USDT": 0.008, "ABC/USDT": 0.015}
    assert labels.drop_nulls("label").sort("symbol").get_column("label").to_list() == [LABEL_FLAT, LABEL_UP]


def test_a_horizon_below_one_is_rejected() -> None:
    with pytest.raises(ValueError, match="horizon"):
        make_labels(_candles("BTC/USDT", [1.0, 2.0]), horizon=0)
