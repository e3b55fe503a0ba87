"""The demo's summary reads the checks as the instance holds them, including checks that a failed
run planned but never evaluated."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestration.summary import check_outcomes, print_summary
from tests.assets.conftest import sim_definitions
from tests.support.dagster_ui import ui_instance

RANGE_TAGS = {"dagster/asset_partition_range_start": "2024-03-10|sim",
              "dagster/asset_partition_range_end": "2024-03-11|sim"}


def outcome(frame: object, asset: str, check: str) -> dict[str, int]:
    (row,) = [r for r in frame.iter_rows(named=True) if (r["asset"], r["check"]) == (asset, check)]  # type: ignore[attr-defined]
    return {k: v for k, v in row.items() if k not in ("asset", "check")}


def test_summary_after_a_failed_run_then_a_good_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    defs, settings = sim_definitions(tmp_path)
    with ui_instance(tmp_path) as instance:
        # no markets yet: candles_1h fails, so its checks are planned and never evaluated
        failed = defs.resolve_job_def("candles_1h_job").execute_in_process(
            instance=instance, tags=RANGE_TAGS, raise_on_error=False)
        assert not failed.success
        print_summary(settings, instance)
        assert "Latest asset checks" in capsys.readouterr().out
        outcomes = check_outcomes(instance)
        assert outcome(outcomes, "candles_1h", "unique_keys") == {
            "passed": 0, "failed": 0, "not evaluated": 2, "running": 0}
        assert outcome(outcomes, "candles_1h", "fresh") == {"passed": 0, "failed": 0, "not evaluated": 1, "running": 0}
        assert outcome(outcomes, "indicators", "complete")["not evaluated"] == 2

        assert defs.resolve_job_def("markets_job").execute_in_process(instance=instance).success
        assert defs.resolve_job_def("candles_1h_job").execute_in_process(instance=instance, tags=RANGE_TAGS).success
        outcomes = check_outcomes(instance)
        for asset, check in [("candles_1h", "unique_keys"), ("candles_1h", "ohlc_sanity"),
                             ("candles_mtf", "ohlc_sanity"), ("indicators", "finite_values")]:
            assert outcome(outcomes, asset, check) == {"passed": 2, "failed": 0, "not evaluated": 0, "running": 0}
        # the newest candle (2024-03-11 23:00) closed 9.5 h before the frozen clock: stale, and said so
        assert outcome(outcomes, "candles_1h", "fresh") == {"passed": 0, "failed": 1, "not evaluated": 0, "running": 0}
        assert "candles_1m" not in outcomes.get_column("asset").to_list()  # never planned: not listed
        print_summary(settings, instance)
        assert "indicators" in capsys.readouterr().out
