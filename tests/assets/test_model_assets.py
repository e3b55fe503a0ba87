"""The model assets through a real Dagster instance: features, regime models, one XGBoost model
per segment gated by blocking checks, predictions from usable models only, and expiry under a
frozen clock.

Six symbols, 30 days of 1h candles, 30 trees. The majors (BTC, ETH) come from the simulated
market, which has no planted edge: their model may or may not beat climatology, and the test
only asserts that the checks, the registry and the predictions agree with the stored metrics.
The other two segments have known answers: the alts (SOL, AVAX) follow returns with planted
momentum all along (the model must beat climatology, become active and predict), the memes
(DOGE, PEPE) momentum that stops just before the test slice, turning into a random walk (a model
confidently wrong half the time on its test slice: rejected, the run stops before predictions)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from dagster import AssetCheckKey, AssetKey, DagsterInstance, Definitions, ExecuteInProcessResult

from assets.models import SEGMENT_PARTITIONS
from ml.features.segments import SEGMENT_IDS
from ml.marketdata.frames import TS
from orchestration.definitions import build_definitions
from orchestration.settings import Settings
from resources.exchanges.sim import SimExchange
from resources.warehouse.predictions import read_predictions
from resources.warehouse.store import Warehouse
from tests.assets.conftest import sim_resources
from tests.support.dagster_ui import check_statuses

NOW = datetime(2024, 3, 12, 9, 30, tzinfo=UTC)
SYMBOLS = {"majors": ("BTC/USDT", "ETH/USDT"), "alts": ("SOL/USDT", "AVAX/USDT"), "memes": ("DOGE/USDT", "PEPE/USDT")}
DAYS = 30
XGB_CONFIG = {"window_days": DAYS, "n_estimators": 30, "regime_n_init": 1, "expiry_hours": 24}


@dataclass
class World:
    settings: Settings
    warehouse: Warehouse
    instance: DagsterInstance
    features: ExecuteInProcessResult
    regimes: ExecuteInProcessResult
    training: dict[str, ExecuteInProcessResult]


def definitions(settings: Settings, now: datetime) -> Definitions:
    return build_definitions(settings, sim_resources(settings, now=now))


#: Hourly log returns r_t = PHI r_{t-1} + noise (momentum: the last hours' return says where the next
#: four go); for the memes the momentum stops after FLIP_AT of the window (a random walk from there).
PHI, FLIP_AT = 0.9, 0.85
NOISE = {"alts": 0.003, "memes": 0.02}


def planted_candles(symbol: str, *, seed: int, segment: str) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    first = (NOW - timedelta(days=DAYS)).replace(minute=0) + timedelta(hours=1)  # as the simulated market's
    n = int((NOW - first) / timedelta(hours=1))  # every candle closed by NOW
    returns = np.zeros(n)
    for t in range(1, n):
        phi = 0.0 if segment == "memes" and t >= FLIP_AT * n else PHI
        returns[t] = phi * returns[t - 1] + NOISE[segment] * rng.standard_normal()
    close = 100.0 * np.exp(np.cumsum(returns))
    open_ = np.concatenate([[100.0], close[:-1]])
    return pl.DataFrame({
        "exchange": "sim", "symbol": symbol, "timeframe": "1h",
        "ts": [first + timedelta(hours=i) for i in range(n)], "open": open_,
        "high": np.maximum(open_, close) * 1.001, "low": np.minimum(open_, close) * 0.999, "close": close,
        "volume": rng.gamma(4.0, 25.0, n),
    }).with_columns(pl.col("ts").cast(TS))


def store_candles(warehouse: Warehouse) -> None:
    sim = SimExchange("sim", seed=42, clock=lambda: NOW)
    start = NOW - timedelta(days=DAYS)
    for segment, symbols in SYMBOLS.items():
        for i, symbol in enumerate(symbols):
            bars = (sim.fetch_ohlcv(symbol, "1h", start, NOW).with_columns(
                pl.lit("sim").alias("exchange"), pl.lit(symbol).alias("symbol"), pl.lit("1h").alias("timeframe"))
                if segment == "majors" else planted_candles(symbol, seed=i, segment=segment))
            warehouse.replace_candles(bars, exchange="sim", timeframe="1h", start=start, end=NOW, symbols=[symbol])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    home = tmp_path_factory.mktemp("models_home")
    settings = Settings(home=home, exchanges=("sim",))
    warehouse = Warehouse.from_url(settings.warehouse_url)
    store_candles(warehouse)
    defs = definitions(settings, NOW)
    with DagsterInstance.ephemeral() as instance:
        features = defs.resolve_job_def("model_features_job").execute_in_process(
            instance=instance, run_config={"ops": {"features": {"config": {"window_days": DAYS}}}})
        regimes = defs.resolve_job_def("regime_training_job").execute_in_process(
            instance=instance, run_config={"ops": {"regime_model": {"config": {"window_days": DAYS, "n_init": 1}}}})
        training = {segment: defs.resolve_job_def("xgb_training_job").execute_in_process(
            instance=instance, partition_key=segment, raise_on_error=False,
            run_config={"ops": {"xgb_models": {"config": XGB_CONFIG}}}) for segment in SEGMENT_IDS}
        yield World(settings, warehouse, instance, features, regimes, training)


def test_features_are_persisted_with_their_window(world: World) -> None:
    [event] = world.features.asset_materializations_for_node("features")
    path = Path(str(event.metadata["path"].value))
    assert path == world.settings.home.resolve() / "features" / "dataset_1h.parquet"
    dataset = pl.read_parquet(path)
    assert event.metadata["rows"].value == dataset.height == 6 * DAYS * 24 - 6  # the last candle is still open
    assert event.metadata["symbols"].value == 6
    assert event.metadata["columns"].value == dataset.width
    assert 0.0 < event.metadata["null_share"].value < 0.5
    assert dataset.get_column("ts").min() >= datetime.fromisoformat(str(event.metadata["window_start"].value))
    assert not list(path.parent.glob(".*.tmp"))  # the atomic write left no temporary file


def test_regime_models_are_fitted_registered_and_shown(world: World) -> None:
    [event] = world.regimes.asset_materializations_for_node("regime_model")
    registry = world.warehouse.model_registry()
    for segment in SEGMENT_IDS:
        assert "Bull trend" in str(event.metadata[f"{segment}_transition_matrix"].value)
        assert "size_multiplier" in str(event.metadata[f"{segment}_regimes"].value)
        assert "data:image/png;base64," in str(event.metadata[f"{segment}_timeline"].value)
        record = registry.usable_model("hmm_regime", segment, NOW)
        assert record is not None and record.version == event.metadata[f"{segment}_version"].value


def test_checks_decide_the_registry_status_and_block_predictions(world: World) -> None:
    registry = world.warehouse.model_registry()
    outcomes = {}
    for segment, result in world.training.items():
        [event] = result.asset_materializations_for_node("xgb_models")
        version = event.metadata["model_version"].value
        assert "data:image/png;base64," in str(event.metadata["reliability"].value)
        assert "brier_climatology" in str(event.metadata["test_metrics"].value)
        assert "gain" in str(event.metadata["feature_importance"].value)
        record = registry.model("xgb_segment", segment, version)
        assert record is not None
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()
                  if e.asset_key.to_user_string() == "xgb_models"}
        assert set(checks) == {"beats_climatology", "no_look_ahead", "not_expired"}
        assert checks["no_look_ahead"] and checks["not_expired"]
        beats = record.metrics["brier_calibrated"] <= record.metrics["brier_climatology"]
        assert checks["beats_climatology"] == beats
        assert record.status == ("active" if beats else "rejected")
        # A failed blocking check fails the run before predictions; a passed one lets them run.
        assert result.success == beats
        assert bool(result.asset_materializations_for_node("predictions")) == beats
        outcomes[segment] = beats
    assert outcomes["alts"] and not outcomes["memes"], outcomes  # the planted answers
    # What the UI's per-partition check bar shows.
    shown = check_statuses(world.instance, AssetCheckKey(AssetKey("xgb_models"), "beats_climatology"),
                           SEGMENT_PARTITIONS)
    assert shown == {s: "SUCCEEDED" if beats else "FAILED" for s, beats in outcomes.items()}


def test_predictions_come_from_usable_models_only(world: World) -> None:
    registry = world.warehouse.model_registry()
    stored = read_predictions(world.warehouse)
    active = {s for s in SEGMENT_IDS if registry.usable_model("xgb_segment", s, NOW) is not None}
    assert active and set(stored.get_column("segment")) == active
    for segment in active:
        rows = stored.filter(pl.col("segment") == segment)
        assert sorted(rows.get_column("symbol")) == sorted(SYMBOLS[segment])
        assert set(rows.get_column("model_version")) == {registry.usable_model("xgb_segment", segment, NOW).version}
        assert (rows.get_column("ts") == NOW.replace(minute=0) - timedelta(hours=1)).all()  # the last closed candle
        assert rows.get_column("regime").null_count() == 0
    total = stored.select(pl.col("p_down") + pl.col("p_flat") + pl.col("p_up")).to_series()
    assert ((total - 1.0).abs() < 1e-9).all()
    # The rejected segments' symbols get none.
    rejected = set(SEGMENT_IDS) - active
    assert not stored.filter(pl.col("symbol").is_in([s for r in rejected for s in SYMBOLS[r]])).height


def test_expired_models_are_not_used_and_the_checks_say_so(world: World) -> None:
    later = NOW + timedelta(days=2)  # past the 24 h expiry of every model trained at NOW
    defs = definitions(world.settings, later)
    registry = world.warehouse.model_registry()
    active = [s for s in SEGMENT_IDS if registry.usable_model("xgb_segment", s, NOW) is not None]
    result = defs.resolve_job_def("model_features_job").execute_in_process(
        instance=world.instance, raise_on_error=False,
        run_config={"ops": {"features": {"config": {"window_days": DAYS}}}})
    [event] = result.asset_materializations_for_node("predictions")
    assert event.metadata["rows"].value == 0
    skipped = event.metadata["skipped"].value
    for segment in active:
        assert "expired" in skipped[segment], skipped
    # The newest stored predictions were made with models that have expired since: blocking failure.
    [check] = [e for e in result.get_asset_check_evaluations() if e.check_name == "models_usable"]
    assert not check.passed and not result.success
    assert "expired" in str(check.metadata["segments_without_usable_model"].value)

    # Re-checking an active model after its expiry rejects it.
    segment = active[0]
    checked = defs.resolve_job_def("xgb_training_job").execute_in_process(
        instance=world.instance, partition_key=segment, raise_on_error=False, op_selection=["xgb_model_checks"])
    verdicts = {e.check_name: e for e in checked.get_asset_check_evaluations()}
    assert not verdicts["not_expired"].passed and verdicts["beats_climatology"].passed
    assert str(verdicts["not_expired"].metadata["checked_at"].value) == later.isoformat()
    [record] = [r for r in registry.models("xgb_segment", segment) if r.status_reason == "failed not_expired"]
    assert record.status == "rejected"
    assert registry.usable_model("xgb_segment", segment, NOW) is None  # no longer used, even at its own time
