"""Validating social calls once their window has closed (context-free; the op wraps it).

A *call* is one token mention in one ``social_events`` row. A run receives event ids as soon as
they arrive (see ``sensors/social_events.py``), takes the arrival snapshot (the one the sidecar
cached as the call arrived, else a fetch), waits inside the run until each call's window closes
(so the run's start-up is hidden inside the window), takes the closing snapshot, then scores the call with every factor stored in ``validations``. Passed calls
(and near misses, flagged ``review_only``) go to the ``signals`` outbox.
"""

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from ml.social.base_token import base_token_key
from ml.social.context import Mention, mention_contexts
from ml.social.reputation import CallOutcome, source_reputation
from ml.social.scoring import CallFactors, ScoringParams, score_call
from ml.social.spam import spam_assessment
from ml.social.waves import WaveMessage, coordinated_waves
from resources.dexscreener import DexScreenerSource, PairSnapshot
from resources.exchanges.errors import MarketDataError
from resources.publishers.outbox import Outbox
from resources.social_config import SignalworksSocialConfig
from resources.warehouse.schema import tokens, validations
from resources.warehouse.social import SocialStore, StoredEvent, events_between

logger = logging.getLogger(__name__)

#: A cached price fetched up to this long before the call serves as its arrival snapshot.
FRESH_PRICE_S = 15.0
#: Near misses this far under the threshold go to the outbox for manual review only.
REVIEW_MARGIN = 0.1


@dataclass(frozen=True)
class Call:
    event: StoredEvent
    chain: str
    address: str
    symbol_hint: str | None
    base_token: str
    window_s: float
    channel_weight: float

    @property
    def closes_at(self) -> datetime:
        return self.event.ts + timedelta(seconds=self.window_s)


@dataclass
class ValidationReport:
    rows: list[dict[str, Any]] = field(default_factory=list)
    enqueued: list[int] = field(default_factory=list)
    already: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    cache_hit_rate: float | None = None


def calls_of(events: Sequence[StoredEvent], config: SignalworksSocialConfig) -> list[Call]:
    """One call per (event, token) with the window and channel weight of its source."""
    calls = []
    for event in events:
        window, weight = _window_and_weight(config, event.source, event.channel)
        for token in event.tokens:
            calls.append(Call(event, token["chain"], token["address"], None,
                              base_token_key(token["chain"], token["address"]), window, weight))
    return calls


def _window_and_weight(config: SignalworksSocialConfig, source: str, channel: str) -> tuple[float, float]:
    sources = config.sources
    section = {"replay": sources.replay, "telegram": sources.telegram, "discord": sources.discord}.get(source)
    channels = sources.x.accounts if source == "x" else (section.channels if section else ())
    window = sources.x.window_s if source == "x" else (section.window_s if section else 60.0)
    for entry in channels:
        if entry.id.lower().lstrip("@") == channel.lower().lstrip("@"):
            return (entry.window_s or window), entry.weight
    return window, 1.0


def validate_calls(
    event_ids: Sequence[int], *, store: SocialStore, engine: Engine, fresh: DexScreenerSource,
    cached: Any, config: SignalworksSocialConfig, params: ScoringParams | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC), sleep: Callable[[float], None] = time.sleep,
    on_enqueued: Callable[[int], None] | None = None,
) -> ValidationReport:
    """Validate every call in ``event_ids`` (each once, ever) and enqueue the ones that pass.

    Calls are finished in the order their windows close; ``on_enqueued(signal_id)`` runs right
    after each enqueue (the op publishes there, so a call is not held back by later calls of the
    same batch).
    """
    params = params or ScoringParams(threshold=config.validation_threshold)
    report = ValidationReport()
    pending = [c for c in calls_of(store.by_ids(event_ids), config) if not _validated(engine, c)]
    report.already = sum(len(e.tokens) for e in store.by_ids(event_ids)) - len(pending)
    pending = [_resolve_evm_chain(call, cached or fresh, report) for call in pending]
    arrival: dict[int, PairSnapshot | None] = {}
    for index, call in enumerate(pending):
        arrival[index] = _snapshot(cached, fresh, call, report,
                                   not_before=call.event.ts - timedelta(seconds=FRESH_PRICE_S))
        _remember_token(engine, call, arrival[index], clock())
    for index in sorted(range(len(pending)), key=lambda i: pending[i].closes_at):
        call = pending[index]
        wait = (call.closes_at - clock()).total_seconds()
        if wait > 0:
            sleep(wait)
        closing = _snapshot(None, fresh, call, report, not_before=None)
        row = _score(call, arrival[index], closing, store=store, engine=engine, config=config,
                     params=params, now=clock())
        report.rows.append(row)
        signal_id = _enqueue(engine, call, row, params)
        if signal_id is not None:
            report.enqueued.append(signal_id)
            if on_enqueued is not None:
                on_enqueued(signal_id)
    report.cache_hit_rate = cached.hit_rate if cached is not None else None
    return report


#: Where an EVM address whose chain the message did not name is looked for, in this order.
EVM_SEARCH_ORDER = ("ethereum", "base", "bsc", "arbitrum", "polygon", "optimism", "avalanche")


def _resolve_evm_chain(call: Call, dex: Any, report: ValidationReport) -> Call:
    """A call extracted with chain ``evm`` takes the first chain DexScreener lists it on, so its
    base-token key (and its context counts) match mentions that named the chain."""
    if call.chain != "evm":
        return call
    for chain in EVM_SEARCH_ORDER:
        try:
            if dex.best_pair(chain, call.address) is not None:
                return replace(call, chain=chain, base_token=base_token_key(chain, call.address))
        except (MarketDataError, ValueError) as error:
            report.errors[f"{call.event.event_id} {chain}:{call.address}"] = str(error)
    return call


def _snapshot(cached: Any, fresh: DexScreenerSource, call: Call, report: ValidationReport, *,
              not_before: datetime | None) -> PairSnapshot | None:
    """The cached pair when it was fetched at or after ``not_before`` (the sidecar prices each
    call as it arrives, see ``streaming/arrival.py``), else a fresh fetch."""
    try:
        if cached is not None and not_before is not None:
            pair = cached.best_pair(call.chain, call.address)
            if pair is None or pair.fetched_at >= not_before:
                return pair
        return fresh.best_pair(call.chain, call.address)
    except (MarketDataError, ValueError) as error:
        report.errors[f"{call.event.event_id} {call.chain}:{call.address}"] = str(error)
        logger.warning("DexScreener failed for %s:%s: %s", call.chain, call.address, error)
        return None


def _score(call: Call, arrival: PairSnapshot | None, closing: PairSnapshot | None, *, store: SocialStore,
           engine: Engine, config: SignalworksSocialConfig, params: ScoringParams, now: datetime) -> dict[str, Any]:
    spam_cfg = config.spam
    horizon = max(call.window_s, spam_cfg.wave_window_s)
    nearby = events_between(store, call.event.ts - timedelta(seconds=horizon), call.closes_at)
    mentions = [Mention(str(e.event_id), e.channel, e.author or "", e.ts, _mention_key(t, call))
                for e in nearby for t in e.tokens]
    me = Mention(str(call.event.event_id), call.event.channel, call.event.author or "", call.event.ts, call.base_token)
    (context,) = mention_contexts([me], mentions, window_s=call.window_s)
    waves = coordinated_waves([WaveMessage(str(e.event_id), e.channel, e.ts, e.text) for e in nearby],
                              window_s=spam_cfg.wave_window_s, min_channels=spam_cfg.wave_min_channels,
                              similarity=spam_cfg.wave_similarity)
    wave = waves.get(str(call.event.event_id))
    spam = spam_assessment(call.event.text, patterns=spam_cfg.patterns)
    reputation = source_reputation(_outcomes(engine, call.event.channel, now), channel=call.event.channel, as_of=now)
    pair = closing or arrival
    factors = CallFactors(
        listed=pair is not None,
        price_at_call=arrival.price_usd if arrival else None, price_at_close=closing.price_usd if closing else None,
        liquidity_usd=pair.liquidity_usd if pair else None, volume_24h_usd=pair.volume_24h_usd if pair else None,
        market_cap_usd=pair.market_cap_usd if pair else None, fdv_usd=pair.fdv_usd if pair else None,
        pair_age_h=pair.age(call.event.ts) / 3600 if pair and pair.age(call.event.ts) is not None else None,
        channels=context.channels, authors=context.authors, mentions=context.mentions,
        channel_weight=call.channel_weight, reputation=reputation.score, spam_score=spam.score,
        wave_size=wave.size if wave else 0,
    )
    scored = score_call(factors, params)
    row = {
        "event_id": call.event.event_id, "chain": call.chain, "address": call.address, "base_token": call.base_token,
        "symbol": pair.base_symbol if pair else None, "source": call.event.source, "channel": call.event.channel,
        "author": call.event.author, "called_at": call.event.ts, "window_s": call.window_s, "validated_at": now,
        "price_at_call": factors.price_at_call, "price_at_close": factors.price_at_close,
        "reaction_pct": factors.reaction_pct, "liquidity_usd": factors.liquidity_usd,
        "volume_24h_usd": factors.volume_24h_usd, "market_cap_usd": factors.market_cap_usd,
        "pair_age_h": factors.pair_age_h, "pair_address": pair.pair_address if pair else None,
        "mention_channels": context.channels, "mention_authors": context.authors,
        "channel_weight": call.channel_weight, "reputation": reputation.score, "spam_score": spam.score,
        "wave_size": factors.wave_size, "score": scored.score, "threshold": params.threshold, "passed": scored.passed,
        "factors": json.dumps({**scored.to_metadata(), "spam_reasons": list(spam.reasons),
                               "arrival_lag_s": _lag_s(arrival, call.event.ts),
                               "reputation_calls": reputation.calls, "mentions": context.mentions,
                               "echo": context.echo_of is not None, "dex": pair.dex if pair else None},
                              sort_keys=True, default=str),
    }
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    with engine.begin() as connection:
        connection.execute(insert(validations).values(**row).on_conflict_do_nothing(
            index_elements=["event_id", "chain", "address"]))
    return row


def _lag_s(snapshot: PairSnapshot | None, called_at: datetime) -> float | None:
    """How long after the call its arrival snapshot was fetched (negative: served from a cache
    entry fetched shortly before the call)."""
    return None if snapshot is None else round((snapshot.fetched_at - called_at).total_seconds(), 3)


def _mention_key(token: dict[str, Any], call: Call) -> str:
    """A mention whose EVM chain was not named counts for the call's (resolved) chain."""
    chain = token["chain"]
    if chain == "evm" and token["address"].lower() == call.address.lower():
        chain = call.chain
    return base_token_key(chain, token["address"])


def _enqueue(engine: Engine, call: Call, row: dict[str, Any], params: ScoringParams) -> int | None:
    factors = json.loads(row["factors"])
    near_miss = not row["passed"] and not factors["rejections"] and row["score"] >= params.threshold - REVIEW_MARGIN
    if not (row["passed"] or near_miss):
        return None
    payload = {k: row[k] for k in ("symbol", "chain", "address", "liquidity_usd", "market_cap_usd",
                                   "volume_24h_usd", "reaction_pct", "window_s", "channel", "source", "score")}
    payload.update(price_usd=row["price_at_close"], channels=row["mention_channels"], authors=row["mention_authors"],
                   review_only=near_miss, event_id=row["event_id"],
                   chart_url=f"https://dexscreener.com/{call.chain}/{row['pair_address'] or call.address}")
    return Outbox(engine).enqueue(
        kind="social", origin=f"call:{call.event.event_id}:{call.chain}:{call.address}", base_token=call.base_token,
        confidence=row["score"], payload=payload, chain=call.chain, address=call.address, symbol=row["symbol"],
        source=call.event.source, channel=call.event.channel, now=row["validated_at"])


def _validated(engine: Engine, call: Call) -> bool:
    query = select(validations.c.validation_id).where(
        validations.c.event_id == call.event.event_id, validations.c.chain == call.chain,
        validations.c.address == call.address)
    with engine.connect() as connection:
        return connection.execute(query).first() is not None


def _outcomes(engine: Engine, channel: str, now: datetime) -> list[CallOutcome]:
    """Past calls of ``channel`` whose window had closed before ``now``: their reaction is their outcome."""
    query = select(validations.c.validated_at, validations.c.reaction_pct).where(
        validations.c.channel == channel, validations.c.validated_at < now, validations.c.reaction_pct.is_not(None))
    with engine.connect() as connection:
        return [CallOutcome(ts, channel, float(pct)) for ts, pct in connection.execute(query).all()]


def _remember_token(engine: Engine, call: Call, pair: PairSnapshot | None, now: datetime) -> None:
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    with engine.begin() as connection:
        connection.execute(insert(tokens).values(
            chain=call.chain, address=call.address, base_token=call.base_token,
            symbol=pair.base_symbol if pair else None, first_seen=now,
        ).on_conflict_do_nothing(index_elements=["chain", "address"]))
