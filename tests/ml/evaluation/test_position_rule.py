"""The position rule: signals by hand, held for ``hold`` candles, no look-ahead, series kept apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from ml.evaluation.positions import rule_positions, series_starts
from ml.evaluation.walkforward import PositionRule, held_positions


def probabilities(scores: list[float]) -> np.ndarray:
    """``(n, 3)`` probabilities whose ``P(up) - P(down)`` is each score."""
    score = np.asarray(scores, dtype=np.float64)
    up, down = np.maximum(score, 0.0), np.maximum(-score, 0.0)
    return np.column_stack([down, 1.0 - up - down, up])


#        0    1    2    3    4     5    6    7    8    9   10   11
SCORES = [0.0, 0.3, 0.05, 0.0, 0.0, -0.3, 0.0, 0.3, 0.3, 0.0, 0.0, -0.05]


@pytest.mark.parametrize(("rule", "expected"), [
    (PositionRule(margin=0.1), [0, 1, 0, 0, 0, -1, 0, 1, 1, 0, 0, 0]),
    (PositionRule(margin=0.0), [0, 1, 1, 0, 0, -1, 0, 1, 1, 0, 0, -1]),
    # decided at 1, held 3 candles (1, 2, 3); at 5 short for 5, 6 until the long at 7 flips it; the
    # long of 8 extends the hold to 10; the faint -0.05 at 11 is no signal
    (PositionRule(margin=0.1, hold=3), [0, 1, 1, 1, 0, -1, -1, 1, 1, 1, 1, 0]),
    (PositionRule(margin=0.1, hold=3, long_only=True), [0, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 0]),
    (PositionRule(margin=0.0, hold=3), [0, 1, 1, 1, 1, -1, -1, 1, 1, 1, 1, -1]),
])
def test_positions_by_hand(rule: PositionRule, expected: list[int]) -> None:
    assert rule.positions(probabilities(SCORES)).tolist() == expected


def test_a_confident_down_forecast_closes_a_held_long_when_long_only() -> None:
    rule = PositionRule(margin=0.1, hold=4, long_only=True)
    assert rule.positions(probabilities([0.3, 0.0, -0.3, 0.0, 0.0, 0.0])).tolist() == [1, 1, 0, 0, 0, 0]


def test_no_position_is_held_into_the_next_series() -> None:
    starts = np.array([True, False, False, True, False, False])
    rule = PositionRule(margin=0.1, hold=3)
    scores = probabilities([0.0, 0.0, 0.5, 0.0, 0.0, 0.0])
    assert rule.positions(scores).tolist() == [0, 0, 1, 1, 1, 0]
    assert rule.positions(scores, starts).tolist() == [0, 0, 1, 0, 0, 0]


@pytest.mark.parametrize("hold", [0, -1, 1.5, True])
def test_bad_hold_is_refused(hold: object) -> None:
    with pytest.raises(ValueError, match="hold must be a whole number"):
        PositionRule(hold=hold)  # type: ignore[arg-type]


def naive_positions(signals: np.ndarray, hold: int, starts: np.ndarray) -> np.ndarray:
    """The rule row by row: a running position and the rows left in its hold."""
    out = np.zeros(signals.size)
    position, left = 0.0, 0
    for t, signal in enumerate(signals):
        if starts[t]:
            position, left = 0.0, 0
        if signal != 0:
            position, left = signal, hold
        out[t] = position if left > 0 else 0.0
        left -= 1
    return out


def test_vectorised_hold_equals_a_row_by_row_loop_on_random_signals() -> None:
    rng = np.random.default_rng(3)
    for _ in range(300):
        n = int(rng.integers(0, 40))
        signals = rng.choice([-1.0, 0.0, 0.0, 0.0, 1.0], n)
        starts = rng.random(n) < 0.1
        hold = int(rng.integers(1, 8))
        np.testing.assert_array_equal(held_positions(signals, hold, starts), naive_positions(signals, hold, starts))


def test_altering_probabilities_after_t_changes_no_position_at_or_before_t() -> None:
    rng = np.random.default_rng(11)
    for hold in (1, 4, 12):
        rule = PositionRule(margin=0.1, hold=hold)
        proba = rng.dirichlet([1.0, 1.0, 1.0], 500)
        base = rule.positions(proba)
        later_changed = 0
        for cut in rng.integers(0, 499, 20):
            altered = proba.copy()
            altered[cut + 1:] = rng.dirichlet([1.0, 1.0, 1.0], 499 - cut)
            changed = rule.positions(altered)
            np.testing.assert_array_equal(base[: cut + 1], changed[: cut + 1])
            later_changed += not np.array_equal(base[cut + 1:], changed[cut + 1:])
        assert later_changed >= 15  # the altered future does move the later positions


HOUR = timedelta(hours=1)
START = datetime(2024, 1, 1, tzinfo=UTC)


def test_each_symbol_and_each_gap_in_its_candles_starts_a_new_series() -> None:
    # AAA misses hours 3 and 4; rows pooled as the runner holds them (by time, then symbol)
    rows = [("AAA/USDT", h) for h in (0, 1, 2, 5, 6)] + [("BBB/USDT", h) for h in range(5)]
    frame = pl.DataFrame({"symbol": [s for s, _ in rows], "ts": [START + h * HOUR for _, h in rows],
                          "hour": [h for _, h in rows]}).sort("ts", "symbol")
    starts = frame.with_columns(start=pl.Series(series_starts(frame))).filter("start")
    assert starts.select("symbol", "hour").rows() == [("AAA/USDT", 0), ("BBB/USDT", 0), ("AAA/USDT", 5)]

    # a long signal on AAA's last row before its gap and on BBB's hour 1, held 3 candles
    signal = {("AAA/USDT", 2), ("BBB/USDT", 1)}
    proba = probabilities([0.5 if row in signal else 0.0 for row in frame.select("symbol", "hour").rows()])
    frame = frame.with_columns(p_down=proba[:, 0], p_flat=proba[:, 1], p_up=proba[:, 2])
    held = frame.with_columns(position=pl.Series(rule_positions(frame, PositionRule(margin=0.1, hold=3))))
    by_symbol = {s: part.sort("hour")["position"].to_list() for (s,), part in held.group_by(["symbol"])}
    assert by_symbol == {"AAA/USDT": [0, 0, 1, 0, 0],  # not held across the gap
                         "BBB/USDT": [0, 1, 1, 1, 0]}
