"""Jobs: market-data refreshes and the weekly 1m-candle retention."""


from datetime import UTC, datetime, timedelta
from typing import Protocol

from dagster import (
    AssetSelection,
    Config,
    JobDefinition,
    OpExecutionContext,
    ScheduleDefinition,
    define_asset_job,
    in_process_executor,
    job,
    op,
)
from pydantic import Field

from assets.market_signals import market_signals_op
from assets.scorecards import send_scorecard_digest
from assets.social_ops import publish_signals_op, validate_calls_op
from resources.warehouse.resource import WarehouseResource

#: Run tag that sorts runs into lanes; the instance templates in ``deploy/`` cap the market lane
#: so that validation runs, which wait inside their call's window, always find a free run slot.
LANE_TAG = "signalworks/lane"
MARKET_LANE = {LANE_TAG: "market"}
#: Validation runs are dequeued before anything else (higher ``dagster/priority`` goes first).
SOCIAL_LANE = {LANE_TAG: "social", "dagster/priority": "10"}
#: Market-signal runs: latency-bound and short, dequeued after validation but before market data (no cap).
SIGNALS_LANE = {LANE_TAG: "signals", "dagster/priority": "5"}


class AssetJob(Protocol):
    """What ``define_asset_job`` returns: an asset job resolved against the Definitions' assets
    when they are built. Dagster does not export its class, so it is typed by what we use."""

    @property
    def name(self) -> str: ...


def candle_job(timeframe: str) -> AssetJob:
    """The 1h job also rebuilds the multi-timeframe candles and the indicators of its partitions; the
    1m job the 5m and 15m candles built from its 1m candles."""
    selection = AssetSelection.assets(f"candles_{timeframe}")
    if timeframe == "1h":
        selection = selection | AssetSelection.assets("candles_mtf", "indicators")
    if timeframe == "1m":
        selection = selection | AssetSelection.assets("candles_subhour")
    return define_asset_job(
        f"candles_{timeframe}_job",
        selection=selection,
        tags=MARKET_LANE,
        description=f"Closed {timeframe} candles for one day x exchange partition"
        + {"1h": ", then the 2h..1M candles built from them and every indicator.",
           "1m": ", then the 5m and 15m candles built from them."}.get(timeframe, "."),
    )


markets_job = define_asset_job("markets_job", selection=AssetSelection.assets("markets"), tags=MARKET_LANE)
derivatives_job = define_asset_job("derivatives_job", selection=AssetSelection.assets("derivatives"),
                                   tags=MARKET_LANE)
coingecko_job = define_asset_job("coingecko_job", selection=AssetSelection.assets("coingecko_markets"),
                                 tags=MARKET_LANE)


# -- reports ---------------------------------------------------------------------------------------
def report_jobs() -> tuple[AssetJob, AssetJob]:
    """``walk_forward_report_job`` (one run per segment partition) and ``risk_report_job``; both in
    the market lane, whose cap keeps these CPU-heavy runs from crowding out validation runs."""
    walk_forward = define_asset_job(
        "walk_forward_report_job", selection=AssetSelection.assets("walk_forward_report"), tags=MARKET_LANE,
        description="One segment's walk-forward report (retrained per window, after costs, with baselines, "
        "PBO and deflated Sharpe).")
    risk = define_asset_job(
        "risk_report_job", selection=AssetSelection.assets("risk_report"), tags=MARKET_LANE,
        description="Monte Carlo risk of the segments' symbols, their portfolio and the strategies' "
        "realised returns.")
    return walk_forward, risk


def build_retention_job(default_days: int) -> JobDefinition:
    class RetentionConfig(Config):
        keep_days: int = Field(default=default_days, gt=0, description="keep this many days of 1m candles")

    @op(name="delete_old_1m_candles")
    def delete_old_1m_candles(context: OpExecutionContext, config: RetentionConfig,
                              warehouse: WarehouseResource) -> int:
        """Delete 1m candles whose open time is older than ``keep_days`` days before now."""
        cutoff = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
            days=config.keep_days)
        deleted = warehouse.store().delete_candles_before(timeframe="1m", before=cutoff)
        context.log.info("deleted %d 1m candles older than %s", deleted, cutoff.isoformat())
        return deleted

    @job(name="candles_1m_retention_job", description="Weekly: drop 1m candles past the retention window.",
         tags=MARKET_LANE)
    def candles_1m_retention_job() -> None:
        delete_old_1m_candles()

    return candles_1m_retention_job


def validate_calls_job() -> JobDefinition:
    # In-process: a step subprocess would add seconds of start-up to every call's latency.
    @job(name="validate_calls_job", description="Validate new social calls once their window closes, "
         "then publish what passed (requested by social_events_sensor).",
         executor_def=in_process_executor, tags=SOCIAL_LANE)
    def _validate_calls_job() -> None:
        publish_signals_op(after=validate_calls_op())

    return _validate_calls_job


def publish_signals_job() -> JobDefinition:
    @job(name="publish_signals_job", description="Drain the signals outbox (retries what a publisher "
         "could not take earlier).", executor_def=in_process_executor, tags=SOCIAL_LANE)
    def _publish_signals_job() -> None:
        publish_signals_op()

    return _publish_signals_job


def market_signals_job() -> JobDefinition:
    # In-process like validation: a subprocess per step would add seconds between candle and chat.
    @job(name="market_signals_job", description="Build the 5m/15m candles of new 1m candles, run the market "
         "strategies for the markets that got them, enqueue new signals and publish them (requested by "
         "new_candles_sensor).", executor_def=in_process_executor, tags=SIGNALS_LANE)
    def _market_signals_job() -> None:
        publish_signals_op(after=market_signals_op())

    return _market_signals_job


def publish_schedule(job_def: JobDefinition) -> ScheduleDefinition:
    return ScheduleDefinition(name="publish_signals_schedule", job=job_def, cron_schedule="* * * * *",
                              execution_timezone="UTC")


# -- models (issue 10) ------------------------------------------------------------------------------
#: Rebuilds the dataset hourly, and the predictions from the models usable then.
model_features_job = define_asset_job(
    "model_features_job", selection=AssetSelection.assets("features", "predictions"), tags=MARKET_LANE,
    description="The feature dataset over its window (run config: window_days, default 90; horizon, default 4), "
    "then the latest predictions of every usable model.")
#: One segment per run (partition); the blocking checks gate ``predictions`` in the same run.
xgb_training_job = define_asset_job(
    "xgb_training_job", selection=AssetSelection.assets("xgb_models", "predictions"), tags=MARKET_LANE,
    description="Retrain one segment's XGBoost model (run config: window_days, default 60; expiry_hours, "
    "default 24), check it (blocking), then refresh the predictions.")
regime_training_job = define_asset_job(
    "regime_training_job", selection=AssetSelection.assets("regime_model"), tags=MARKET_LANE,
    description="Refit the HMM regime model of every segment (run config: window_days, default 60).")


# -- paper accounts and scorecards (issue 11) -------------------------------------------------------
paper_accounts_job = define_asset_job(
    "paper_accounts_job", selection=AssetSelection.assets("paper_accounts"), tags=MARKET_LANE,
    description="Fill the market signals each publisher sent in its paper account (incremental).")
scorecards_job = define_asset_job(
    "scorecards_job", selection=AssetSelection.assets("scorecards"), tags=MARKET_LANE,
    description="Scorecards of the signals published over the last days (run config: days, default 30).")


def scorecard_digest_job() -> JobDefinition:
    @job(name="scorecard_digest_job", description="The previous UTC day's scorecard to the digest chat of the "
         "sources config (run config: day).", executor_def=in_process_executor, tags=MARKET_LANE)
    def _scorecard_digest_job() -> None:
        send_scorecard_digest()

    return _scorecard_digest_job


# -- signal outcomes (issue 11) ---------------------------------------------------------------------
def signal_outcomes_job() -> AssetJob:
    """Outcomes of published signals, every minute (``signal_outcomes_schedule``). In-process and in
    the social lane: a social call's +h price can only be snapshotted during its minute, so the run
    must neither pay a step subprocess's start-up nor queue behind capped market-data runs."""
    return define_asset_job(
        "signal_outcomes_job", selection=AssetSelection.assets("signal_outcomes"), tags=SOCIAL_LANE,
        executor_def=in_process_executor,
        description="Returns at +1..15 min (and market trade exits) of every published signal whose horizons "
        "have closed; DexScreener snapshots of social calls due this minute.")
