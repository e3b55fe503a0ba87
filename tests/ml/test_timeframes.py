from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ml.marketdata.frames import ohlcv_rows_to_frame
from ml.marketdata.timeframes import expected_open_times, last_closed_open_ms, timeframe_ms, to_ms

T0 = to_ms(datetime(2024, 1, 1, tzinfo=UTC))
H = 3_600_000


def test_unknown_timeframe_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown timeframe '7m'"):
        timeframe_ms("7m")


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError, match="naive"):
        to_ms(datetime(2024, 1, 1))


def test_last_closed_candle() -> None:
    assert last_closed_open_ms(T0 + 90 * 60_000, "1h") == T0
    assert last_closed_open_ms(T0 + H, "1h") == T0


def test_expected_open_times_align_to_the_epoch() -> None:
    assert list(expected_open_times(T0 + 1, T0 + 3 * H, "1h")) == [T0 + H, T0 + 2 * H]


def test_rows_to_frame_sorts_dedupes_and_drops_unclosed() -> None:
    rows = [[T0 + 2 * H, 3, 3, 3, 3, 1], [T0, 1, 1, 1, 1, 1], [T0 + H, 2, 2, 2, 2, 1],
            [T0 + H, 2.5, 2.5, 2.5, 2.5, 1], [T0 + 3 * H, 4, 4, 4, 4, 1], [T0 + 5, 9, 9, 9, 9, 9]]
    frame = ohlcv_rows_to_frame(rows, timeframe="1h", now_ms=T0 + 3 * H + 10)
    assert frame.get_column("open").to_list() == [1.0, 2.5, 3.0]
    assert frame.get_column("ts").is_sorted()
