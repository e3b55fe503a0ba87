"""Schedules: hourly 1h candles, 5-minute 1m candles, 30-minute CoinGecko, hourly universe and
derivatives, weekly retention. All in UTC."""


from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

from dagster import (
    JobDefinition,
    MultiPartitionKey,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    schedule,
)

from orchestration.jobs import AssetJob


def todays_partitions(moment: datetime, exchanges: Sequence[str], *, grace: timedelta) -> list[MultiPartitionKey]:
    """Today's partition for every exchange, plus yesterday's while ``moment`` is within ``grace``
    of midnight (so the day's last candles, which close at 00:00, are written)."""
    days = [moment.date()]
    if moment - moment.replace(hour=0, minute=0, second=0, microsecond=0) < grace:
        days.insert(0, (moment - timedelta(days=1)).date())
    return [MultiPartitionKey({"date": d.isoformat(), "exchange": e}) for d in days for e in exchanges]


def candle_schedule(job_def: AssetJob, *, name: str, cron: str,
                    exchanges: Sequence[str], grace: timedelta) -> ScheduleDefinition:
    @schedule(name=name, job=job_def, cron_schedule=cron, execution_timezone="UTC")
    def _schedule(context: ScheduleEvaluationContext) -> Iterator[RunRequest]:
        moment = context.scheduled_execution_time
        for key in todays_partitions(moment, exchanges, grace=grace):
            yield RunRequest(run_key=f"{key}@{moment.isoformat()}", partition_key=key)

    return _schedule


# -- reports ---------------------------------------------------------------------------------------
#: Daily, in UTC: the walk-forward of every segment, then the risk report that reads them.
WALK_FORWARD_REPORT_CRON = "20 1 * * *"
RISK_REPORT_CRON = "20 3 * * *"


def report_schedules(*, walk_forward_job: AssetJob, risk_job: AssetJob,
                     segments: Sequence[str]) -> list[ScheduleDefinition]:
    """Daily walk-forward reports (one run per segment, so a failing segment stops no other) and,
    two hours later, the risk report over what they stored."""

    @schedule(name="walk_forward_report_schedule", job=walk_forward_job, cron_schedule=WALK_FORWARD_REPORT_CRON,
              execution_timezone="UTC")
    def walk_forward_report_schedule(context: ScheduleEvaluationContext) -> Iterator[RunRequest]:
        moment = context.scheduled_execution_time
        for segment in segments:
            yield RunRequest(run_key=f"{segment}@{moment.isoformat()}", partition_key=segment)

    risk = ScheduleDefinition(name="risk_report_schedule", job=risk_job, cron_schedule=RISK_REPORT_CRON,
                              execution_timezone="UTC")
    return [walk_forward_report_schedule, risk]


def build_schedules(*, candles_1h_job: AssetJob,
                    candles_1m_job: AssetJob,
                    markets_job: AssetJob,
                    derivatives_job: AssetJob,
                    coingecko_job: AssetJob,
                    retention_job: JobDefinition,
                    exchanges: Sequence[str]) -> list[ScheduleDefinition]:
    return [
        candle_schedule(candles_1h_job, name="candles_1h_schedule", cron="2 * * * *",
                        exchanges=exchanges, grace=timedelta(hours=2)),
        candle_schedule(candles_1m_job, name="candles_1m_schedule", cron="*/5 * * * *",
                        exchanges=exchanges, grace=timedelta(minutes=15)),
        ScheduleDefinition(name="markets_schedule", job=markets_job, cron_schedule="0 * * * *",
                           execution_timezone="UTC"),
        ScheduleDefinition(name="derivatives_schedule", job=derivatives_job, cron_schedule="1 * * * *",
                           execution_timezone="UTC"),
        ScheduleDefinition(name="coingecko_schedule", job=coingecko_job, cron_schedule="*/30 * * * *",
                           execution_timezone="UTC"),
        ScheduleDefinition(name="candles_1m_retention_schedule", job=retention_job,
                           cron_schedule="30 3 * * 0", execution_timezone="UTC"),
    ]


def segment_schedule(job_def: AssetJob, *, name: str, cron: str, segments: Sequence[str]) -> ScheduleDefinition:
    """One run per segment partition at each tick (run config: the assets' defaults)."""
    @schedule(name=name, job=job_def, cron_schedule=cron, execution_timezone="UTC")
    def _schedule(context: ScheduleEvaluationContext) -> Iterator[RunRequest]:
        moment = context.scheduled_execution_time
        for segment in segments:
            yield RunRequest(run_key=f"{segment}@{moment.isoformat()}", partition_key=segment)

    return _schedule


def model_schedules(*, features_job: AssetJob, xgb_job: AssetJob, regime_job: AssetJob,
                    segments: Sequence[str]) -> list[ScheduleDefinition]:
    """Features hourly after the 1h candles; XGBoost every 6 h, the HMM every 12 h, after the features."""
    return [
        ScheduleDefinition(name="model_features_schedule", job=features_job, cron_schedule="10 * * * *",
                           execution_timezone="UTC"),
        segment_schedule(xgb_job, name="xgb_training_schedule", cron="20 */6 * * *", segments=segments),
        ScheduleDefinition(name="regime_training_schedule", job=regime_job, cron_schedule="25 */12 * * *",
                           execution_timezone="UTC"),
    ]


# -- paper accounts and scorecards (issue 11) -------------------------------------------------------
#: Every five minutes, in UTC: the paper accounts catch up with the signals sent and the 1m candles stored.
PAPER_ACCOUNTS_CRON = "*/5 * * * *"


#: Hourly scorecards; the digest of the previous UTC day at 00:05 UTC, once its signals' +15 min have passed.
SCORECARDS_CRON = "15 * * * *"
DIGEST_CRON = "5 0 * * *"


def digest_schedule(job_def: JobDefinition) -> ScheduleDefinition:
    """One digest per UTC day: the run key is the day reported, so a day is never sent twice by the schedule."""

    @schedule(name="scorecard_digest_schedule", job=job_def, cron_schedule=DIGEST_CRON, execution_timezone="UTC")
    def scorecard_digest_schedule(context: ScheduleEvaluationContext) -> RunRequest:
        day = (context.scheduled_execution_time - timedelta(days=1)).date().isoformat()
        return RunRequest(run_key=f"digest:{day}",
                          run_config={"ops": {"send_scorecard_digest": {"config": {"day": day}}}})

    return scorecard_digest_schedule


def paper_schedules(*, paper_job: AssetJob, scorecards_job: AssetJob,
                    digest_job: JobDefinition) -> list[ScheduleDefinition]:
    return [ScheduleDefinition(name="paper_accounts_schedule", job=paper_job, cron_schedule=PAPER_ACCOUNTS_CRON,
                               execution_timezone="UTC"),
            ScheduleDefinition(name="scorecards_schedule", job=scorecards_job, cron_schedule=SCORECARDS_CRON,
                               execution_timezone="UTC"),
            digest_schedule(digest_job)]


def signal_outcomes_schedule(job_def: AssetJob) -> ScheduleDefinition:
    """Every minute: a horizon closes with each minute, and a social call's snapshot must be taken
    inside its minute (see ``assets/outcomes.py``)."""
    return ScheduleDefinition(name="signal_outcomes_schedule", job=job_def, cron_schedule="* * * * *",
                              execution_timezone="UTC")
