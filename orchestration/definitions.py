"""The one Dagster code location: ``defs`` is what ``workspace.yaml`` loads.

Heavy libraries (torch, xgboost, telethon, discord) are never imported here; a test checks it.
"""

from __future__ import annotations

import os
import warnings

from dagster import (
    AssetsDefinition,
    BetaWarning,
    Definitions,
    EnvVar,
    PreviewWarning,
    ScheduleDefinition,
)

from assets.candles import build_candles_asset
from assets.checks import build_candle_checks, build_mtf_checks
from assets.indicator_checks import build_indicator_checks
from assets.indicators import build_indicators_asset
from assets.model_checks import build_xgb_model_checks, predictions_models_usable
from assets.models import features, predictions, regime_model, xgb_models
from assets.mtf import build_mtf_asset
from assets.outcomes import outcomes_sound, signal_outcomes
from assets.paper import paper_accounts
from assets.publishing import PublishersResource
from assets.reference import build_coingecko_asset, derivatives, markets
from assets.reports import build_risk_report_asset, build_walk_forward_report_asset
from assets.scorecards import scorecards
from assets.subhour import build_subhour_asset
from ml.features.segments import SEGMENT_IDS
from orchestration.jobs import (
    AssetJob,
    build_retention_job,
    candle_job,
    coingecko_job,
    derivatives_job,
    market_signals_job,
    markets_job,
    model_features_job,
    paper_accounts_job,
    publish_schedule,
    publish_signals_job,
    regime_training_job,
    report_jobs,
    scorecard_digest_job,
    scorecards_job,
    signal_outcomes_job,
    validate_calls_job,
    xgb_training_job,
)
from orchestration.partitions import SEGMENTS_PATH, candle_partitions, segment_partitions
from orchestration.resource_config import with_values_as_defaults
from orchestration.schedules import (
    build_schedules,
    model_schedules,
    paper_schedules,
    report_schedules,
    signal_outcomes_schedule,
)
from orchestration.settings import Settings, get_settings
from resources.coingecko_resource import (
    CoinGeckoResource,
    LiveCoinGeckoResource,
    SimCoinGeckoResource,
)
from resources.exchanges.resource import ExchangeCredentials, ExchangeResource, is_simulated
from resources.feature_store import FeatureStoreResource
from resources.models.store import LocalModelStore, ModelStore, ObjectModelStore
from resources.report_store import ReportStoreResource
from resources.social_resources import (
    DexScreenerResource,
    LiveDexScreenerResource,
    SimDexScreenerResource,
    SocialConfigResource,
)
from resources.warehouse.resource import WarehouseResource
from sensors.new_candles import build_new_candles_sensor
from sensors.social_events import build_social_events_sensor


def _secret(variable: str) -> EnvVar | None:
    """An ``EnvVar`` for ``variable`` when it is set (its value is only read at run time)."""
    return EnvVar(variable) if os.environ.get(variable) else None


def build_model_store(settings: Settings) -> ModelStore:
    """Files under the data home, or the S3-compatible object store of SIGNALWORKS_MODEL_STORE."""
    location = settings.object_model_store
    if location is None:
        return LocalModelStore(root=str((settings.home / "models").resolve()))
    endpoint, bucket = location
    return ObjectModelStore(endpoint=endpoint, bucket=bucket)


def build_resources(settings: Settings) -> dict[str, object]:
    warehouse = WarehouseResource(
        url=EnvVar("SIGNALWORKS_DATABASE_URL") if settings.database_url else settings.warehouse_url
    )
    credentials = []
    for exchange in settings.exchanges:
        if is_simulated(exchange):
            continue
        prefix = f"SIGNALWORKS_{exchange.upper()}"
        fields = {"api_key": _secret(f"{prefix}_API_KEY"), "secret": _secret(f"{prefix}_SECRET"),
                  "password": _secret(f"{prefix}_PASSWORD")}
        if any(fields.values()):
            credentials.append(ExchangeCredentials(exchange=exchange, **{k: v for k, v in fields.items() if v}))
    exchanges = ExchangeResource(exchanges=list(settings.exchanges), quote=settings.quote,
                                 sim_seed=settings.sim_seed, sim_symbols=settings.sim_symbols,
                                 credentials=credentials)
    coingecko: CoinGeckoResource
    if settings.coingecko == "live":
        key = _secret("SIGNALWORKS_COINGECKO_API_KEY")
        coingecko = LiveCoinGeckoResource(base_url=settings.coingecko_base_url,
                                          **({"api_key": key} if key else {}))
    else:
        coingecko = SimCoinGeckoResource(seed=settings.sim_seed)
    dex_cache = str((settings.home / "cache" / "dexscreener.sqlite").resolve())
    dexscreener: DexScreenerResource
    if settings.dexscreener == "live":
        dexscreener = LiveDexScreenerResource(cache_path=dex_cache, base_url=settings.dexscreener_base_url)
    else:
        dexscreener = SimDexScreenerResource(cache_path=dex_cache, seed=settings.sim_seed)
    return {
        "warehouse": warehouse, "exchanges": exchanges, "coingecko": coingecko, "dexscreener": dexscreener,
        "social_config": SocialConfigResource(config_path=str(settings.social_config)),
        "publishers": PublishersResource(config_path=str(settings.social_config), home=str(settings.home.resolve()),
                                         telegram_base_url=settings.telegram_bot_api),
        "model_store": build_model_store(settings),
        "feature_store": FeatureStoreResource(root=str((settings.home / "features").resolve())),
        "reports": ReportStoreResource(home=str(settings.home.resolve())),
    }


def build_definitions(settings: Settings, resources: dict[str, object] | None = None) -> Definitions:
    """The code location for ``settings``; ``resources`` replaces individual resources (tests,
    drills with a frozen clock)."""
    # Deliberate uses of Dagster features marked beta/preview in 1.13: single-run backfill
    # policies and partitioned asset checks (a check evaluates exactly the partitions its run
    # wrote). Silenced here so every UI reload and run log is not flooded with the same notice.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)
        warnings.simplefilter("ignore", PreviewWarning)
        merged = {**build_resources(settings), **(resources or {})}
        definitions = _build_definitions(settings, {key: with_values_as_defaults(resource, key)
                                                    for key, resource in merged.items()})
        definitions.get_repository_def()  # resolve now, inside the filter (Definitions resolve lazily)
        return definitions


def _build_definitions(settings: Settings, resources: dict[str, object]) -> Definitions:
    partitions = candle_partitions(settings)
    candles_1h = build_candles_asset("1h", partitions_def=partitions, default_top_n=settings.candles_1h_symbols)
    candles_1m = build_candles_asset("1m", partitions_def=partitions, default_top_n=settings.candles_1m_symbols)
    checks = [
        *build_candle_checks(candles_1h, timeframe="1h", partitions_def=partitions,
                             default_top_n=settings.candles_1h_symbols, freshness_hours=settings.freshness_hours),
        *build_candle_checks(candles_1m, timeframe="1m", partitions_def=partitions,
                             default_top_n=settings.candles_1m_symbols, freshness_hours=settings.freshness_hours),
    ]
    candles_mtf, candles_subhour = build_mtf_asset(partitions), build_subhour_asset(partitions)
    checks += build_mtf_checks(candles_mtf, partitions_def=partitions)
    indicators = build_indicators_asset(partitions)
    checks += build_indicator_checks(indicators, partitions_def=partitions)
    candles_1h_job, candles_1m_job = candle_job("1h"), candle_job("1m")
    retention_job = build_retention_job(settings.retention_1m_days)
    validate_job, publish_job, signals_job = validate_calls_job(), publish_signals_job(), market_signals_job()
    reports, report_job_defs, report_schedule_defs = _reports(settings)
    outcomes_job, digest_job = signal_outcomes_job(), scorecard_digest_job()
    return Definitions(
        assets=[markets, candles_1h, candles_1m, candles_mtf, candles_subhour, indicators,
                derivatives,
                build_coingecko_asset(settings.coingecko_top),
                features, regime_model, xgb_models, predictions, *reports, signal_outcomes, paper_accounts, scorecards],
        asset_checks=[*checks, build_xgb_model_checks(), predictions_models_usable, outcomes_sound],
        jobs=[candles_1h_job, candles_1m_job, markets_job, derivatives_job, coingecko_job, retention_job,
              validate_job, publish_job, signals_job, model_features_job, xgb_training_job, regime_training_job,
              *report_job_defs, outcomes_job, paper_accounts_job,
              scorecards_job, digest_job],
        sensors=[build_social_events_sensor(validate_job), build_new_candles_sensor(
            signals_job, strategies={name: name in settings.strategies for name in ("bos", "ema_cross", "funding")})],
        schedules=[*build_schedules(
            candles_1h_job=candles_1h_job, candles_1m_job=candles_1m_job, markets_job=markets_job,
            derivatives_job=derivatives_job, coingecko_job=coingecko_job, retention_job=retention_job,
            exchanges=settings.exchanges,
        ), publish_schedule(publish_job),
            *model_schedules(features_job=model_features_job, xgb_job=xgb_training_job,
                             regime_job=regime_training_job, segments=list(SEGMENT_IDS)),
            *report_schedule_defs, signal_outcomes_schedule(outcomes_job),
            *paper_schedules(paper_job=paper_accounts_job, scorecards_job=scorecards_job, digest_job=digest_job)],
        resources=resources,
    )


def _reports(settings: Settings) -> tuple[list[AssetsDefinition], list[AssetJob], list[ScheduleDefinition]]:
    """The walk-forward and risk report assets, their jobs and their daily schedules."""
    segments = segment_partitions()
    walk_forward_job, risk_job = report_jobs()
    assets = [build_walk_forward_report_asset(segments, default_exchange=settings.exchanges[0],
                                              segments_path=str(SEGMENTS_PATH)),
              build_risk_report_asset(segments=segments.get_partition_keys(), default_exchange=settings.exchanges[0])]
    schedules = report_schedules(walk_forward_job=walk_forward_job, risk_job=risk_job,
                                 segments=segments.get_partition_keys())
    return assets, [walk_forward_job, risk_job], schedules


defs = build_definitions(get_settings())
