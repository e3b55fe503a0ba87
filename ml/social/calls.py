"""Calls and the order a validation run handles them in (pure).

A *call* is one token mention in one stored social event. A validation run takes each call's
*arrival* snapshot (the token's market when the call arrived) and, once the call's window has
closed, its *closing* snapshot, then scores it (:mod:`ml.social.validation`). The run handles
these steps in time order (:func:`validation_timeline`) on whatever clock it is given: the real
time, or a replayed stream's own clock, on which the same calls meet the same market whenever
and however fast they are replayed.

Nothing here does I/O or imports Dagster: events and DexScreener pairs are read through the
small protocols below, which the warehouse's ``StoredEvent`` and DexScreener's ``PairSnapshot``
satisfy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from ml.social.base_token import base_token_key

__all__ = [
    "EVM_SEARCH_ORDER",
    "FRESH_PRICE_S",
    "Call",
    "CallEvent",
    "PairView",
    "Step",
    "arrival_is_usable",
    "calls_of",
    "context_span",
    "mention_key",
    "on_chain",
    "validation_timeline",
]

#: A cached price fetched up to this long before the call serves as its arrival snapshot.
FRESH_PRICE_S = 15.0
#: Where an EVM address whose chain the message did not name is looked for, in this order.
EVM_SEARCH_ORDER = ("ethereum", "base", "bsc", "arbitrum", "polygon", "optimism", "avalanche")


class CallEvent(Protocol):
    """A stored social event as validation reads it (``ts`` aware UTC; ``tokens`` are
    ``{"chain", "address", ...}`` dicts as the extractor stored them)."""

    @property
    def event_id(self) -> int: ...
    @property
    def source(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def author(self) -> str | None: ...
    @property
    def text(self) -> str: ...
    @property
    def ts(self) -> datetime: ...
    @property
    def tokens(self) -> Sequence[Mapping[str, Any]]: ...


class PairView(Protocol):
    """A DexScreener pair snapshot as validation reads it (amounts in USD, ``None``: unknown)."""

    @property
    def dex(self) -> str: ...
    @property
    def pair_address(self) -> str: ...
    @property
    def base_symbol(self) -> str: ...
    @property
    def price_usd(self) -> float | None: ...
    @property
    def liquidity_usd(self) -> float | None: ...
    @property
    def volume_24h_usd(self) -> float | None: ...
    @property
    def market_cap_usd(self) -> float | None: ...
    @property
    def fdv_usd(self) -> float | None: ...
    @property
    def fetched_at(self) -> datetime: ...

    def age(self, at: datetime | None = None) -> float | None: ...


@dataclass(frozen=True)
class Call:
    """One token of one event, with the validation window and weight of its channel."""

    event: CallEvent
    chain: str
    address: str
    base_token: str
    window_s: float
    channel_weight: float

    @property
    def closes_at(self) -> datetime:
        """When the call's window closes (aware UTC)."""
        return self.event.ts + timedelta(seconds=self.window_s)


def calls_of(events: Sequence[CallEvent],
             window_and_weight: Callable[[str, str], tuple[float, float]]) -> list[Call]:
    """One call per (event, token), in event then token order.

    ``window_and_weight(source, channel)`` gives the channel's validation window (seconds) and
    weight (see ``config/sources.yaml``).
    """
    calls = []
    for event in events:
        window, weight = window_and_weight(event.source, event.channel)
        for token in event.tokens:
            chain, address = str(token["chain"]), str(token["address"])
            calls.append(Call(event, chain, address, base_token_key(chain, address), window, weight))
    return calls


def on_chain(call: Call, chain: str) -> Call:
    """``call`` on ``chain`` (an ``evm`` call once DexScreener has shown where it is listed), so
    its base-token key, and its context counts, match mentions that named the chain."""
    return replace(call, chain=chain, base_token=base_token_key(chain, call.address))


def mention_key(token: Mapping[str, Any], call: Call) -> str:
    """The base-token key of a mention as seen from ``call``: a mention of the call's address
    whose EVM chain was not named counts for the call's (resolved) chain."""
    chain = str(token["chain"])
    if chain == "evm" and str(token["address"]).lower() == call.address.lower():
        chain = call.chain
    return base_token_key(chain, str(token["address"]))


@dataclass(frozen=True)
class Step:
    """What a run does at ``at``: take call ``index``'s arrival snapshot, or close it."""

    at: datetime
    kind: Literal["arrival", "close"]
    index: int


def validation_timeline(calls: Sequence[Call]) -> list[Step]:
    """Every call's arrival (at its event's time) and close (at :attr:`Call.closes_at`), in time
    order; at the same instant arrivals come first, then calls in their given order.

    A call's close always follows its own arrival (windows are never negative). On the real
    clock a run starts after its calls arrived, so it takes every arrival snapshot at once and
    then waits for each window; on a replay's clock it meets each step at its own instant.
    """
    steps = [Step(call.event.ts, "arrival", i) for i, call in enumerate(calls)]
    steps += [Step(call.closes_at, "close", i) for i, call in enumerate(calls)]
    return sorted(steps, key=lambda step: (step.at, step.kind != "arrival", step.index))


def arrival_is_usable(fetched_at: datetime, called_at: datetime, now: datetime, *,
                      fresh_s: float = FRESH_PRICE_S) -> bool:
    """Whether a cached snapshot fetched at ``fetched_at`` is the arrival snapshot of a call made
    at ``called_at``, for a run whose clock reads ``now``: fetched at most ``fresh_s`` before the
    call, and not after ``now`` (a snapshot from the run's future, e.g. one a replay cached for a
    later echo of the token, would leak the reaction into the call's price)."""
    return called_at - timedelta(seconds=fresh_s) <= fetched_at <= now


def context_span(call: Call, wave_window_s: float) -> tuple[datetime, datetime]:
    """The events a call's score reads: from one window (or one wave window, the longer) before
    the call up to its close; nothing after the close (no look-ahead)."""
    horizon = max(call.window_s, wave_window_s)
    return call.event.ts - timedelta(seconds=horizon), call.closes_at
