"""The vectorised social outcome rows equal a per-row loop of the module doc's rules, on random
publications (several publishers per signal, any second) and random snapshots (missed minutes,
minutes without a price)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.evaluation.costs import DEFAULT_COSTS
from ml.signals.outcome_rows import snapshot_outcomes

T0 = datetime(2024, 3, 1, 12, tzinfo=UTC)
M = timedelta(minutes=1)
HORIZONS = (1, 2, 3, 5, 10, 15)
DELAY = 5
C = DEFAULT_COSTS.per_unit_traded


def naive(published: list[tuple[int, str, datetime]], prices: dict[tuple[int, datetime], float | None],
          now: datetime) -> list[dict]:
    rows = []
    for signal_id, publisher, at in published:
        m0 = at if at.second == 0 and at.microsecond == 0 else at.replace(second=0, microsecond=0) + M
        entry = next((m0 + k * M for k in range(DELAY + 1) if prices.get((signal_id, m0 + k * M)) is not None), None)
        row: dict = {"signal_id": signal_id, "publisher": publisher, "entry_ts": entry}
        base = entry or m0
        missing = 0
        for h in HORIZONS:
            p1 = prices.get((signal_id, entry + h * M)) if entry is not None else None
            value = None
            if entry is not None and p1 is not None:
                p0 = prices[(signal_id, entry)]
                assert p0 is not None
                value = p1 / p0 - 1 - C * (1 + p1 / p0)
            row[f"return_{h}m"] = value
            missing += value is None and base + (h + 1) * M <= now
        row["missing"] = missing
        row["settled"] = all(row[f"return_{h}m"] is not None for h in HORIZONS) or base + 16 * M <= now
        rows.append(row)
    return rows


@settings(max_examples=60, deadline=None)
@given(
    publications=st.lists(st.tuples(st.integers(1, 3), st.sampled_from(["a", "b"]), st.integers(0, 600)),
                          min_size=1, max_size=6, unique_by=lambda p: (p[0], p[1])),
    snapshot_minutes=st.dictionaries(st.tuples(st.integers(1, 3), st.integers(0, 40)),
                                     st.one_of(st.none(), st.floats(0.5, 2.0)), max_size=80),
    now_s=st.integers(0, 3000),
)
def test_snapshot_outcomes_equal_a_loop(publications: list[tuple[int, str, int]],
                                        snapshot_minutes: dict[tuple[int, int], float | None], now_s: int) -> None:
    published = [(s, p, T0 + timedelta(seconds=sec)) for s, p, sec in publications]
    prices = {(s, T0 + k * M): v for (s, k), v in snapshot_minutes.items()}
    now = T0 + timedelta(seconds=now_s)
    frame = pl.DataFrame({"signal_id": [p[0] for p in published], "publisher": [p[1] for p in published],
                          "published_at": [p[2] for p in published]})
    snapshots = pl.DataFrame({"signal_id": [k[0] for k in prices], "minute_ts": [k[1] for k in prices],
                              "price_usd": list(prices.values())},
                             schema={"signal_id": pl.Int64, "minute_ts": pl.Datetime("us", "UTC"),
                                     "price_usd": pl.Float64})
    got = snapshot_outcomes(frame, snapshots, now=now, max_entry_delay=timedelta(minutes=DELAY)).to_dicts()
    for mine, theirs in zip(got, naive(published, prices, now), strict=True):
        for key, value in theirs.items():
            if isinstance(value, float):
                assert mine[key] == pytest.approx(value) and not math.isnan(mine[key]), key
            else:
                assert mine[key] == value, (key, mine, theirs)
