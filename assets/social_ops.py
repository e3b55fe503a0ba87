"""Ops of the social path: validate calls, then publish (jobs are assembled in orchestration)."""

from dagster import Config, In, MetadataValue, Nothing, OpExecutionContext, Out, op
from pydantic import Field

from assets.publishing import PublishersResource, publish_pending, run_publish
from assets.validation import validate_calls
from resources.publishers.outbox import Outbox
from resources.social_resources import DexScreenerResource, SocialConfigResource
from resources.warehouse.resource import WarehouseResource
from resources.warehouse.social import SocialStore


class ValidateCallsConfig(Config):
    event_ids: list[int] = Field(description="social_events ids to validate (each call once, ever)")


def _table(rows: list[dict]) -> MetadataValue:
    columns = ("event_id", "channel", "chain", "symbol", "score", "passed", "reaction_pct", "liquidity_usd",
               "mention_channels", "reputation", "spam_score", "wave_size")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows[:100]:
        lines.append("| " + " | ".join(
            f"{row[c]:.3g}" if isinstance(row[c], float) else str(row[c]) for c in columns) + " |")
    return MetadataValue.md("\n".join(lines))


@op(out=Out(Nothing), description="Validate calls once their window has closed; enqueue those that pass "
    "and publish each at once.")
def validate_calls_op(context: OpExecutionContext, config: ValidateCallsConfig, warehouse: WarehouseResource,
                      dexscreener: DexScreenerResource, social_config: SocialConfigResource,
                      publishers: PublishersResource) -> None:
    engine = warehouse.store().engine
    store = SocialStore(engine)
    clock = dexscreener.run_clock(min((e.ts for e in store.by_ids(config.event_ids)), default=None))
    outbox = Outbox(engine)
    with dexscreener.session(clock.now) as dex:  # one client and the cache file, closed when the run is done
        built = publishers.build()
        try:
            report = validate_calls(config.event_ids, store=store, engine=engine, fresh=dex.client,
                                    cached=dex.cached, config=social_config.load(), clock=clock.now,
                                    sleep=clock.sleep,
                                    on_enqueued=lambda _signal_id: publish_pending(outbox, built, now=clock.now(),
                                                                                   kinds=("social",)))
        finally:
            for publisher in built:
                publisher.close()
    passed = sum(1 for row in report.rows if row["passed"])
    context.add_output_metadata({
        "calls": len(report.rows), "passed": passed, "enqueued": len(report.enqueued),
        "already_validated": report.already, "cache_hit_rate": report.cache_hit_rate,
        "errors": MetadataValue.json(report.errors), "validations": _table(report.rows),
    })
    context.log.info("validated %d calls: %d passed, %d enqueued, cache hit rate %s", len(report.rows), passed,
                     len(report.enqueued), report.cache_hit_rate)


@op(ins={"after": In(Nothing)}, description="Drain the signals outbox to every publisher.")
def publish_signals_op(context: OpExecutionContext, warehouse: WarehouseResource,
                       publishers: PublishersResource) -> dict[str, int]:
    report = run_publish(context, warehouse, publishers)
    context.add_output_metadata({"signals": report.signals, "outcomes": MetadataValue.json(dict(report.outcomes)),
                                 "per_publisher": MetadataValue.json({k: dict(v) for k, v in report.per_publisher.items()}),
                                 "errors": MetadataValue.json(report.errors)})
    return dict(report.outcomes)
