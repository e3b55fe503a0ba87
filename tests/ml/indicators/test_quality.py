"""Indicator quality rules: NaN and ±inf offend, null does not; a candle without a row is missing."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from ml.indicators.quality import missing_rows, non_finite_values
from ml.marketdata.frames import TS

INF, NAN = float("inf"), float("nan")


def frame(ema: list[float | None], rsi: list[float | None]) -> pl.DataFrame:
    n = len(ema)
    return pl.DataFrame({
        "exchange": ["sim"] * n, "symbol": ["BTC/USDT"] * n, "timeframe": ["1h"] * n,
        "ts": [datetime(2024, 3, 10, h, tzinfo=UTC) for h in range(n)], "ema_21": ema, "rsi_14": rsi,
        "td_up": list(range(n)),
    }, schema_overrides={"ts": TS, "ema_21": pl.Float64, "rsi_14": pl.Float64})


@pytest.mark.parametrize(("ema", "rsi", "expected"), [
    ([1.0, 2.0], [50.0, 51.0], []),
    ([None, 2.0], [None, None], []),  # warm-up: not defined yet
    ([INF, 2.0], [50.0, 51.0], ["ema_21"]),
    ([1.0, -INF], [50.0, NAN], [None, "ema_21,rsi_14"]),
    ([NAN, 2.0], [NAN, 51.0], ["ema_21,rsi_14"]),
])
def test_non_finite_values(ema: list, rsi: list, expected: list) -> None:
    found = non_finite_values(frame(ema, rsi))
    assert found.get_column("columns").to_list() == [e for e in expected if e is not None]
    if expected and expected[0] is None:
        assert found.get_column("ts").to_list() == [datetime(2024, 3, 10, 1, tzinfo=UTC)]


def test_missing_rows_are_the_candles_without_a_row() -> None:
    candles = frame([1.0] * 4, [1.0] * 4).select("exchange", "symbol", "timeframe", "ts")
    indicators = frame([1.0] * 4, [1.0] * 4).filter(pl.col("ts").dt.hour() != 2)
    assert missing_rows(candles, indicators).get_column("ts").to_list() == [datetime(2024, 3, 10, 2, tzinfo=UTC)]
    assert missing_rows(candles, frame([1.0] * 4, [1.0] * 4)).is_empty()
