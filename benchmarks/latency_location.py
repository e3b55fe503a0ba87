"""The code location the candle-to-chat benchmark's daemon loads: the real market-signal path, BOS loosened.

``market_signals_job`` is the real job's graph (``market_signals_op`` -> ``publish_signals_op``, the
in-process executor, the signals lane tags) with the real resources (``build_resources`` of the
settings in the environment) and the real ``new_candles_sensor``. The one difference: a config
mapping fills the BOS parameters of :data:`LOOSE_BOS` into every run's config, because the seed
values fire about 0.7 signals a minute over 1,000 simulated symbols and the benchmark needs 30 in
minutes. The latency measured is the pipeline's (feed, sensor, run, scan, outbox, publish), which
these parameters do not touch: the scan reads and computes the same candles either way.
"""

from __future__ import annotations

from typing import Any

from dagster import ConfigMapping, Definitions, Permissive

from benchmarks.latency_parts import LOOSE_BOS
from orchestration.definitions import build_resources
from orchestration.jobs import market_signals_job
from orchestration.settings import get_settings
from sensors.new_candles import build_new_candles_sensor


def loosened(config: dict[str, Any]) -> dict[str, Any]:
    """The sensor's run config with :data:`LOOSE_BOS` merged into ``market_signals_op``'s ``bos``."""
    ops = dict(config.get("ops", {}))
    op = dict(ops.get("market_signals_op", {}))
    op_config = dict(op.get("config", {}))
    op_config["bos"] = {**op_config.get("bos", {}), **LOOSE_BOS}
    ops["market_signals_op"] = {**op, "config": op_config}
    return {**config, "ops": ops}


def build_latency_definitions() -> Definitions:
    real = market_signals_job()
    job = real.graph.to_job(name=real.name, description=f"{real.description} BOS loosened for the latency benchmark.",
                            config=ConfigMapping(config_fn=loosened, config_schema=Permissive()),
                            executor_def=real.executor_def, tags=real.tags)
    sensor = build_new_candles_sensor(job, strategies={"bos": True, "ema_cross": False, "funding": False})
    return Definitions(jobs=[job], sensors=[sensor], resources=build_resources(get_settings()))


defs = build_latency_definitions()
