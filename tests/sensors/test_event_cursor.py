"""The sensor's commit-order-safe cursor (pure): gaps awaited, filled once, given up by the rules."""

from __future__ import annotations

import pytest

from sensors.event_cursor import Awaited, EventCursor, WaitPolicy, advance, run_key

T = 1_750_000_000.0
POLICY = WaitPolicy(grace_s=60, max_wait_s=3600, max_ranges=3)


def test_a_bare_id_is_a_cursor_without_awaited_ids_both_ways() -> None:
    assert EventCursor.decode("346") == EventCursor(high=346)
    assert EventCursor(high=346).encode() == "346"
    awaited = EventCursor(high=9, awaited=(Awaited(3, 4, T, 771), Awaited(7, 7, T + 1.5, None)))
    assert EventCursor.decode(awaited.encode()) == awaited


@pytest.mark.parametrize("text", ["-3", "abc", '{"high": 3}', '{"high": 3, "awaited": [[4, 2, 0, null]]}', "[]"])
def test_a_malformed_cursor_is_a_clear_error(text: str) -> None:
    with pytest.raises(ValueError, match=r"social_events_sensor cursor .* is not valid.*clear it"):
        EventCursor.decode(text)


def test_ids_missing_below_a_higher_one_are_awaited_with_the_snapshot_that_missed_them() -> None:
    progress = advance(EventCursor(high=2), new_ids=[3, 5, 6, 9], late_ids=[], now=T, xmin=100, xmax=105,
                       policy=POLICY)
    assert progress.cursor == EventCursor(high=9, awaited=(Awaited(4, 4, T, 105), Awaited(7, 8, T, 105)))
    assert progress.settled == progress.forced == ()


def test_a_late_id_leaves_the_awaited_range_splitting_it() -> None:
    cursor = EventCursor(high=20, awaited=(Awaited(4, 10, T, 105),))
    progress = advance(cursor, new_ids=[], late_ids=[7, 4], now=T + 1, xmin=101, xmax=110, policy=POLICY)
    assert progress.cursor.awaited == (Awaited(5, 6, T, 105), Awaited(8, 10, T, 105))
    assert progress.cursor.high == 20


@pytest.mark.parametrize(
    ("waited", "xmin", "xmax", "outcome"),
    [
        (59.0, 200, 105, "kept"),  # within the grace, even though no older transaction runs
        (61.0, 104, 105, "kept"),  # a transaction that may hold the id is still running
        (61.0, 105, 105, "settled"),  # every transaction that could hold it has ended
        (61.0, None, None, "settled"),  # SQLite: the grace alone
        (3600.0, 1, 105, "forced"),  # an hour with a transaction still open: forced, with a warning
    ],
)
def test_an_awaited_id_is_given_up_only_by_the_rules(waited: float, xmin: int | None, xmax: int | None,
                                                      outcome: str) -> None:
    item = Awaited(4, 4, T, xmax)
    progress = advance(EventCursor(high=5, awaited=(item,)), new_ids=[], late_ids=[], now=T + waited,
                       xmin=xmin, xmax=xmax, policy=POLICY)
    found = {"kept": progress.cursor.awaited, "settled": progress.settled, "forced": progress.forced}
    assert {name: list(items) for name, items in found.items()} == {
        name: ([item] if name == outcome else []) for name in found}
    if outcome != "kept":
        assert progress.cursor.encode() == "5"  # nothing awaited: the plain format again


def test_beyond_max_ranges_the_oldest_are_forced() -> None:
    cursor = EventCursor(high=10, awaited=(Awaited(2, 2, T, 5), Awaited(4, 4, T + 1, 5), Awaited(6, 6, T + 2, 5)))
    progress = advance(cursor, new_ids=[12], late_ids=[], now=T + 3, xmin=1, xmax=9, policy=POLICY)
    assert progress.forced == (Awaited(2, 2, T, 5),)
    assert [a.first for a in progress.cursor.awaited] == [4, 6, 11]


@pytest.mark.parametrize(("new_ids", "late_ids"), [([5, 4], []), ([2], []), ([], [9])])
def test_reads_that_break_the_contract_are_refused(new_ids: list[int], late_ids: list[int]) -> None:
    with pytest.raises(ValueError):
        advance(EventCursor(high=3, awaited=(Awaited(1, 1, T, None),)), new_ids=new_ids, late_ids=late_ids,
                now=T, xmin=None, xmax=None)


def test_run_keys_depend_on_exactly_the_ids() -> None:
    assert run_key([5, 1, 9]) == run_key([1, 5, 9])
    assert run_key([1, 5, 9]) != run_key([1, 7, 9])  # same ends and size, different ids
    assert run_key([1, 5, 9]).startswith("validate:1-9:3:")
