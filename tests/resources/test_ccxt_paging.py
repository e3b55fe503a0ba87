"""Property: for any range and clock, paging yields exactly the real closed candles in range.

One replay server serves every example; hypothesis draws the exchange, the range (start and end
anywhere in or around the data, mid-candle or aligned) and the client's clock, derandomised.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.resources.test_ccxt_client import KLINES, MINUTE, at, expected_candles, make_client
from tests.support.exchange_replay import ExchangeReplay, guard_loopback

pytestmark = [pytest.mark.fixtures, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def shared_replay() -> Iterator[ExchangeReplay]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        guard_loopback(monkeypatch)
        with ExchangeReplay() as server:
            yield server


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    name=st.sampled_from(sorted(KLINES)),
    start_offset=st.integers(min_value=-120 * MINUTE, max_value=14_000 * MINUTE),
    length=st.integers(min_value=0, max_value=2_600 * MINUTE),
    clock_offset=st.integers(min_value=-60 * MINUTE, max_value=3_000 * MINUTE),
)
def test_paging_matches_a_naive_filter(
    shared_replay: ExchangeReplay, name: str, start_offset: int, length: int, clock_offset: int
) -> None:
    first = shared_replay.candles[0][0]
    start = first + start_offset
    end = start + length
    now = start + clock_offset  # may fall before, inside or after the range
    symbol, _ = KLINES[name]
    frame = make_client(shared_replay, name, now_ms=now).fetch_ohlcv(
        symbol, "1m", at(start), at(end)
    )
    assert frame.equals(expected_candles(shared_replay.candles, start, end, now))
