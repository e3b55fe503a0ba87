"""``social_events_sensor``: turns what the sidecar stored into validation runs."""

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from dagster._core.definitions.job_definition import JobDefinition

from resources.warehouse.resource import WarehouseResource
from resources.warehouse.social import SocialStore

BATCH = 500


def build_social_events_sensor(job: JobDefinition, *, interval_s: int = 5) -> SensorDefinition:
    """Cursor = the last ``social_events.event_id`` seen. Each tick requests ONE run for the
    events with token mentions that arrived since (batched, not one run per message); its
    run_key is derived from their ids, so the same events are never validated twice. The run is
    requested on arrival and waits inside the validation window, hiding the run start-up time."""

    @sensor(name="social_events_sensor", job=job, minimum_interval_seconds=interval_s,
            default_status=DefaultSensorStatus.RUNNING)
    def social_events_sensor(context: SensorEvaluationContext, warehouse: WarehouseResource) -> SensorResult | SkipReason:
        after = int(context.cursor or 0)
        events = SocialStore(warehouse.store().engine).after(after, limit=BATCH)
        if not events:
            return SkipReason(f"no event after id {after}")
        calls = [e.event_id for e in events if e.tokens]
        cursor = str(events[-1].event_id)
        if not calls:
            return SensorResult(skip_reason=SkipReason(f"{len(events)} events without token calls"), cursor=cursor)
        request = RunRequest(
            run_key=f"validate:{calls[0]}-{calls[-1]}:{len(calls)}",
            run_config={"ops": {"validate_calls_op": {"config": {"event_ids": calls}}}},
            tags={"signalworks/first_event": str(calls[0]), "signalworks/last_event": str(calls[-1])},
        )
        return SensorResult(run_requests=[request], cursor=cursor)

    return social_events_sensor
