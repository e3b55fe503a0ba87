"""Order blocks and fair value gaps against per-row loops, plus hand-built cases."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from ml.indicators import IndicatorParams, compute_indicators
from ml.marketdata.frames import CANDLE_SCHEMA
from tests.ml.indicators import naive
from tests.ml.indicators.support import START, arrays, column, sim_candles, symbols


def _candles(rows: list[tuple[float, float, float, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "exchange": "sim",
            "symbol": "X/USDT",
            "timeframe": "1h",
            "ts": [START + timedelta(hours=i) for i in range(len(rows))],
            "open": [float(r[0]) for r in rows],
            "high": [float(r[1]) for r in rows],
            "low": [float(r[2]) for r in rows],
            "close": [float(r[3]) for r in rows],
            "volume": 1.0,
        }
    ).select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()])


@pytest.mark.parametrize(("swing", "age"), [(5, 500), (2, 40), (3, 10)])
def test_order_blocks_equal_the_per_row_loop(swing: int, age: int) -> None:
    candles = sim_candles(("BTC", "ETH", "DOGE"), "1h", days=60)
    params = IndicatorParams(swing_length=swing, structure_max_age=age)
    ours = compute_indicators(candles, params=params)
    for symbol, rows in symbols(candles):
        d = arrays(rows)
        mine = ours.filter(pl.col("symbol") == symbol)
        for bullish, side in ((True, "bull"), (False, "bear")):
            tops, bottoms, touches = naive.order_blocks(
                d["open"], d["high"], d["low"], d["close"], swing, age, bullish=bullish
            )
            np.testing.assert_array_equal(column(mine, f"ob_{side}_top"), tops)
            np.testing.assert_array_equal(column(mine, f"ob_{side}_bottom"), bottoms)
            assert mine.get_column(f"ob_{side}_touch").to_list() == touches
            assert np.isfinite(tops).any()  # the data does contain blocks


def test_fair_value_gaps_equal_the_per_row_loop() -> None:
    candles = sim_candles(("BTC", "SOL"), "15m", days=10)
    ours = compute_indicators(candles)
    for symbol, rows in symbols(candles):
        d = arrays(rows)
        expected = naive.fair_value_gaps(d["high"], d["low"])
        mine = ours.filter(pl.col("symbol") == symbol)
        assert mine.get_column("fvg_bull").to_list() == expected["bull"]
        assert mine.get_column("fvg_bear").to_list() == expected["bear"]
        np.testing.assert_array_equal(column(mine, "fvg_top"), expected["top"])
        np.testing.assert_array_equal(column(mine, "fvg_bottom"), expected["bottom"])
        np.testing.assert_allclose(column(mine, "fvg_size_pct"), expected["size"], rtol=1e-12)
        assert any(expected["bull"][2:]) and any(expected["bear"][2:])


def test_a_bullish_order_block_by_hand() -> None:
    """Swing high 12 at bar 3 (k = 2) is confirmed at bar 5; bar 6 is the last down candle; bar 7
    closes above 12: a bullish block [9.5, 11] forms at 7, is revisited at 8, dies at 9."""
    rows = [
        (10, 10.5, 9.5, 10),  # 0
        (10, 11, 9.8, 10.8),  # 1
        (10.8, 11.5, 10.5, 11.2),  # 2
        (11.2, 12, 11, 11.5),  # 3 swing high 12
        (11.5, 11.6, 10.6, 10.8),  # 4
        (10.8, 11.2, 10.2, 10.5),  # 5 confirms the swing (k = 2)
        (10.5, 11, 9.5, 10),  # 6 last down candle: zone [9.5, 11]
        (10, 12.6, 10, 12.5),  # 7 close 12.5 > 12: break, block forms
        (12.5, 12.6, 10.9, 11.5),  # 8 low 10.9 <= 11: revisit
        (11.5, 11.6, 9, 9.2),  # 9 close 9.2 < 9.5: invalidated
    ]
    out = compute_indicators(_candles(rows), params=IndicatorParams(swing_length=2))
    top = out.get_column("ob_bull_top").to_list()
    bottom = out.get_column("ob_bull_bottom").to_list()
    assert top == [None] * 7 + [11.0, 11.0, None]
    assert bottom == [None] * 7 + [9.5, 9.5, None]
    assert out.get_column("ob_bull_touch").to_list() == [False] * 8 + [True, False]


def test_fair_value_gaps_by_hand() -> None:
    rows = [(10, 11, 9, 10.5), (10.5, 13, 10.4, 12.9), (13, 14, 12, 13.5), (13, 13.2, 8, 8.5), (8.5, 9, 7, 7.5)]
    out = compute_indicators(_candles(rows))
    assert out.get_column("fvg_bull").to_list() == [None, None, True, False, False]
    assert out.get_column("fvg_bear").to_list() == [None, None, False, False, True]
    assert out.get_column("fvg_top").to_list() == [None, None, 12.0, None, 12.0]
    assert out.get_column("fvg_bottom").to_list() == [None, None, 11.0, None, 9.0]


def test_bearish_gap_by_hand() -> None:
    rows = [(10, 11, 9.5, 10), (10, 10.2, 8, 8.2), (8.2, 9, 7, 7.5)]
    out = compute_indicators(_candles(rows))
    assert out.get_column("fvg_bear").to_list() == [None, None, True]
    assert out.get_column("fvg_top").to_list()[2] == 9.5
    assert out.get_column("fvg_bottom").to_list()[2] == 9.0
    assert out.get_column("fvg_size_pct").to_list()[2] == pytest.approx((9.5 - 9.0) / 9.0 * 100)
