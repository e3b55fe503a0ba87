"""signal_outcomes rows: the social minute grid (entry, horizons, missed minutes, entry delay),
which snapshots are due, market rows from closed candles only, settling, payload parsing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from ml.evaluation.costs import DEFAULT_COSTS
from ml.signals.outcome_rows import (
    market_outcomes,
    market_trade_rows,
    outcomes_long,
    snapshot_outcomes,
    snapshots_due,
)
from ml.strategies.signal import MarketSignal

T0 = datetime(2024, 3, 1, 12, tzinfo=UTC)
M = timedelta(minutes=1)
C = DEFAULT_COSTS.per_unit_traded
HORIZONS = (1, 2, 3, 5, 10, 15)


def net(p0: float, p1: float, direction: str = "long") -> float:
    gross = p1 / p0 - 1 if direction == "long" else 1 - p1 / p0
    return gross - C * (1 + p1 / p0)


def pubs(*rows: tuple[int, str, datetime]) -> pl.DataFrame:
    return pl.DataFrame({"signal_id": [r[0] for r in rows], "publisher": [r[1] for r in rows],
                         "published_at": [r[2] for r in rows]})


def snaps(signal_id: int, prices: dict[int, float | None]) -> pl.DataFrame:
    """Snapshots of minute T0 + k for each k in ``prices``."""
    return pl.DataFrame({"signal_id": signal_id, "minute_ts": [T0 + k * M for k in prices],
                         "price_usd": list(prices.values())}, schema_overrides={"price_usd": pl.Float64})


PRICES = {k: 1.0 + 0.01 * k for k in range(0, 25)}


@pytest.mark.parametrize(("published", "entry_minute"), [
    (T0, 0),                                  # on the minute: that minute's snapshot
    (T0 + timedelta(milliseconds=1), 1),      # a hair later: the next minute
    (T0 + timedelta(seconds=59), 1),
])
def test_social_entry_is_the_first_minute_at_or_after_publication(published: datetime, entry_minute: int) -> None:
    out = snapshot_outcomes(pubs((1, "chat", published)), snaps(1, PRICES), now=T0 + timedelta(hours=1))
    row = out.row(0, named=True)
    assert row["entry_ts"] == T0 + entry_minute * M and row["entry_price"] == PRICES[entry_minute]
    for h in HORIZONS:
        assert row[f"return_{h}m"] == pytest.approx(net(PRICES[entry_minute], PRICES[entry_minute + h])), h
    assert row["settled"] and row["missing"] == 0 and row["exit_reason"] is None and row["pnl"] is None


def test_missed_minutes_stay_null_and_a_priceless_minute_is_no_entry() -> None:
    prices = {k: v for k, v in PRICES.items() if k != 4}  # minute 4 was never taken
    prices[1] = None  # the token had no price in minute 1
    out = snapshot_outcomes(pubs((1, "chat", T0 + timedelta(seconds=5))), snaps(1, prices),
                            now=T0 + timedelta(hours=1))
    row = out.row(0, named=True)
    # minute 1 has no price: the entry is minute 2; +3 is minute 5 (taken), +2 is minute 4 (missed)
    assert row["entry_ts"] == T0 + 2 * M
    assert row["return_2m"] is None and row["return_3m"] == pytest.approx(net(PRICES[2], PRICES[5]))
    assert row["missing"] == 1 and row["settled"]


def test_no_entry_within_the_delay_means_no_figures() -> None:
    late = snaps(1, {k: v for k, v in PRICES.items() if k >= 7})
    out = snapshot_outcomes(pubs((1, "chat", T0)), late, now=T0 + timedelta(hours=1),
                            max_entry_delay=timedelta(minutes=5))
    row = out.row(0, named=True)
    assert row["entry_ts"] is None and all(row[f"return_{h}m"] is None for h in HORIZONS)
    assert row["missing"] == 6 and row["settled"]


def test_figures_appear_as_minutes_pass_and_later_snapshots_change_nothing_earlier() -> None:
    published = pubs((1, "chat", T0))
    now = T0 + 4 * M + timedelta(seconds=10)  # minute 4 is running: +3 (minute 3) has passed
    early = snapshot_outcomes(published, snaps(1, {k: PRICES[k] for k in range(5)}), now=now).row(0, named=True)
    assert early["return_3m"] is not None and early["return_5m"] is None
    assert early["missing"] == 0 and not early["settled"]
    changed = snaps(1, {**{k: PRICES[k] for k in range(5)}, **{k: 50.0 for k in range(5, 20)}})
    later = snapshot_outcomes(published, changed, now=T0 + timedelta(hours=1)).row(0, named=True)
    assert all(later[f"return_{h}m"] == early[f"return_{h}m"] for h in (1, 2, 3))
    assert later["return_5m"] == pytest.approx(net(PRICES[0], 50.0))


@pytest.mark.parametrize(("stored", "now_minute", "due"), [
    ({}, -1, []),                            # before publication's first minute
    ({}, 0, [1]),                            # the entry minute
    ({0: 1.0}, 0, []),                       # already taken this minute
    ({0: 1.0}, 1, [1]),                      # +1
    ({0: 1.0, 1: 1.0}, 1, []),               # +1 already taken in this minute
    ({0: None}, 0, []),                      # this minute was taken (no price): not again
    ({0: 1.0, 1: 1.0}, 4, []),               # +4 is no horizon
    ({0: 1.0, 1: 1.0}, 5, [1]),              # +5
    ({}, 5, [1]),                            # no entry yet, still inside the 5 min entry delay
    ({}, 6, []),                             # too late for an entry
    ({0: None}, 1, [1]),                     # minute 0 had no price: minute 1 may still be the entry
])
def test_which_snapshots_are_due(stored: dict[int, float | None], now_minute: int, due: list[int]) -> None:
    now = T0 + now_minute * M + timedelta(seconds=20)
    assert snapshots_due(pubs((1, "chat", T0)), snaps(1, stored), now=now) == due


def test_a_later_publisher_wants_its_own_minutes() -> None:
    published = pubs((1, "fast", T0), (1, "slow", T0 + timedelta(minutes=2, seconds=30)))
    stored = snaps(1, {0: 1.0, 1: 1.0, 2: 1.0})
    # minute 3: +3 of "fast" and the entry of "slow"; minute 4: +1 of "slow" only
    assert snapshots_due(published, stored, now=T0 + 3 * M) == [1]
    assert snapshots_due(published, snaps(1, {0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0}), now=T0 + 4 * M) == [1]
    assert snapshots_due(published, snaps(1, {0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0}), now=T0 + 6 * M) == [1]  # slow +3
    assert snapshots_due(published, snaps(1, {0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0}), now=T0 + 7 * M) == []


def candles(n: int, *, skip: tuple[int, ...] = ()) -> pl.DataFrame:
    rows = [(T0 + i * M, 100.0 + i, 100.5 + i, 99.8 + i, 100.2 + i) for i in range(n) if i not in skip]
    return pl.DataFrame(rows, schema=["ts", "open", "high", "low", "close"], orient="row").with_columns(
        exchange=pl.lit("sim"), symbol=pl.lit("BTC/USDT"))


def market(*rows: tuple[int, str, datetime, int]) -> pl.DataFrame:
    return pl.DataFrame({"signal_id": [r[0] for r in rows], "publisher": [r[1] for r in rows],
                         "published_at": [r[2] for r in rows], "exchange": "sim", "symbol": "BTC/USDT",
                         "direction": "long", "stop": 50.0, "target": 1000.0, "trade_time": [r[3] for r in rows]})


def test_market_rows_read_only_candles_closed_at_the_clock() -> None:
    published = market((1, "a", T0, 20), (1, "b", T0 + timedelta(seconds=90), 5))
    at = T0 + timedelta(minutes=6)  # candles up to minute 5 closed (minute 5 closes at 6:00)
    out = market_outcomes(published, candles(60), now=at)
    a, b = out.row(0, named=True), out.row(1, named=True)
    assert a["return_5m"] == pytest.approx(net(100.0, 104.2)) and a["return_10m"] is None
    assert (a["exit_reason"], a["settled"]) == ("open", False)
    assert b["entry_ts"] == T0 + 2 * M and b["return_3m"] == pytest.approx(net(102.0, 104.2))
    assert b["return_5m"] is None  # its exit candle, minute 6, has not closed
    done = market_outcomes(published, candles(60), now=T0 + timedelta(minutes=30)).row(1, named=True)
    assert (done["exit_reason"], done["exit_ts"], done["settled"]) == ("time", T0 + 6 * M, True)
    assert done["pnl"] == pytest.approx(net(102.0, 106.2))


def test_a_gap_settles_after_the_grace_with_its_figure_null() -> None:
    published = market((1, "a", T0, 20))
    gap = candles(60, skip=(2,))
    before = market_outcomes(published, gap, now=T0 + timedelta(minutes=50), settle_grace=timedelta(hours=1))
    row = before.row(0, named=True)
    assert row["return_3m"] is None and row["missing"] == 1 and not row["settled"]
    after = market_outcomes(published, gap, now=T0 + timedelta(minutes=81), settle_grace=timedelta(hours=1))
    assert after.row(0, named=True)["settled"]  # 20 min of trade time + 1 h grace have passed


def signal(**over: object) -> MarketSignal:
    fields = dict(strategy="bos", exchange="sim", symbol="BTC/USDT", timeframe="5m", direction="short",
                  trigger_ts=T0, entry=100.0, stop=104.0, targets=(97.0, 95.0), confidence=0.6,
                  risk_level="low", size=0.5, expires_at=T0 + timedelta(minutes=5 + 90))
    fields.update(over)
    return MarketSignal(**fields)  # type: ignore[arg-type]


def test_market_payloads_give_trade_time_and_first_target_and_bad_ones_are_named() -> None:
    good = json.dumps(signal().to_record())
    naive = json.dumps({**signal().to_record(), "expires_at": "2024-03-01T12:05:30+00:00"})  # half a minute
    inverted = json.dumps({**signal().to_record(), "targets": [110.0]})  # a short's target above its stop
    publications = pl.DataFrame({"signal_id": [1, 2, 3, 4], "publisher": "chat", "published_at": T0,
                                 "payload": [good, naive, "{}", inverted]})
    rows, errors = market_trade_rows(publications)
    assert rows.select("signal_id", "direction", "stop", "target", "trade_time", "strategy").rows() == [
        (1, "short", 104.0, 97.0, 90, "bos")]
    assert set(errors) == {2, 3, 4} and "whole minute" in errors[2] and "KeyError" in errors[3]
    assert "not beyond the stop" in errors[4]


def test_outcomes_long_has_one_row_per_horizon() -> None:
    wide = pl.DataFrame({"signal_id": [1], "publisher": ["chat"], "strategy": ["bos"], "symbol": ["BTC/USDT"],
                         "source": ["market"], **{f"return_{h}m": [0.01 * h if h < 10 else None] for h in HORIZONS}})
    long = outcomes_long(wide)
    assert long.get_column("horizon_minutes").to_list() == list(HORIZONS)
    assert long.get_column("net_return").to_list() == [0.01, 0.02, 0.03, 0.05, None, None]
    assert {"signal_id", "strategy", "symbol", "source", "publisher"} <= set(long.columns)


def test_outcome_violations_name_each_broken_rule() -> None:
    rows = pl.DataFrame({
        "signal_id": [1, 2, 3, 4], "published_at": [T0] * 4,
        "entry_ts": [T0 + M, T0 - M, T0 + M, None], "exit_ts": [T0 + 5 * M, None, T0, None],
        **{f"return_{h}m": [0.01, None, None, 0.02 if h == 1 else None] for h in HORIZONS},
    })
    from ml.signals.outcome_rows import outcome_violations

    found = outcome_violations(rows)
    assert sorted(found.select("signal_id", "violation").rows()) == [
        (2, "entry before publication"), (3, "exit before entry"), (4, "return without entry")]
