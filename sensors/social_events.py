"""``social_events_sensor``: turns what the sidecar stored into validation runs."""

from __future__ import annotations

import time
from collections.abc import Callable

from dagster import (
    DefaultSensorStatus,
    JobDefinition,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from resources.warehouse.resource import WarehouseResource
from resources.warehouse.social import last_validated_event_id, read_for_sensor
from sensors.event_cursor import Awaited, EventCursor, WaitPolicy, advance, run_key

BATCH = 500


def build_social_events_sensor(job: JobDefinition, *, interval_s: int = 5, wait: WaitPolicy | None = None,
                               clock: Callable[[], float] = time.time) -> SensorDefinition:
    """Each tick requests ONE run for the events with token mentions that became visible since
    the last tick (batched, not one run per message). Progress is commit-order safe: an event
    whose id was taken before a higher one but committed after it is still requested, once
    (:mod:`sensors.event_cursor`). The run key is a digest of the batch's ids, so the same
    events are never requested twice. The run is requested on arrival and waits inside the
    validation window, hiding the run start-up time.

    Without a cursor (first start of a Dagster instance, or a cursor cleared in the UI) the
    sensor starts after the last event the warehouse has validated, so the events a demo or an
    earlier instance already handled are not requested again. ``clock`` (epoch seconds) times
    how long a missing id is awaited (``wait``).
    """
    policy = wait or WaitPolicy()

    @sensor(name="social_events_sensor", job=job, minimum_interval_seconds=interval_s,
            default_status=DefaultSensorStatus.RUNNING)
    def social_events_sensor(context: SensorEvaluationContext, warehouse: WarehouseResource) -> SensorResult:
        engine = warehouse.store().engine
        if context.cursor:
            cursor = EventCursor.decode(context.cursor)
        else:
            cursor = EventCursor(high=last_validated_event_id(engine))
            context.log.info("no cursor: starting after event %d, the last one the warehouse validated",
                             cursor.high)
        read = read_for_sensor(engine, after=cursor.high, awaited=cursor.spans(), limit=BATCH)
        progress = advance(cursor, new_ids=[e.event_id for e in read.new], late_ids=[e.event_id for e in read.late],
                           now=clock(), xmin=read.bounds.xmin if read.bounds else None,
                           xmax=read.bounds.xmax if read.bounds else None, policy=policy)
        if progress.settled:
            context.log.debug("ids no transaction can still commit (burned or rolled back): %s",
                              _spans(progress.settled))
        if progress.forced:
            context.log.warning("stopped waiting for event ids %s after %.0f s or beyond %d awaited ranges; an "
                                "event committed later with one of these ids will not be validated",
                                _spans(progress.forced), policy.max_wait_s, policy.max_ranges)
        events = sorted([*read.late, *read.new], key=lambda e: e.event_id)
        calls = [e.event_id for e in events if e.tokens]
        new_cursor = progress.cursor.encode()
        if not calls:
            return SensorResult(skip_reason=f"{len(events)} new events, none with a token call "
                                f"(after id {cursor.high}, {len(progress.cursor.awaited)} id ranges awaited)",
                                cursor=new_cursor)
        request = RunRequest(
            run_key=run_key(calls),
            run_config={"ops": {"validate_calls_op": {"config": {"event_ids": calls}}}},
            tags={"signalworks/first_event": str(calls[0]), "signalworks/last_event": str(calls[-1]),
                  **({"signalworks/late_events": str(len(read.late))} if read.late else {})},
        )
        return SensorResult(run_requests=[request], cursor=new_cursor)

    return social_events_sensor


def _spans(ranges: tuple[Awaited, ...]) -> str:
    shown = ", ".join(f"{a.first}" if a.first == a.last else f"{a.first}-{a.last}" for a in ranges[:20])
    return shown + (f" (+{len(ranges) - 20} more ranges)" if len(ranges) > 20 else "")
