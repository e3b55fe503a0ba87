"""The demo's report settings fit the stored days, and a run stopped by its blocking checks is told
apart from one that failed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from dagster import AssetCheckResult, DagsterInstance, asset, asset_check, materialize

from ml.features.splits import walk_forward_windows
from orchestration.launcher import LaunchedRun
from orchestration.report_demo import (
    demo_walk_forward_config,
    failed_check_lines,
    stopped_by_blocking_checks,
)


@pytest.mark.parametrize("hourly_days", [10, 45, 90])
def test_demo_windows_fit_three_times_in_the_stored_days(hourly_days: int) -> None:
    config = demo_walk_forward_config(hourly_days)
    # the stored 1h candles: from midnight hourly_days - 1 days ago to the last closed hour of today
    start = datetime(2024, 3, 1, tzinfo=UTC)
    end = start + timedelta(days=hourly_days - 1, hours=9)
    windows = walk_forward_windows(start, end, train_length=timedelta(days=config["train_days"]),
                                   test_length=timedelta(days=config["test_days"]), mode="rolling")
    assert len(windows) == 3
    assert config["days"] == hourly_days and config["embargo_hours"] <= 24 * config["test_days"]


def test_blocking_check_rejections_are_told_apart_from_failures() -> None:
    rejected = LaunchedRun("a", False, (
        "xgb_model_checks: dagster._core.errors.DagsterAssetCheckFailedError: 1 blocking asset check failed "
        "with ERROR severity:", "run: ... 1 blocking asset check failed with ERROR severity:"))
    crashed = LaunchedRun("b", False, ("xgb_models: ValueError: segment memes has no symbols",
                                       "run: ... 1 blocking asset check failed with ERROR severity:"))
    assert stopped_by_blocking_checks(rejected)
    assert not stopped_by_blocking_checks(crashed)
    assert not stopped_by_blocking_checks(LaunchedRun("c", False, ()))
    assert not stopped_by_blocking_checks(LaunchedRun("d", True, ()))


def test_a_rejection_is_explained_by_the_failed_checks_and_their_figures() -> None:
    @asset
    def model() -> int:
        return 1

    @asset_check(asset=model, blocking=True)
    def beats_climatology() -> AssetCheckResult:
        return AssetCheckResult(passed=False, metadata={"brier_calibrated": 0.6781234, "brier_climatology": 0.6679,
                                                        "model_version": "abc"})

    @asset_check(asset=model)
    def not_expired() -> AssetCheckResult:
        return AssetCheckResult(passed=True, metadata={"expires_at": "later"})

    with DagsterInstance.ephemeral() as instance:
        result = materialize([model, beats_climatology, not_expired], instance=instance, raise_on_error=False)
        assert failed_check_lines(instance, result.run_id) == [
            "beats_climatology failed: brier_calibrated 0.6781, brier_climatology 0.6679"]


def test_the_market_signals_section_lists_every_strategy(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from assets.market_signals import signal_origin
    from ml.strategies.signal import MarketSignal
    from orchestration.report_demo import print_market_signals
    from resources.publishers.outbox import Outbox
    from resources.warehouse.engine import make_engine

    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    outbox = Outbox(make_engine(url))
    trigger = datetime(2024, 3, 10, 12, tzinfo=UTC)
    for k in range(25):  # more BOS signals than the table shows: the EMA one still appears
        strategy, timeframe = ("ema_cross", "15m") if k == 0 else ("bos", "1m")
        signal = MarketSignal(strategy=strategy, exchange="sim", symbol="BTC/USDT", timeframe=timeframe,
                              direction="long", trigger_ts=trigger + timedelta(minutes=k), entry=100.0, stop=92.0,
                              targets=(108.0, 116.0), confidence=0.6, risk_level="medium", size=0.5,
                              expires_at=trigger + timedelta(hours=2))
        origin = signal_origin(signal)
        outbox.enqueue(kind="market", origin=origin, base_token=origin, confidence=signal.confidence,
                       payload=signal.to_record(), symbol=signal.symbol, direction=signal.direction)
    print_market_signals(url)
    out = capsys.readouterr().out
    assert "25 (bos 24, ema_cross 1); funding alerts: 0" in out
    lines = [line for line in out.splitlines() if "BTC/USDT" in line]
    assert len(lines) == 21 and sum("ema_cross" in line for line in lines) == 1
    assert "108, 116" in lines[0] and " 1.00 " in lines[0] and "medium" in lines[0]
