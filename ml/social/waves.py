"""Coordinated waves in social calls (pure): near-identical texts across channels in a short time.

Two messages are *near-identical* when the Jaccard similarity of their :func:`wave_shingles`
(character ``k``-grams of the normalised text with links reduced to their host, addresses and
long codes masked as ``@``, numbers as ``#``, punctuation and emoji dropped) is at least
``similarity`` and they were posted at most ``window_s`` apart. A *wave* is a connected
component of that relation whose messages come from at least ``min_channels`` distinct
channels. Texts shorter than ``min_chars`` after masking are never part of a wave (``"@ lfg"``
is not a fingerprint).

The join is exact (the same answer as comparing every pair) without comparing every pair:
identical shingle sets are grouped first, and distinct sets are compared only when they share
a token of their *prefix* under a global rare-first order (prefix filtering, Bayardo et al.,
WWW 2007: sets with Jaccard ≥ t share an element among the first ``|x| - ceil(t·|x|) + 1`` of
each). Groups are visited in time order and index entries older than the window are dropped.
Cost is O(n·k) for n messages of k shingles plus the verification of candidate pairs; that is
quadratic only in the number of *distinct* texts that are all near-identical and within one
window (thousands of bot variants of one shill in two minutes), where any exact method must
compare them.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from ml.social.text import normalise_content

__all__ = ["WaveInfo", "WaveMessage", "coordinated_waves", "wave_shingles", "wave_text"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class WaveMessage:
    """One message considered for waves: ``ts`` timezone-aware, ``event_id`` unique."""

    event_id: str
    channel: str
    ts: datetime
    text: str


@dataclass(frozen=True, slots=True)
class WaveInfo:
    """The wave a message belongs to.

    Attributes
    ----------
    wave_id
        ``event_id`` of the wave's earliest message (ties: smallest ``event_id``).
    channels
        Distinct channels in the wave (≥ ``min_channels``).
    size
        Messages in the wave.
    """

    wave_id: str
    channels: int
    size: int


_HOST_PATH = re.compile(r"\b([a-z0-9-]+(?:\.[a-z0-9-]+)+)/\S*")
_CODE = re.compile(r"[a-z0-9]{25,}")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NON_WORD = re.compile(r"[^\w#@]+|_+")


def wave_text(text: str) -> str:
    """The masked text whose shingles are compared (steps in the module docstring)."""
    masked = _HOST_PATH.sub(r"\1", normalise_content(text).casefold())
    masked = _CODE.sub("@", masked)
    masked = _NUMBER.sub("#", masked)
    return " ".join(_NON_WORD.sub(" ", masked).split())


def wave_shingles(text: str, *, shingle_size: int = 5, min_chars: int = 16) -> frozenset[str]:
    """Character ``shingle_size``-grams of :func:`wave_text`; empty when it is shorter than
    ``min_chars`` (such a text is never part of a wave)."""
    masked = wave_text(text)
    if len(masked) < max(min_chars, 1):
        return frozenset()
    if len(masked) <= shingle_size:
        return frozenset((masked,))
    return frozenset(masked[i : i + shingle_size] for i in range(len(masked) - shingle_size + 1))


class _Components:
    """Union-find over ``n`` items (path halving, union by size)."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))
        self.size = [1] * n

    def find(self, i: int) -> int:
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            if self.size[ra] < self.size[rb]:
                ra, rb = rb, ra
            self.parent[rb] = ra
            self.size[ra] += self.size[rb]


def _prefix_length(size: int, similarity: float) -> int:
    # Conservative by 1e-6 so float rounding in t·|x| can only lengthen the prefix (still exact).
    overlap = max(1, math.ceil(similarity * size - 1e-6))
    return max(1, min(size, size - overlap + 1))


def coordinated_waves(
    messages: Sequence[WaveMessage],
    *,
    window_s: float,
    min_channels: int,
    similarity: float,
    shingle_size: int = 5,
    min_chars: int = 16,
) -> dict[str, WaveInfo]:
    """Messages that belong to a coordinated wave (definition in the module docstring).

    Parameters
    ----------
    messages
        Messages in any order; ``event_id`` unique, ``ts`` timezone-aware.
    window_s
        Seconds: the largest gap between two near-identical messages that links them
        (``SpamConfig.wave_window_s``, default 120).
    min_channels
        Distinct channels a wave needs (``SpamConfig.wave_min_channels``, default 3).
    similarity
        Jaccard threshold in (0, 1] (``SpamConfig.wave_similarity``, default 0.9).
    shingle_size, min_chars
        As :func:`wave_shingles`.

    Returns
    -------
    dict[str, WaveInfo]
        ``event_id -> WaveInfo`` for every message in a wave; messages in no wave are absent.
        Exactly the answer of the pairwise definition, independent of input order.

    Raises
    ------
    ValueError
        Duplicate ``event_id``, a naive ``ts``, or a parameter out of range.
    """
    if not (0.0 < similarity <= 1.0) or window_s < 0 or min_channels < 1 or shingle_size < 1:
        raise ValueError(
            f"need 0 < similarity <= 1, window_s >= 0, min_channels >= 1, shingle_size >= 1; got "
            f"{similarity}, {window_s}, {min_channels}, {shingle_size}"
        )
    if len({m.event_id for m in messages}) != len(messages):
        raise ValueError("event_id must be unique across messages")
    if any(m.ts.utcoffset() is None for m in messages):
        raise ValueError("WaveMessage.ts must be timezone-aware")
    ts = [(m.ts - _EPOCH) // _MICROSECOND for m in messages]  # exact integer microseconds

    groups: dict[frozenset[str], list[int]] = defaultdict(list)
    for index, message in enumerate(messages):
        shingles = wave_shingles(message.text, shingle_size=shingle_size, min_chars=min_chars)
        if shingles:
            groups[shingles].append(index)
    sets = list(groups)
    members = [sorted(groups[s], key=lambda i: ts[i]) for s in sets]
    components = _Components(len(messages))
    whole = [True] * len(sets)  # all of a group's messages already in one component
    # Identical texts: linked when consecutive posts are within the window.
    for sid, group in enumerate(members):
        for a, b in pairwise(group):
            if _close(ts[a], ts[b], window_s):
                components.union(a, b)
            else:
                whole[sid] = False

    _join(sets, members, ts, window_s, similarity, components, whole)
    return _waves(messages, ts, components, [i for group in members for i in group], min_channels)


def _join(
    sets: list[frozenset[str]],
    members: list[list[int]],
    ts: list[int],
    window_s: float,
    similarity: float,
    components: _Components,
    whole: list[bool],
) -> None:
    """Link every pair of near-identical groups with messages within the window (exact).

    Groups are visited in order of their first message; a group is a candidate of another only
    if they share a prefix token (prefix filtering) and the earlier one still has a message in
    the window (older index entries are dropped for good: no later group can reach them).
    """
    frequency: Counter[str] = Counter()
    for shingles in sets:
        frequency.update(shingles)
    # A global total order, rarest first (ties by first appearance): one int key per shingle.
    rank = {token: count * len(frequency) + i for i, (token, count) in enumerate(frequency.items())}
    coded = [frozenset(rank[token] for token in shingles) for shingles in sets]
    index: dict[int, list[int]] = defaultdict(list)
    for sid in sorted(range(len(sets)), key=lambda g: (ts[members[g][0]], g)):
        a = members[sid]
        ordered = sorted(coded[sid])
        shared: Counter[int] = Counter()
        for token in ordered[: _prefix_length(len(ordered), similarity)]:
            bucket = [o for o in index[token] if _close(ts[members[o][-1]], ts[a[0]], window_s)]
            shared.update(bucket)
            bucket.append(sid)
            index[token] = bucket
        root = components.find(a[0]) if whole[sid] else None
        # Most shared prefix tokens first: the likeliest matches join a component early, and
        # the rest of that component is then skipped without verification.
        for other, _count in sorted(shared.items(), key=lambda item: (-item[1], item[0])):
            b = members[other]
            if root is not None and whole[other] and components.find(b[0]) == root:
                continue  # linking could not change the components
            size_a, size_b = len(coded[sid]), len(coded[other])
            if (
                similarity * max(size_a, size_b) <= min(size_a, size_b) * (1 + 1e-9)  # J ≤ min/max
                and _jaccard(coded[sid], coded[other]) >= similarity
            ):
                _link_across(a, b, ts, window_s, components)
                if root is not None:
                    root = components.find(a[0])


def _close(earlier_us: int, later_us: int, window_s: float) -> bool:
    """``later - earlier <= window``, computed as ``timedelta.total_seconds()`` would."""
    return (later_us - earlier_us) / 1_000_000 <= window_s


def _jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


def _link_across(
    a: list[int], b: list[int], ts: list[int], window_s: float, components: _Components
) -> None:
    """Union messages of two near-identical groups so components match the pairwise relation.

    Walk both groups merged by time and link each adjacent pair from different groups whose gap
    is ≤ window: any cross pair within the window is then connected through the adjacent pairs
    between them (all gaps there are ≤ window, same-group neighbours are already linked).
    """
    merged = sorted([(ts[i], 0, i) for i in a] + [(ts[i], 1, i) for i in b])
    for (t1, g1, i1), (t2, g2, i2) in pairwise(merged):
        if g1 != g2 and _close(t1, t2, window_s):
            components.union(i1, i2)


def _waves(
    messages: Sequence[WaveMessage],
    ts: list[int],
    components: _Components,
    eligible: list[int],
    min_channels: int,
) -> dict[str, WaveInfo]:
    by_root: dict[int, list[int]] = defaultdict(list)
    for i in eligible:
        by_root[components.find(i)].append(i)
    out: dict[str, WaveInfo] = {}
    for group in by_root.values():
        channels = len({messages[i].channel for i in group})
        if channels < min_channels:
            continue
        first = min(group, key=lambda i: (ts[i], messages[i].event_id))
        info = WaveInfo(wave_id=messages[first].event_id, channels=channels, size=len(group))
        for i in group:
            out[messages[i].event_id] = info
    return out
