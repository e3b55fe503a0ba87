"""Draining the signals outbox: route, claim, send, record (context-free, then the Dagster op)."""

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dagster import ConfigurableResource, OpExecutionContext
from pydantic import Field

from ml.signals.routing import by_priority, route
from resources.exchanges.errors import MarketDataError
from resources.publishers.messages import render_signal
from resources.publishers.outbox import Outbox, OutboxSignal
from resources.publishers.senders import Message, Publisher, build_publishers
from resources.social_config import load_social_config
from resources.warehouse.resource import WarehouseResource

logger = logging.getLogger(__name__)


@dataclass
class PublishReport:
    outcomes: Counter[str] = field(default_factory=Counter)
    per_publisher: dict[str, Counter[str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    signals: int = 0

    def count(self, publisher: str, status: str) -> None:
        self.outcomes[status] += 1
        self.per_publisher.setdefault(publisher, Counter())[status] += 1


def publish_pending(outbox: Outbox, publishers: list[Publisher], *, now: datetime | None = None,
                    limit: int = 500) -> PublishReport:
    """Deliver every pending signal to every publisher, highest priority first.

    A publisher failing for one signal (network, rate limit, refusal) never stops the other
    publishers or signals: its claim rolls back, the error is reported and the signal stays
    pending for that publisher, to be retried by the next run.
    """
    report = PublishReport()
    ordered = {p.name: p for p in publishers}
    names = by_priority([(p.name, p.priority) for p in publishers])
    finished: list[int] = []
    for signal in outbox.pending(limit=limit):
        report.signals += 1
        complete = True
        for name in names:
            publisher = ordered[name]
            try:
                status = _deliver_one(outbox, publisher, signal, now)
            except MarketDataError as error:
                complete = False
                report.errors[f"{name} signal {signal.signal_id}"] = str(error)
                status = "error"
                logger.warning("publisher %s failed on signal %d: %s", name, signal.signal_id, error)
            report.count(name, status)
        if complete:
            finished.append(signal.signal_id)
    outbox.close_signals(finished, now=now)
    return report


def _deliver_one(outbox: Outbox, publisher: Publisher, signal: OutboxSignal, now: datetime | None) -> str:
    decision = route(confidence=signal.confidence, chain=signal.chain, source=signal.source, rules=publisher.rules,
                     review_only=bool(signal.payload.get("review_only")))
    if decision.action == "skip":
        return outbox.skip(signal, publisher.name, decision.reason or "routing", now=now).status
    review = decision.action == "review"
    html = render_signal(signal.kind, signal.payload, confidence=signal.confidence, review=review,
                         template=getattr(publisher, "template", None))
    message = Message(signal.signal_id, html, {**signal.payload, "confidence": signal.confidence,
                                               "kind": signal.kind, "base_token": signal.base_token},
                      review=review)
    moment = now or datetime.now(UTC)
    expires = moment + timedelta(hours=publisher.expiry_hours) if publisher.expiry_hours else None
    return outbox.deliver(
        signal, publisher.name, lambda: publisher.send(message),
        blacklist=not review and signal.base_token not in publisher.blacklist_exceptions,
        expires_at=expires, status="review" if review else "sent", now=now,
    ).status


class PublishersResource(ConfigurableResource):
    """The publishers of ``config/sources.yaml``; their secrets come from environment variables
    named in that file and are read when a run builds them."""

    config_path: str = Field(description="path of config/sources.yaml")
    home: str = Field(description="data home: the console publisher writes publications.jsonl there")
    telegram_base_url: str = "https://api.telegram.org"
    dry_run: bool = Field(default=False, description="every publisher writes to publications.jsonl instead")

    def build(self) -> list[Publisher]:
        config = load_social_config(Path(self.config_path))
        return build_publishers(config.publishers, home=Path(self.home), telegram_base_url=self.telegram_base_url,
                                dry_run=self.dry_run)


def run_publish(context: OpExecutionContext, warehouse: WarehouseResource,
                publishers: PublishersResource) -> PublishReport:
    built = publishers.build()
    try:
        report = publish_pending(Outbox(warehouse.store().engine), built)
    finally:
        for publisher in built:
            publisher.close()
    context.log.info("published: %s over %d signals", dict(report.outcomes), report.signals)
    for key, error in report.errors.items():
        context.log.warning("%s: %s", key, error)
    return report


