"""Context of a call: who else mentions the same token within its validation window (pure).

A call arrives at ``call.ts``; its validation window is ``[call.ts, call.ts + window_s]``
(closed). The context counts the mentions of the same *base token* (see
:func:`ml.social.base_token.base_token_key`, so USDC on Base and on Solana count together) in
that window, the call itself included, and looks back one window for an earlier mention the
call echoes.

No look-ahead: nothing posted after ``call.ts + window_s`` changes the result, since the
validation runs once the window has closed and must give the same answer whenever it runs
(a test adds later mentions and checks that).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["Context", "Mention", "mention_context", "mention_contexts"]


@dataclass(frozen=True, slots=True)
class Mention:
    """One message mentioning a token.

    Attributes
    ----------
    event_id
        Unique id of the message (the ``social_events`` key).
    channel
        Channel id or name.
    author
        Author id or handle; ``""`` for anonymous channel posts, which count as the channel's
        own author (``"#<channel>"``).
    ts
        When it was posted; timezone-aware.
    token
        :func:`~ml.social.base_token.base_token_key` of the mentioned token.
    """

    event_id: str
    channel: str
    author: str
    ts: datetime
    token: str

    def __post_init__(self) -> None:
        if self.ts.utcoffset() is None:
            raise ValueError(f"Mention.ts must be timezone-aware, got {self.ts!r}")

    @property
    def author_key(self) -> str:
        """The author identity counted by :class:`Context`."""
        return self.author or f"#{self.channel}"


@dataclass(frozen=True, slots=True)
class Context:
    """Mentions of the call's token within ``[call.ts, call.ts + window]``.

    Attributes
    ----------
    channels
        Distinct channels (≥ 1: the call's own).
    authors
        Distinct authors (:attr:`Mention.author_key`, ≥ 1).
    mentions
        Distinct messages (≥ 1).
    first_seen
        Earliest mention of the token at or before ``call.ts`` among ``mentions`` (or the
        call's own ``ts``): aware, never after ``call.ts``.
    echo_of
        Index in ``mentions`` of the earliest mention of the token posted strictly before the
        call and at most one window earlier (ties: lowest index), or ``None`` when the call is
        the first in that window.
    """

    channels: int
    authors: int
    mentions: int
    first_seen: datetime
    echo_of: int | None


def _check(window_s: float) -> None:
    if not window_s >= 0:
        raise ValueError(f"window_s must be >= 0, got {window_s}")


def mention_context(call: Mention, mentions: Sequence[Mention], *, window_s: float) -> Context:
    """The context of ``call`` among ``mentions`` (rules in the module docstring).

    Parameters
    ----------
    call
        The call being validated (it may or may not be in ``mentions``).
    mentions
        Mentions of any tokens, in any order, e.g. every event of the last hours.
    window_s
        Validation window in seconds (``window_s`` of the source or channel).

    Returns
    -------
    Context
        Deterministic and independent of the order of ``mentions`` (except the index in
        ``echo_of``); unchanged by any mention after ``call.ts + window_s``.

    Raises
    ------
    ValueError
        ``window_s`` < 0.
    """
    _check(window_s)
    same = _index_by_token(mentions).get(call.token, _TokenIndex([], []))
    return _context(call, mentions, same, window_s)


def mention_contexts(
    calls: Sequence[Mention], mentions: Sequence[Mention], *, window_s: float
) -> list[Context]:
    """:func:`mention_context` of each call, indexing ``mentions`` once (for a batch)."""
    _check(window_s)
    index = _index_by_token(mentions)
    empty = _TokenIndex([], [])
    return [_context(call, mentions, index.get(call.token, empty), window_s) for call in calls]


@dataclass(frozen=True, slots=True)
class _TokenIndex:
    ts: list[datetime]  # sorted
    positions: list[int]  # positions in ``mentions``, in the same order


def _index_by_token(mentions: Sequence[Mention]) -> dict[str, _TokenIndex]:
    grouped: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    for position, mention in enumerate(mentions):
        grouped[mention.token].append((mention.ts, position))
    out: dict[str, _TokenIndex] = {}
    for token, pairs in grouped.items():
        pairs.sort()
        out[token] = _TokenIndex([t for t, _ in pairs], [p for _, p in pairs])
    return out


def _context(
    call: Mention, mentions: Sequence[Mention], same: _TokenIndex, window_s: float
) -> Context:
    window = timedelta(seconds=window_s)
    start, end = call.ts, call.ts + window
    inside = {call.event_id: call}
    for k in range(bisect_left(same.ts, start), bisect_right(same.ts, end)):
        mention = mentions[same.positions[k]]
        inside.setdefault(mention.event_id, mention)
    first_seen = min(same.ts[0], call.ts) if same.ts else call.ts
    echo_of = None
    for k in range(bisect_left(same.ts, start - window), bisect_left(same.ts, start)):
        if mentions[same.positions[k]].event_id != call.event_id:
            echo_of = same.positions[k]  # sorted by (ts, position): the first is the earliest
            break
    return Context(
        channels=len({m.channel for m in inside.values()}),
        authors=len({m.author_key for m in inside.values()}),
        mentions=len(inside),
        first_seen=first_seen,
        echo_of=echo_of,
    )
