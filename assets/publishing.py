"""Draining the signals outbox: route, claim, send, record (context-free, then the Dagster op)."""

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dagster import ConfigurableResource, OpExecutionContext
from pydantic import Field

from ml.signals.routing import MARKET_KINDS, by_priority, route, signal_age_s, signal_time
from resources.exchanges.errors import MarketDataError
from resources.publishers.flood import SendWindowClosedError
from resources.publishers.messages import render_signal
from resources.publishers.outbox import Delivery, Outbox, OutboxSignal
from resources.publishers.senders import Message, Publisher, build_publishers
from resources.social_config import load_social_config
from resources.warehouse.resource import WarehouseResource

logger = logging.getLogger(__name__)


@dataclass
class PublishReport:
    outcomes: Counter[str] = field(default_factory=Counter)
    per_publisher: dict[str, Counter[str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    #: (signal id, publisher, reason) of every market signal found too old at its turn to be sent
    expired: list[tuple[int, str, str]] = field(default_factory=list)
    signals: int = 0

    def count(self, publisher: str, status: str) -> None:
        self.outcomes[status] += 1
        self.per_publisher.setdefault(publisher, Counter())[status] += 1


def publish_pending(outbox: Outbox, publishers: list[Publisher], *, now: datetime | None = None,
                    limit: int = 500, clock: Callable[[], datetime] | None = None,
                    kinds: Sequence[str] | None = None,
                    signal_clock: Callable[[OutboxSignal], datetime] | None = None) -> PublishReport:
    """Deliver every pending signal (of ``kinds``, when given) to every publisher, highest priority first.

    The time of each delivery is ``signal_clock(signal)`` when given (a replay: each signal at
    its own moment), else ``clock()`` (read once per signal and publisher), else ``now``, else
    the wall clock then.

    A publisher failing for one signal (network, rate limit, refusal) never stops the other
    publishers or signals: its claim rolls back, the error is reported and the signal stays
    pending for that publisher, to be retried by the next run.

    A market signal or funding alert older than the publisher's MAX_SIGNAL_AGE when its turn to
    be sent comes (at the check, or by the time Telegram's flood limits would let it through) is
    not sent: its delivery is recorded ``expired`` with the age in the reason. A signal every
    publisher expired (and none sent) is closed as ``expired`` rather than ``done``.
    """
    report = PublishReport()
    ordered = {p.name: p for p in publishers}
    names = by_priority([(p.name, p.priority) for p in publishers])
    finished: list[int] = []
    all_expired: list[int] = []
    for signal in outbox.pending(limit=limit, kinds=kinds):
        report.signals += 1
        complete = True
        statuses: list[str] = []
        for name in names:
            publisher = ordered[name]
            try:
                moment = (signal_clock(signal) if signal_clock is not None else clock() if clock is not None
                          else now)
                delivery = _deliver_one(outbox, publisher, signal, moment)
            except MarketDataError as error:
                complete = False
                report.errors[f"{name} signal {signal.signal_id}"] = str(error)
                statuses.append("error")
                report.count(name, "error")
                logger.warning("publisher %s failed on signal %d: %s", name, signal.signal_id, error)
                continue
            statuses.append(delivery.status)
            report.count(name, delivery.status)
            if delivery.status == "expired":
                report.expired.append((signal.signal_id, name, delivery.reason or "expired"))
            elif delivery.status == "failed":
                report.errors[f"{name} signal {signal.signal_id}"] = delivery.reason or "failed"
        if complete:
            (all_expired if "expired" in statuses and not {"sent", "review"} & set(statuses)
             else finished).append(signal.signal_id)
    closed_at = clock() if clock is not None else now
    outbox.close_signals(finished, now=closed_at)
    outbox.close_signals(all_expired, now=closed_at, status="expired")
    return report


def _deliver_one(outbox: Outbox, publisher: Publisher, signal: OutboxSignal, now: datetime | None) -> Delivery:
    payload = signal.payload
    decision = route(confidence=signal.confidence, chain=signal.chain, source=signal.source, rules=publisher.rules,
                     review_only=bool(payload.get("review_only")), kind=signal.kind,
                     strategy=payload.get("strategy"), symbol=signal.symbol or payload.get("symbol"),
                     risk_level=payload.get("risk_level"))
    if decision.action == "skip":
        return outbox.skip(signal, publisher.name, decision.reason or "routing", now=now)
    moment = now or datetime.now(UTC)
    send_within_s, age = None, 0.0
    if signal.kind in MARKET_KINDS:
        try:
            age = signal_age_s(signal.kind, payload, signal.created_at, moment)
        except ValueError as error:
            return outbox.record(signal, publisher.name, "failed", f"cannot date the signal: {error}", now=now)
        if age > publisher.max_signal_age_s:
            return outbox.record(signal, publisher.name, "expired",
                                 f"{age:.0f}s old at its turn, over MAX_SIGNAL_AGE {publisher.max_signal_age_s:.0f}s",
                                 now=now)
        send_within_s = publisher.max_signal_age_s - age
    review = decision.action == "review"
    try:
        html = render_signal(signal.kind, payload, confidence=signal.confidence, review=review,
                             template=publisher.templates.get(signal.kind))
    except (KeyError, ValueError, TypeError) as error:
        return outbox.record(signal, publisher.name, "failed", f"cannot render the {signal.kind} signal: {error}",
                             now=now)
    message = Message(signal.signal_id, html, {**payload, "confidence": signal.confidence,
                                               "kind": signal.kind, "base_token": signal.base_token},
                      review=review, send_within_s=send_within_s)
    expires = moment + timedelta(hours=publisher.expiry_hours) if publisher.expiry_hours else None
    # Market signals are not blacklisted per token: the strategies' cooldown per (strategy,
    # symbol, direction) already makes one move one signal, and BTC must not be published once ever.
    blacklist = signal.kind == "social" and not review and signal.base_token not in publisher.blacklist_exceptions
    try:
        return outbox.deliver(signal, publisher.name, lambda: publisher.send(message), blacklist=blacklist,
                              expires_at=expires, status="review" if review else "sent", now=now)
    except SendWindowClosedError as closed:
        held = (send_within_s or 0.0) - closed.deadline_in_s + closed.ready_in_s
        return outbox.record(signal, publisher.name, "expired",
                             f"the flood limits would hold it {closed.ready_in_s:.0f}s, past MAX_SIGNAL_AGE "
                             f"{publisher.max_signal_age_s:.0f}s (it would be {age + held:.0f}s old)", now=now)


class PublishersResource(ConfigurableResource):
    """The publishers of ``config/sources.yaml``; their secrets come from environment variables
    named in that file and are read when a run builds them."""

    config_path: str = Field(description="path of config/sources.yaml")
    home: str = Field(description="data home: the console publisher writes publications.jsonl there")
    telegram_base_url: str = "https://api.telegram.org"
    dry_run: bool = Field(default=False, description="every publisher writes to publications.jsonl instead")
    frozen_clock: str | None = Field(default=None, description="ISO UTC instant the publish op takes as now "
                                     "(signal ages, claims; tests and replays); default: the wall clock")
    replay_delay_s: float | None = Field(
        default=None, ge=0, description="replays of past candles only: deliver each signal at its own time (a "
        "market signal's trigger candle close, a funding alert's snapshot, else its enqueueing) plus this many "
        "seconds, at the latest now; default: the wall clock (or frozen_clock)")

    def now(self) -> datetime | None:
        """The frozen instant, or None for the wall clock at each delivery."""
        if self.frozen_clock is None:
            return None
        moment = datetime.fromisoformat(self.frozen_clock)
        if moment.tzinfo is None:
            raise ValueError(f"frozen_clock {self.frozen_clock!r} needs a timezone (e.g. +00:00)")
        return moment

    def replay_clock(self) -> Callable[[OutboxSignal], datetime] | None:
        """With ``replay_delay_s``: each signal's delivery time, its own time plus the delay, never
        later than now (``frozen_clock`` or the wall clock); None otherwise."""
        if self.replay_delay_s is None:
            return None
        delay = timedelta(seconds=self.replay_delay_s)

        def delivered_at(signal: OutboxSignal) -> datetime:
            now = self.now() or datetime.now(UTC)
            try:
                moment = signal_time(signal.kind, signal.payload, signal.created_at) + delay
            except ValueError:  # undatable: _deliver_one records it failed
                return now
            return min(moment, now)

        return delivered_at

    def build(self) -> list[Publisher]:
        config = load_social_config(Path(self.config_path))
        return build_publishers(config.publishers, home=Path(self.home), telegram_base_url=self.telegram_base_url,
                                dry_run=self.dry_run, max_signal_age_s=config.max_signal_age_s)


def run_publish(context: OpExecutionContext, warehouse: WarehouseResource,
                publishers: PublishersResource) -> PublishReport:
    built = publishers.build()
    try:
        report = publish_pending(Outbox(warehouse.store().engine), built, now=publishers.now(),
                                 signal_clock=publishers.replay_clock())
    finally:
        for publisher in built:
            publisher.close()
    context.log.info("published: %s over %d signals", dict(report.outcomes), report.signals)
    for key, error in report.errors.items():
        context.log.warning("%s: %s", key, error)
    for signal_id, publisher, reason in report.expired:
        context.log.warning("signal %d expired for %s, not sent: %s", signal_id, publisher, reason)
    return report


