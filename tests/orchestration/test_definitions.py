"""The code location loads, resolves every job, and stays light (runs first: see conftest)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import Definitions

from orchestration.settings import SETTINGS_REFERENCE, Settings, settings_from_env

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "xgboost", "telethon", "discord", "numba", "talib")


def test_definitions_load_and_every_job_resolves() -> None:
    from orchestration.definitions import defs

    assert isinstance(defs, Definitions)
    repository = defs.get_repository_def()
    jobs = {job.name for job in repository.get_all_jobs()}
    assert {"candles_1h_job", "candles_1m_job", "markets_job", "derivatives_job", "coingecko_job",
            "candles_1m_retention_job", "validate_calls_job", "publish_signals_job", "model_features_job",
            "xgb_training_job", "regime_training_job", "walk_forward_report_job", "risk_report_job",
            "signal_outcomes_job", "paper_accounts_job", "scorecards_job", "scorecard_digest_job",
            "market_signals_job"} <= jobs
    for name in jobs:
        assert defs.resolve_job_def(name).name == name
    schedules = {s.name for s in repository.schedule_defs}
    assert schedules == {"candles_1h_schedule", "candles_1m_schedule", "markets_schedule",
                         "derivatives_schedule", "coingecko_schedule", "candles_1m_retention_schedule",
                         "publish_signals_schedule", "model_features_schedule", "xgb_training_schedule",
                         "regime_training_schedule", "walk_forward_report_schedule", "risk_report_schedule",
                         "signal_outcomes_schedule", "paper_accounts_schedule",
                         "scorecards_schedule", "scorecard_digest_schedule"}
    assert {s.name for s in repository.sensor_defs} == {"social_events_sensor", "new_candles_sensor"}


def test_loading_the_code_location_imports_no_heavy_library() -> None:
    code = (
        "import sys, time, json; t = time.perf_counter(); import orchestration.definitions; "
        f"print(json.dumps({{'seconds': time.perf_counter() - t, 'heavy': [m for m in {HEAVY!r} if m in sys.modules]}}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
    print(f"import orchestration.definitions took {report['seconds']:.2f} s")


def test_workspace_points_at_the_definitions() -> None:
    import yaml

    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text())
    target = workspace["load_from"][0]["python_file"]
    assert target["relative_path"] == "orchestration/definitions.py"
    assert target["attribute"] == "defs"


def test_settings_defaults_and_errors(tmp_path: Path) -> None:
    settings = settings_from_env({})
    assert settings.exchanges == ("sim",)
    assert settings.warehouse_url.startswith("sqlite:///") and settings.warehouse_url.endswith("warehouse.db")
    custom = settings_from_env({"SIGNALWORKS_EXCHANGES": "binance, OKX", "SIGNALWORKS_HOME": str(tmp_path),
                                "SIGNALWORKS_DATABASE_URL": "postgresql+psycopg://u:secret@h/db"})
    assert custom.exchanges == ("binance", "okx")
    assert "secret" not in repr(custom)
    with pytest.raises(ValueError, match="unknown exchange 'kraken'"):
        settings_from_env({"SIGNALWORKS_EXCHANGES": "kraken"})
    with pytest.raises(ValueError, match="SIGNALWORKS_CANDLES_1M_SYMBOLS='many'"):
        settings_from_env({"SIGNALWORKS_CANDLES_1M_SYMBOLS": "many"})
    assert isinstance(Settings(), Settings)


def test_readme_lists_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    for variable, (default, _) in SETTINGS_REFERENCE.items():
        assert f"`{variable}`" in readme, f"README configuration reference lacks {variable}"
        assert default in readme, f"README does not show the default of {variable}: {default}"
    first_block = readme.index("```bash")
    assert readme.index("make demo", first_block) < readme.index("make test", first_block) < readme.index("```", first_block + 3)


def test_imports_point_one_way() -> None:
    """The import-linter contracts in pyproject.toml: ml/ never imports Dagster or the layers above."""
    linter = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(linter)], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def test_secrets_reach_resources_as_env_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestration.definitions import build_resources

    monkeypatch.setenv("SIGNALWORKS_BINANCE_API_KEY", "k-123-secret")
    monkeypatch.setenv("SIGNALWORKS_COINGECKO_API_KEY", "cg-456-secret")
    settings = settings_from_env({"SIGNALWORKS_EXCHANGES": "binance,sim", "SIGNALWORKS_COINGECKO": "live"})
    resources = build_resources(settings)
    exchanges, coingecko = resources["exchanges"], resources["coingecko"]
    assert "k-123-secret" not in repr(exchanges) and "cg-456-secret" not in repr(coingecko)
    assert exchanges.credentials[0].api_key == "SIGNALWORKS_BINANCE_API_KEY"  # the variable, not its value
    assert exchanges.process_config_and_initialize().credentials[0].api_key == "k-123-secret"
    assert coingecko.process_config_and_initialize().api_key == "cg-456-secret"


def test_the_annotated_sources_yaml_parses() -> None:
    from resources.social_config import load_social_config

    config = load_social_config(ROOT / "config" / "sources.yaml")
    assert config.sources.replay.enabled and not config.sources.telegram.enabled
    assert [p.name for p in config.publishers if p.enabled] == ["console"]
    assert all(p.token_env or p.secret_env or p.kind == "console" for p in config.publishers)
