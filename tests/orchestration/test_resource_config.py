"""Run config that names one field of a resource keeps the others as the code location built them
(Dagster alone would reset them to the class defaults: dagster-io/dagster#12898)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from dagster import DagsterInstance, EnvVar

from orchestration.definitions import build_definitions
from orchestration.resource_config import config_values, with_values_as_defaults
from orchestration.settings import settings_from_env
from resources.exchanges.resource import ExchangeCredentials, ExchangeResource
from resources.warehouse.store import Warehouse

FROZEN = datetime(2024, 6, 12, 12, 2, tzinfo=UTC)
#: 87 assets is the class default; 300 give each venue far more markets.
UNIVERSE = 300


def test_a_run_that_only_freezes_the_clock_keeps_the_exchanges_and_the_universe(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    monkeypatch.setenv("SIGNALWORKS_DATABASE_URL", url)  # the resource refers to it (an EnvVar)
    settings = settings_from_env({"SIGNALWORKS_HOME": str(tmp_path), "SIGNALWORKS_DATABASE_URL": url,
                                  "SIGNALWORKS_EXCHANGES": "sim_binance,sim_okx",
                                  "SIGNALWORKS_SIM_SYMBOLS": str(UNIVERSE)})
    defs = build_definitions(settings)
    config = {"resources": {"exchanges": {"config": {"frozen_clock": FROZEN.isoformat()}}}}
    with DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("markets_job").execute_in_process(instance=instance, run_config=config)
    assert result.success
    markets = Warehouse.from_url(url).read_markets()
    per_venue = dict(markets.group_by("exchange").len().iter_rows())
    assert set(per_venue) == {"sim_binance", "sim_okx"}
    default_universe = ExchangeResource(exchanges=["sim_binance"], frozen_clock=FROZEN.isoformat()) \
        .client("sim_binance").load_markets().height
    assert all(count > 2 * default_universe for count in per_venue.values()), (per_venue, default_universe)


def test_named_fields_override_and_the_rest_keep_their_built_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNALWORKS_BINANCE_API_KEY", "k-123-secret")
    built = ExchangeResource(exchanges=["binance", "sim"], sim_symbols=UNIVERSE, retry_attempts=2,
                             credentials=[ExchangeCredentials(exchange="binance",
                                                              api_key=EnvVar("SIGNALWORKS_BINANCE_API_KEY"))])
    resource = with_values_as_defaults(built, "exchanges")
    assert type(resource).__name__ == "ExchangeResource" and isinstance(resource, ExchangeResource)
    schema = type(resource).model_fields
    assert schema["sim_symbols"].default == UNIVERSE
    assert schema["exchanges"].default == ["binance", "sim"]
    # the secret stays a reference in the schema's defaults, never its value
    assert schema["credentials"].default == [{"exchange": "binance", "api_key": {"env": "SIGNALWORKS_BINANCE_API_KEY"},
                                              "secret": None, "password": None}]
    assert "k-123-secret" not in repr(config_values(resource, "exchanges"))
    # fields the resource was not built with keep the class default
    assert schema["frozen_clock"].default is None
    assert config_values(resource, "exchanges") == config_values(built, "exchanges")
