"""ath_flags: table-driven cases and a property test against a naive per-row definition."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.marketdata.ath import ATH_BANDS_PCT, ath_flags
from ml.marketdata.frames import COINGECKO_SCHEMA, TS

SNAPSHOT = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
FLAG_COLUMNS = [f"within_{band}pct_of_ath" for band in ATH_BANDS_PCT]


def frame_of(rows: list[dict[str, object]]) -> pl.DataFrame:
    """A COINGECKO_SCHEMA frame; unspecified columns are null, snapshot_ts defaults to SNAPSHOT."""
    full = [{name: row.get(name) for name in COINGECKO_SCHEMA} for row in rows]
    for i, row in enumerate(full):
        row["snapshot_ts"] = row["snapshot_ts"] or SNAPSHOT
        row["coin_id"] = row["coin_id"] or f"coin-{i}"
    return pl.DataFrame(full, schema=COINGECKO_SCHEMA)


def naive_flags(price: float | None, ath: float | None) -> list[bool | None]:
    if price is None or ath is None or ath <= 0:
        return [None] * len(ATH_BANDS_PCT)
    drawdown = max(0.0, (ath - price) / ath * 100.0)
    return [drawdown <= band for band in ATH_BANDS_PCT]


@pytest.mark.parametrize(
    ("price", "ath", "expected"),
    [
        # price, ath  -> within 5, 10, 15, 90
        (100.0, 100.0, [True, True, True, True]),  # at the ATH
        (96.0, 100.0, [True, True, True, True]),  # 4 % below
        (95.0, 100.0, [True, True, True, True]),  # exactly 5 % below: boundary is inclusive
        (94.0, 100.0, [False, True, True, True]),
        (90.0, 100.0, [False, True, True, True]),  # exactly 10 %
        (85.0, 100.0, [False, False, True, True]),  # exactly 15 %
        (84.0, 100.0, [False, False, False, True]),
        (10.0, 100.0, [False, False, False, True]),  # exactly 90 %
        (9.99, 100.0, [False, False, False, False]),
        (0.0, 100.0, [False, False, False, False]),  # worthless
        (110.0, 100.0, [True, True, True, True]),  # above a stale ATH: clipped to 0 %
        (49053.0, 64805.0, [False, False, False, True]),  # recorded BTC 2021-05-15: 24.3 % below
        (None, 100.0, [None, None, None, None]),
        (100.0, None, [None, None, None, None]),
        (float("nan"), 100.0, [None, None, None, None]),
        (5.0, 0.0, [None, None, None, None]),  # no meaningful ATH
    ],
)
def test_flags_follow_the_drawdown_definition(
    price: float | None, ath: float | None, expected: list[bool | None]
) -> None:
    out = ath_flags(frame_of([{"price_usd": price, "ath_usd": ath}]))
    assert out.select(FLAG_COLUMNS).row(0) == tuple(expected)


@pytest.mark.parametrize(
    ("ath_ts", "expected_days"),
    [
        (SNAPSHOT - timedelta(days=30), 30.0),
        (SNAPSHOT - timedelta(hours=36), 1.5),
        (SNAPSHOT, 0.0),
        (SNAPSHOT + timedelta(hours=12), -0.5),  # CoinGecko dated the ATH after the snapshot
        (None, None),
    ],
)
def test_days_since_ath(ath_ts: datetime | None, expected_days: float | None) -> None:
    out = ath_flags(frame_of([{"price_usd": 1.0, "ath_usd": 1.0, "ath_ts": ath_ts}]))
    assert out.schema["days_since_ath"] == pl.Float64()
    assert out["days_since_ath"][0] == expected_days


def test_recorded_bitcoin_row() -> None:
    """Values of the recorded CoinGecko bitcoin object (2021-05-15)."""
    frame = frame_of(
        [
            {
                "snapshot_ts": datetime(2021, 5, 15, 16, 0, tzinfo=UTC),
                "price_usd": 49053.0,
                "ath_usd": 64805.0,
                "ath_ts": datetime(2021, 4, 14, 11, 54, 46, 763000, tzinfo=UTC),
            }
        ]
    )
    row = ath_flags(frame).row(0, named=True)
    expected_days = (
        datetime(2021, 5, 15, 16, 0, tzinfo=UTC) - row["ath_ts"]
    ).total_seconds() / 86400
    assert row["days_since_ath"] == pytest.approx(expected_days)
    assert 31.0 < row["days_since_ath"] < 31.2


def test_keeps_rows_columns_and_adds_typed_columns() -> None:
    frame = frame_of([{"price_usd": 1.0, "ath_usd": 2.0}, {"price_usd": 3.0, "ath_usd": 3.0}])
    out = ath_flags(frame)
    assert out.columns == [*frame.columns, "days_since_ath", *FLAG_COLUMNS]
    assert out.select(frame.columns).equals(frame)
    assert all(out.schema[c] == pl.Boolean() for c in FLAG_COLUMNS)


def test_empty_frame() -> None:
    out = ath_flags(pl.DataFrame(schema=COINGECKO_SCHEMA))
    assert out.height == 0
    assert out.schema["days_since_ath"] == pl.Float64()


prices = st.one_of(st.none(), st.floats(min_value=0.0, max_value=1e9, allow_nan=False))
aths = st.one_of(st.none(), st.floats(min_value=1e-9, max_value=1e9, allow_nan=False))


@settings(max_examples=100, deadline=None, derandomize=True)
@given(
    rows=st.lists(
        st.tuples(prices, aths, st.integers(min_value=-(10**6), max_value=10**11)),
        min_size=1,
        max_size=30,
    )
)
def test_property_nested_and_matches_naive_loop(
    rows: list[tuple[float | None, float | None, int]],
) -> None:
    frame = pl.DataFrame(
        {
            "snapshot_ts": [SNAPSHOT] * len(rows),
            "ath_ts": [SNAPSHOT - timedelta(milliseconds=ms) for _, _, ms in rows],
            "price_usd": [p for p, _, _ in rows],
            "ath_usd": [a for _, a, _ in rows],
        },
        schema={"snapshot_ts": TS, "ath_ts": TS, "price_usd": pl.Float64, "ath_usd": pl.Float64},
    )
    out = ath_flags(frame)
    for (price, ath, ms), got in zip(rows, out.iter_rows(named=True), strict=True):
        flags = [got[c] for c in FLAG_COLUMNS]
        assert flags == naive_flags(price, ath)
        if flags[0] is not None:
            # nested: within 5 => within 10 => within 15 => within 90
            assert all(not inner or outer for inner, outer in itertools.pairwise(flags))
        assert got["days_since_ath"] == pytest.approx(ms / 86_400_000)
