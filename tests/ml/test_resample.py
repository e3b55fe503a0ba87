"""Multi-timeframe candles against a naive per-bucket loop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.marketdata.resample import MTF_TIMEFRAMES, bucket_bounds, resample, span_for_day
from tests.support.builders import make_candles

START = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday
NOW = datetime(2024, 3, 15, tzinfo=UTC)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOURS = {"2h": 2, "4h": 4, "12h": 12, "1d": 24, "3d": 72}


def naive_bounds(moment: datetime, timeframe: str) -> tuple[datetime, datetime]:
    """Plain datetime arithmetic, independent of the polars implementation."""
    if timeframe == "1M":
        start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        return start, end
    if timeframe == "1w":
        start = (moment - timedelta(days=moment.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + timedelta(days=7)
    step = timedelta(hours=HOURS[timeframe])
    start = EPOCH + ((moment - EPOCH) // step) * step
    return start, start + step


def naive(candles: pl.DataFrame, timeframe: str, now: datetime) -> list[tuple]:
    buckets: dict[tuple[str, datetime], list[dict]] = {}
    for row in candles.sort("symbol", "ts").iter_rows(named=True):
        start, _ = naive_bounds(row["ts"], timeframe)
        buckets.setdefault((row["symbol"], start), []).append(row)
    out = []
    for (symbol, start), rows in sorted(buckets.items()):
        _, end = naive_bounds(start, timeframe)
        if len(rows) != (end - start) // timedelta(hours=1) or end > now:
            continue
        out.append((symbol, start, rows[0]["open"], max(r["high"] for r in rows), min(r["low"] for r in rows),
                    rows[-1]["close"], sum(r["volume"] for r in rows)))
    return out


@pytest.mark.parametrize("timeframe", MTF_TIMEFRAMES)
def test_resample_equals_a_naive_loop(timeframe: str) -> None:
    candles = make_candles(24 * 70, "1h", symbols=("A/USDT", "B/USDT"), start=START)
    complete, _ = resample(candles, timeframe, now=NOW)
    got = [(r[1], r[3], r[4], r[5], r[6], r[7], r[8]) for r in complete.iter_rows()]
    expected = naive(candles, timeframe, NOW)
    assert len(got) == len(expected) > 0
    for a, b in zip(got, expected, strict=True):
        assert a[:2] == b[:2]
        assert a[2:] == pytest.approx(b[2:], rel=1e-12)
    assert complete.get_column("timeframe").unique().to_list() == [timeframe]


def test_alignment() -> None:
    assert bucket_bounds(datetime(2024, 1, 3, 5, tzinfo=UTC), "1w") == (START, START + timedelta(days=7))
    assert bucket_bounds(datetime(2024, 2, 29, 23, tzinfo=UTC), "1M") == (
        datetime(2024, 2, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC))
    assert bucket_bounds(datetime(2024, 1, 1, 13, tzinfo=UTC), "4h")[0] == datetime(2024, 1, 1, 12, tzinfo=UTC)
    three_day = bucket_bounds(datetime(2024, 1, 1, tzinfo=UTC), "3d")[0]
    assert (three_day - datetime(1970, 1, 1, tzinfo=UTC)).days % 3 == 0


def test_a_missing_hour_makes_the_bucket_incomplete_never_a_candle() -> None:
    candles = make_candles(48, "1h", start=START).filter(pl.col("ts") != START + timedelta(hours=5))
    complete, incomplete = resample(candles, "4h", now=NOW)
    assert START + timedelta(hours=4) not in complete.get_column("ts").to_list()
    assert incomplete.rows(named=True)[0] | {} == {
        "exchange": "sim", "symbol": "BTC/USDT", "timeframe": "4h", "ts": START + timedelta(hours=4),
        "hours_present": 3, "hours_expected": 4}
    assert complete.height == 11


def test_a_bucket_still_open_is_not_a_candle() -> None:
    candles = make_candles(30, "1h", start=START)
    complete, incomplete = resample(candles, "1d", now=START + timedelta(hours=30))
    assert complete.get_column("ts").to_list() == [START]
    assert incomplete.get_column("hours_present").to_list() == [6]


def test_span_for_a_day_covers_every_touching_bucket() -> None:
    start, end = span_for_day(datetime(2024, 1, 31, tzinfo=UTC))
    assert start == datetime(2024, 1, 1, tzinfo=UTC)  # the month (and that week) begin on the 1st
    assert end == datetime(2024, 2, 5, tzinfo=UTC)  # the week containing 31 Jan ends Monday 5 Feb


@settings(max_examples=40, deadline=None)
@given(hours=st.integers(1, 24 * 40), offset=st.integers(0, 24 * 30), tf=st.sampled_from(MTF_TIMEFRAMES))
def test_property_every_candle_is_a_full_bucket(hours: int, offset: int, tf: str) -> None:
    candles = make_candles(hours, "1h", start=START + timedelta(hours=offset), seed=offset)
    complete, incomplete = resample(candles, tf, now=NOW)
    assert complete.height + incomplete.height == len({naive_bounds(t, tf) for t in candles.get_column("ts")})
    for row in complete.iter_rows(named=True):
        start, end = naive_bounds(row["ts"], tf)
        inside = candles.filter((pl.col("ts") >= start) & (pl.col("ts") < end))
        assert inside.height == (end - start) // timedelta(hours=1)
        assert row["high"] == inside.get_column("high").max() and row["low"] == inside.get_column("low").min()
