"""The compiled BOS pass reads each market as one run of ts-ordered candles whatever the frame's
row order, and its cheap validity checks refuse what the row-by-row checks refuse, naming the same
row."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import polars as pl
import pytest

from ml.strategies.bos import BosConfig, detect_bos
from tests.ml.strategies.test_bos import CLEAN_UP, QUIET, T0, frame, random_candles

BOTH = BosConfig(event_filter_type="BOTH")


def test_a_market_split_into_two_runs_of_rows_is_read_as_one_market() -> None:
    btc = frame(CLEAN_UP)  # swing at row 3, confirmed at row 6, broken at row 7
    eth = frame([QUIET] * 9, symbol="ETH/USDT")
    [expected] = detect_bos(btc)
    split = pl.concat([btc.slice(0, 6), eth, btc.slice(6)])  # BTC's swing and its break in two runs
    assert detect_bos(split) == [expected]
    descending = btc.reverse()
    assert detect_bos(descending) == [expected]


@pytest.mark.parametrize("reorder", [
    lambda f: f.sample(fraction=1.0, shuffle=True, seed=5),
    lambda f: f.sort("symbol", "ts", descending=[True, False]),
    lambda f: f.sort("ts", "symbol"),
    lambda f: f.reverse(),
], ids=["shuffled", "markets-reversed", "interleaved-by-time", "reversed"])
def test_row_order_changes_no_signal(reorder: Callable[[pl.DataFrame], pl.DataFrame]) -> None:
    candles = random_candles(4, symbols=5).sort("exchange", "symbol", "ts")
    ordered = detect_bos(candles, BOTH)
    assert len(ordered) >= 5
    assert detect_bos(reorder(candles), BOTH) == ordered


def _set(column: str, row: int, value: float | None) -> Callable[[pl.DataFrame], pl.DataFrame]:
    def mutate(f: pl.DataFrame) -> pl.DataFrame:
        index = pl.int_range(pl.len())
        return f.with_columns(pl.when(index == row).then(pl.lit(value, pl.Float64)).otherwise(column).alias(column))
    return mutate


@pytest.mark.parametrize(("mutate", "message"), [
    (_set("open", 12, float("nan")), r"ETH/USDT row 12 .*prices must be positive"),
    (_set("high", 3, -1.0), r"BTC/USDT row 3 .*prices must be positive"),
    (_set("volume", 14, -0.5), r"ETH/USDT row 14 .*volume non-negative"),
    (_set("volume", 10, float("nan")), r"ETH/USDT row 10 .*volume non-negative"),
    (_set("low", 17, None), r"ETH/USDT row 17 .*prices must be positive"),
    (lambda f: pl.concat([f.slice(0, 5), f.slice(4, 1), f.slice(5)]),
     r"binance BTC/USDT row 4: duplicate candle at 2024-03-01 12:04"),
])
def test_bad_candles_in_an_ordered_frame_are_refused_naming_market_and_row(
        mutate: Callable[[pl.DataFrame], pl.DataFrame], message: str) -> None:
    candles = pl.concat([frame(CLEAN_UP), frame(CLEAN_UP, symbol="ETH/USDT")])  # ETH: rows 9-17
    assert len(detect_bos(candles)) == 2
    with pytest.raises(ValueError, match=message):
        detect_bos(mutate(candles))


def test_one_candle_and_markets_shorter_than_a_swing_give_no_signal() -> None:
    assert detect_bos(frame(CLEAN_UP[:1])) == []
    short = pl.concat([frame(CLEAN_UP[:6], symbol=f"S{i}/USDT", start=T0 + timedelta(minutes=i)) for i in range(4)])
    assert detect_bos(short, BOTH) == []
