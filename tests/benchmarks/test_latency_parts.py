"""The candle-to-chat benchmark's measurement code: messages matched to stored signals, runs and store times;
percentiles. Messages are rendered by the real market template, so a template change that breaks the
matching fails here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from benchmarks.latency_parts import (
    RunTimes,
    SignalKey,
    StoredSignal,
    enqueuing_run,
    feed_store_lags,
    match_messages,
    message_key,
    origin_key,
    percentile,
    stages,
)
from resources.publishers.messages import render_signal
from resources.publishers.render import visible_text

TRIGGER = datetime(2026, 3, 2, 9, 28, tzinfo=UTC)
CLOSE = (TRIGGER + timedelta(minutes=1)).timestamp()


def _message(symbol: str = "SOL/USDT", direction: str = "long", trigger: datetime = TRIGGER) -> str:
    payload = {"strategy": "bos", "exchange": "sim", "symbol": symbol, "timeframe": "1m", "direction": direction,
               "entry": 100.0, "stop": 92.0 if direction == "long" else 108.0,
               "targets": [108.0] if direction == "long" else [92.0], "risk_level": "low", "size": 0.5,
               "trigger_ts": trigger.isoformat(), "expires_at": (trigger + timedelta(minutes=91)).isoformat()}
    return visible_text(render_signal("market", payload, confidence=0.7))


def _key(symbol: str = "SOL/USDT", direction: str = "long", trigger: datetime = TRIGGER) -> SignalKey:
    return SignalKey("bos", "sim", symbol, direction, "1m", trigger)


def test_a_rendered_market_message_gives_the_key_of_its_outbox_origin() -> None:
    key = message_key(_message(direction="short"))
    assert key == origin_key(f"bos|sim|SOL/USDT|short|{TRIGGER.isoformat()}", "1m")
    assert key is not None and key.close == TRIGGER + timedelta(minutes=1)
    assert message_key("Market digest: 3 signals yesterday") is None


def test_origin_of_another_shape_is_an_error() -> None:
    with pytest.raises(ValueError, match="strategy\\|exchange"):
        origin_key("validation:42", "1m")


def test_feed_lines_give_the_store_lag_per_minute_first_line_wins() -> None:
    lines = [
        "2026-03-02 09:29:02,101 INFO streaming.candles.exchange_feed: sim: minute 09:28 closed: 1000 candles "
        "stored for 1000 of 1000 symbols, 2.61 s after the close",
        "2026-03-02 09:30:09,000 INFO streaming.candles.exchange_feed: sim: minute 09:28 closed (repairing from "
        "2026-03-02 09:20): 5 candles stored for 5 of 1000 symbols, 9.00 s after the close; 995 failed",
        "health exchange=sim connected=yes",
    ]
    assert feed_store_lags(lines) == {("sim", "09:28"): 2.61}


def test_the_enqueuing_run_is_the_latest_started_run_spanning_the_stamp() -> None:
    runs = [RunTimes("a", CLOSE, CLOSE + 5, CLOSE + 20), RunTimes("b", CLOSE + 6, CLOSE + 8, CLOSE + 12),
            RunTimes("c", CLOSE + 30, None, None)]
    assert enqueuing_run(CLOSE + 9, runs) == runs[1]
    assert enqueuing_run(CLOSE + 15, runs) == runs[0]
    assert enqueuing_run(CLOSE + 25, runs) is None


def test_messages_are_matched_to_signals_runs_and_store_times() -> None:
    sol, eth = _key(), _key("ETH/USDT", "short")
    stored = {sol: StoredSignal(sol, CLOSE + 9.0, "done"), eth: StoredSignal(eth, CLOSE + 9.5, "done")}
    runs = [RunTimes("r1", CLOSE + 6.0, CLOSE + 8.0, CLOSE + 14.0)]
    messages = [(_message(), CLOSE + 12.0), (_message(), CLOSE + 13.0),  # the second one is a duplicate
                (_message("ETH/USDT", "short"), CLOSE + 13.5),
                (_message("XRP/USDT"), CLOSE + 14.0),  # no stored signal
                ("not a signal", CLOSE)]
    matched = match_messages(messages, stored, runs, {("sim", "09:28"): 2.5})
    assert (matched.duplicates, matched.unknown) == (1, 1)
    assert [(m.key, m.total) for m in matched.latencies] == [(sol, 12.0), (eth, 13.5)]
    parts = stages(matched.latencies)
    assert parts == {"close -> stored": [2.5, 2.5], "stored -> run created": [3.5, 3.5],
                     "run created -> started": [2.0, 2.0], "run started -> 1st message": [4.0, 4.0],
                     "behind earlier messages": [0.0, 1.5]}
    for item, total in zip(matched.latencies, (12.0, 13.5), strict=True):
        assert sum(values[matched.latencies.index(item)] for values in parts.values()) == pytest.approx(total)


def test_unknown_store_time_or_run_leaves_only_the_measurable_stages() -> None:
    key = _key()
    matched = match_messages([(_message(), CLOSE + 40.0)], {key: StoredSignal(key, CLOSE + 30.0, "done")}, [], {})
    assert matched.latencies[0].total == 40.0
    assert stages(matched.latencies) == {"close -> stored": [], "stored -> run created": [],
                                         "run created -> started": [], "run started -> 1st message": [],
                                         "behind earlier messages": []}


@pytest.mark.parametrize(("values", "q", "expected"), [
    ([5.0], 0.95, 5.0),
    ([3.0, 1.0, 2.0], 0.5, 2.0),
    ([1.0, 2.0, 3.0, 4.0], 0.5, 2.0),
    (list(map(float, range(1, 21))), 0.95, 19.0),
    (list(map(float, range(1, 31))), 0.95, 29.0),
    (list(map(float, range(1, 31))), 1.0, 30.0),
])
def test_nearest_rank_percentile(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == expected


@pytest.mark.parametrize(("values", "q"), [([], 0.5), ([1.0], 0.0), ([1.0], 1.5)])
def test_percentile_rejects_no_values_and_q_outside_0_1(values: list[float], q: float) -> None:
    with pytest.raises(ValueError):
        percentile(values, q)
