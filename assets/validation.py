"""Validating social calls once their window has closed: the I/O around :mod:`ml.social`.

A run receives event ids as soon as they arrive (see ``sensors/social_events.py``) and walks the
calls' timeline (:func:`ml.social.calls.validation_timeline`) on its clock: at each call's
arrival it takes the arrival snapshot (the one the sidecar cached as the call arrived, else a
fetch), at each close the closing snapshot, then scores the call
(:func:`ml.social.validation.validate_call`), stores the row and queues the signal of a call that
passed or nearly passed. Waiting inside the run hides its start-up inside the window. The clock is
the real time, or a replayed stream's own clock (``resources/clock.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from ml.social.calls import (
    EVM_SEARCH_ORDER,
    Call,
    arrival_is_usable,
    calls_of,
    context_span,
    on_chain,
    validation_timeline,
)
from ml.social.scoring import ScoringParams
from ml.social.validation import (
    SpamRules,
    Verdict,
    is_pair_call,
    on_pair_token,
    signal_of,
    validate_call,
)
from resources.dexscreener import DexScreenerSource, PairLookup, PairSnapshot
from resources.exchanges.errors import MarketDataError
from resources.publishers.outbox import Outbox
from resources.social_config import SignalworksSocialConfig
from resources.warehouse.social import SocialStore, events_between
from resources.warehouse.validations import ValidationStore, stored_instant

logger = logging.getLogger(__name__)


@dataclass
class ValidationReport:
    rows: list[dict[str, Any]] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    enqueued: list[int] = field(default_factory=list)
    already: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    cache_hit_rate: float | None = None


def window_and_weight(config: SignalworksSocialConfig) -> Callable[[str, str], tuple[float, float]]:
    """``(source, channel) -> (window_s, weight)`` from ``config/sources.yaml``."""
    sources = config.sources

    def lookup(source: str, channel: str) -> tuple[float, float]:
        section = {"replay": sources.replay, "telegram": sources.telegram, "discord": sources.discord}.get(source)
        channels = sources.x.accounts if source == "x" else (section.channels if section else ())
        window = sources.x.window_s if source == "x" else (section.window_s if section else 60.0)
        for entry in channels:
            if entry.id.lower().lstrip("@") == channel.lower().lstrip("@"):
                return (entry.window_s or window), entry.weight
        return window, 1.0

    return lookup


def spam_rules(config: SignalworksSocialConfig) -> SpamRules:
    spam = config.spam
    return SpamRules(tuple(spam.patterns), spam.wave_window_s, spam.wave_min_channels, spam.wave_similarity)


def validate_calls(
    event_ids: Sequence[int], *, store: SocialStore, engine: Engine, fresh: DexScreenerSource,
    cached: Any, config: SignalworksSocialConfig, params: ScoringParams | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC), sleep: Callable[[float], None] = time.sleep,
    on_enqueued: Callable[[int], None] | None = None,
) -> ValidationReport:
    """Validate every call in ``event_ids`` (each once, ever) and enqueue the ones that pass.

    ``fresh`` and ``cached`` (the sidecar's cache, or ``None``) read DexScreener on ``clock``;
    ``sleep`` waits on it. ``on_enqueued(signal_id)`` runs right after each enqueue (the op
    publishes there, so a call is not held back by later calls of the same batch).
    """
    params = params or ScoringParams(threshold=config.validation_threshold)
    validations = ValidationStore(engine)
    outbox = Outbox(engine)
    rules = spam_rules(config)
    report = ValidationReport()
    calls = _distinct([_resolve_pair(call, fresh, report)
                       for call in calls_of(store.by_ids(event_ids), window_and_weight(config))])
    pending = [c for c in calls if not validations.is_validated(c.event.event_id, c.chain, c.address)]
    report.already = len(calls) - len(pending)
    pending = [_resolve_evm_chain(call, cached or fresh, report) for call in pending]
    arrival: dict[int, PairSnapshot | None] = {}
    for step in validation_timeline(pending):
        wait = (step.at - clock()).total_seconds()
        if wait > 0:
            sleep(wait)
        now = stored_instant(clock())
        call = pending[step.index]
        if step.kind == "arrival":
            arrival[step.index] = _arrival_snapshot(cached, fresh, call, report, now)
            pair = arrival[step.index]
            validations.remember_token(chain=call.chain, address=call.address, base_token=call.base_token,
                                       symbol=pair.base_symbol if pair else None, first_seen=now)
            continue
        closing = _fetch(fresh, call, report)
        result = validate_call(call, arrival[step.index], closing,
                               nearby=events_between(store, *context_span(call, rules.wave_window_s)),
                               past=validations.channel_outcomes(call.event.channel, now),
                               spam=rules, params=params, now=now)
        validations.record(result.row)
        report.rows.append(result.row)
        report.verdicts.append(result.verdict)
        draft = signal_of(call, result)
        signal_id = None if draft is None else outbox.enqueue(
            kind="social", origin=draft.origin, base_token=draft.base_token, confidence=draft.confidence,
            payload=draft.payload, chain=draft.chain, address=draft.address, symbol=draft.symbol,
            source=draft.source, channel=draft.channel, now=draft.created_at)
        if signal_id is not None:
            report.enqueued.append(signal_id)
            if on_enqueued is not None:
                on_enqueued(signal_id)
    report.cache_hit_rate = cached.hit_rate if cached is not None else None
    return report


def _resolve_pair(call: Call, dex: Any, report: ValidationReport) -> Call:
    """A call on a DEX pair address (a chart link's pool) becomes a call on the pair's token,
    through DexScreener's pairs endpoint; it stays as it is when the pair is unknown."""
    if call.chain == "evm" or not isinstance(dex, PairLookup) or not is_pair_call(call):
        return call
    try:
        pair = dex.pair(call.chain, call.address)
    except (MarketDataError, ValueError) as error:
        _failed(call, error, report)
        return call
    return on_pair_token(call, pair.base_address if pair is not None else None)


def _distinct(calls: list[Call]) -> list[Call]:
    """One call per (event, chain, token): a message with a token and its pair is one call."""
    seen: dict[tuple[int, str, str], Call] = {}
    for call in calls:
        address = call.address.lower() if call.address.startswith("0x") else call.address
        seen.setdefault((call.event.event_id, call.chain, address), call)
    return list(seen.values())


def _resolve_evm_chain(call: Call, dex: Any, report: ValidationReport) -> Call:
    """A call extracted with chain ``evm`` takes the first chain DexScreener lists it on."""
    if call.chain != "evm":
        return call
    for chain in EVM_SEARCH_ORDER:
        try:
            if dex.best_pair(chain, call.address) is not None:
                return on_chain(call, chain)
        except (MarketDataError, ValueError) as error:
            report.errors[f"{call.event.event_id} {chain}:{call.address}"] = str(error)
    return call


def _arrival_snapshot(cached: Any, fresh: DexScreenerSource, call: Call, report: ValidationReport,
                      now: datetime) -> PairSnapshot | None:
    """The pair the sidecar cached as the call arrived (see ``streaming/arrival.py``) when
    :func:`~ml.social.calls.arrival_is_usable`, else a fetch now."""
    if cached is not None:
        try:
            pair = cached.best_pair(call.chain, call.address)
        except (MarketDataError, ValueError) as error:
            _failed(call, error, report)
        else:
            # the call's time was read back from the warehouse (milliseconds on SQLite): compare alike
            if pair is None or arrival_is_usable(stored_instant(pair.fetched_at), call.event.ts, now):
                return pair
    return _fetch(fresh, call, report)


def _fetch(dex: DexScreenerSource, call: Call, report: ValidationReport) -> PairSnapshot | None:
    try:
        return dex.best_pair(call.chain, call.address)
    except (MarketDataError, ValueError) as error:
        _failed(call, error, report)
        return None


def _failed(call: Call, error: Exception, report: ValidationReport) -> None:
    report.errors[f"{call.event.event_id} {call.chain}:{call.address}"] = str(error)
    logger.warning("DexScreener failed for %s:%s: %s", call.chain, call.address, error)
