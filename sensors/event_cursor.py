"""Commit-order-safe progress over ``social_events.event_id`` (pure: no Dagster, no SQL).

Why "the highest id seen" is not enough: on PostgreSQL an event's id comes from a sequence when
the row is *inserted*, and becomes visible when its transaction *commits*. With two writers
(two sidecars, or a sidecar flushing its spool while another batch commits), transaction A can
take id 10, transaction B id 11, B commits, the sensor reads 11 and moves past it, then A
commits 10: a cursor holding only the highest id skips 10 forever.

The design: the cursor is the highest id read (``high``) plus the ids below it that were missing
when a higher one was read (``awaited``, kept as ranges with the time they were first missed and,
on PostgreSQL, the ``xmax`` of the snapshot that missed them). Every tick reads the new ids above
``high`` and the awaited ids, in one snapshot; an awaited id that appears is handled then, exactly
once, and leaves the cursor. A missing id is not always late: PostgreSQL also burns sequence
values on rolled-back inserts and on ``ON CONFLICT DO NOTHING`` (every re-delivered message), so
awaited ids must be given up. An id is given up only when

* on PostgreSQL, every transaction that could hold it has ended: the transaction that took it
  was running when the gap was first read, so its id is below that snapshot's ``xmax``; once a
  later snapshot's ``xmin`` is at or above it, that transaction has committed (and the same read
  returned its rows) or rolled back. ``grace_s`` additionally covers the instant between
  ``nextval`` and the transaction getting its id, which no snapshot shows;
* on SQLite (one writer at a time, ids committed in the order they are assigned), after
  ``grace_s``;
* in any case after ``max_wait_s``, or when more than ``max_ranges`` ranges are awaited (oldest
  first): a transaction open for a day (an abandoned ``idle in transaction`` session) must not
  grow the cursor without bound. These are reported as forced, for a warning.

Alternatives not taken: a time-only look-back (re-reading the last N minutes) is either wrong for
a long transaction or slow for a short one; a commit-ordered column (the inserting transaction's
``xid8``, read below the snapshot's ``xmin``) needs a schema change on a hot table and still has
the same ``xmin`` wait. The awaited ranges need neither and stay small: one range per burst of
missing ids, gone within a tick or two of the transactions that made them.

Run keys: a batch's run key is a digest of exactly its ids (:func:`run_key`), so re-evaluating a
tick (the same ids) never launches a second run, and two different batches never share a key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Awaited:
    """Ids ``first``..``last`` (inclusive), missing below the cursor since ``since`` (epoch s).

    ``xmax``: on PostgreSQL, the ``xmax`` of the snapshot that first missed them; ``None`` on SQLite.
    """

    first: int
    last: int
    since: float
    xmax: int | None

    def __post_init__(self) -> None:
        if not 0 < self.first <= self.last:
            raise ValueError(f"an awaited range needs 0 < first <= last, got {self.first}..{self.last}")


@dataclass(frozen=True)
class WaitPolicy:
    """How long a missing id is awaited (seconds); see the module docstring."""

    grace_s: float = 60.0
    max_wait_s: float = 86_400.0
    max_ranges: int = 1_000

    def __post_init__(self) -> None:
        if not (0 <= self.grace_s <= self.max_wait_s and self.max_ranges >= 1):
            raise ValueError(f"invalid wait policy {self!r}")


@dataclass(frozen=True)
class EventCursor:
    """Every id up to ``high`` has been handled, except those in ``awaited`` (not yet seen)."""

    high: int = 0
    awaited: tuple[Awaited, ...] = ()

    def spans(self) -> list[tuple[int, int]]:
        """The awaited ids as inclusive ``(first, last)`` spans, for the read."""
        return [(a.first, a.last) for a in self.awaited]

    def encode(self) -> str:
        """A bare integer while nothing is awaited (the format of earlier versions, and what the
        UI shows most of the time), else compact JSON."""
        if not self.awaited:
            return str(self.high)
        return json.dumps({"high": self.high, "awaited": [[a.first, a.last, a.since, a.xmax] for a in self.awaited]},
                          separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> EventCursor:
        """Parse :meth:`encode`'s output (a bare id, as older versions wrote, included).

        Raises
        ------
        ValueError
            Anything else, saying what a valid cursor looks like.
        """
        text = text.strip()
        try:
            if text.lstrip("-").isdigit():
                return cls(high=_non_negative(int(text)))
            data = json.loads(text)
            awaited = tuple(Awaited(int(first), int(last), float(since), None if xmax is None else int(xmax))
                            for first, last, since, xmax in data["awaited"])
            return cls(high=_non_negative(int(data["high"])), awaited=awaited)
        except (ValueError, TypeError, KeyError) as error:
            raise ValueError(
                f"social_events_sensor cursor {text[:80]!r} is not valid ({error}): it is an event id "
                "such as '346' or {\"high\": 346, \"awaited\": [[first, last, since, xmax], ...]}; "
                "clear it in the UI to restart from the last validated event") from error


@dataclass(frozen=True)
class Progress:
    """The cursor after a tick and the ranges it stopped awaiting (still missing)."""

    cursor: EventCursor
    settled: tuple[Awaited, ...] = ()
    """Given up by the rule: no transaction can still commit them (burned or rolled-back ids)."""
    forced: tuple[Awaited, ...] = ()
    """Given up by ``max_wait_s`` or ``max_ranges`` while a transaction might still commit them."""


def advance(cursor: EventCursor, *, new_ids: Sequence[int], late_ids: Sequence[int], now: float,
            xmin: int | None, xmax: int | None, policy: WaitPolicy = WaitPolicy()) -> Progress:
    """The cursor after a read that returned ``new_ids`` (ascending, all above ``cursor.high``)
    and ``late_ids`` (inside awaited ranges), taken with snapshot bounds ``xmin``/``xmax``
    (``None`` on SQLite) at ``now`` (epoch seconds).

    Guarantees: every id is handled at most once (a late id leaves ``awaited`` as it is read; a new
    id is above the old ``high``); an id that commits after a higher one is handled when it
    commits, unless it was given up as described in the module docstring.

    Raises
    ------
    ValueError
        ``new_ids`` not strictly ascending above ``cursor.high``, or a late id not awaited.
    """
    previous = cursor.high
    for event_id in new_ids:
        if event_id <= previous:
            raise ValueError(f"new ids must ascend above {cursor.high}, got {list(new_ids)[:10]}...")
        previous = event_id
    awaited = _remove(cursor.awaited, late_ids)
    keep: list[Awaited] = []
    settled: list[Awaited] = []
    forced: list[Awaited] = []
    for item in awaited:
        waited = now - item.since
        if waited >= policy.max_wait_s:
            forced.append(item)
        elif waited >= policy.grace_s and (item.xmax is None or (xmin is not None and xmin >= item.xmax)):
            settled.append(item)
        else:
            keep.append(item)
    previous = cursor.high
    for event_id in new_ids:
        if event_id > previous + 1:
            keep.append(Awaited(previous + 1, event_id - 1, now, xmax))
        previous = event_id
    if len(keep) > policy.max_ranges:
        keep.sort(key=lambda a: (a.since, a.first))
        forced += keep[: len(keep) - policy.max_ranges]
        keep = keep[len(keep) - policy.max_ranges:]
    keep.sort(key=lambda a: a.first)
    return Progress(EventCursor(high=previous, awaited=tuple(keep)), tuple(settled), tuple(forced))


def run_key(event_ids: Sequence[int]) -> str:
    """Stable run key of a validation batch: its first and last id, its size and a digest of all
    its ids (two batches with the same ends and size but different ids never collide)."""
    ids = sorted(event_ids)
    digest = hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()[:16]
    return f"validate:{ids[0]}-{ids[-1]}:{len(ids)}:{digest}"


def _remove(awaited: Sequence[Awaited], ids: Sequence[int]) -> list[Awaited]:
    """``awaited`` without ``ids`` (splitting ranges); each id must be awaited."""
    result = list(awaited)
    for event_id in sorted(set(ids)):
        index = next((i for i, a in enumerate(result) if a.first <= event_id <= a.last), None)
        if index is None:
            raise ValueError(f"event {event_id} was read as late but is not awaited")
        item = result.pop(index)
        parts = [replace(item, last=event_id - 1)] if item.first < event_id else []
        if event_id < item.last:
            parts.append(replace(item, first=event_id + 1))
        result[index:index] = parts
    return result


def _non_negative(value: int) -> int:
    if value < 0:
        raise ValueError(f"event id {value} is negative")
    return value
