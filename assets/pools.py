"""A Dagster concurrency pool per exchange: ``exchange:<id>`` (e.g. ``exchange:binance``).

Dagster's ``pool=`` argument names one static pool per asset, but candles, markets and
derivatives runs are per exchange, and what must be limited is how many steps talk to the *same*
exchange at once. So each step claims a slot of that exchange's pool through the instance's
concurrency storage before calling the exchange, and frees it afterwards. The pools are ordinary
Dagster pools: they show on the UI's concurrency page, take the instance's
``concurrency.pools.default_limit`` and can be set per exchange with
``dagster instance concurrency set exchange:binance 1``.
"""

import contextlib
import time
from collections.abc import Iterator

from dagster import DagsterInstance


def pool_name(exchange: str) -> str:
    return f"exchange:{exchange}"


@contextlib.contextmanager
def exchange_slot(instance: DagsterInstance, *, exchange: str, run_id: str, step_key: str,
                  poll_s: float = 0.5, log: object | None = None) -> Iterator[None]:
    """Hold one slot of ``exchange``'s pool for the duration of the block (waits while full).

    Instances whose storage has no global concurrency (the in-memory instance of ``materialize``
    in tests) run the block unthrottled.
    """
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        yield
        return
    key = pool_name(exchange)
    claimant = f"{step_key}[{exchange}]"
    storage.initialize_concurrency_limit_to_default(key)
    waited = 0.0
    while not storage.claim_concurrency_slot(key, run_id, claimant).is_claimed:
        if waited == 0.0 and log is not None:
            log.info("waiting for a slot of pool %s", key)  # type: ignore[attr-defined]
        time.sleep(poll_s)
        waited += poll_s
    try:
        yield
    finally:
        storage.free_concurrency_slot_for_step(run_id, claimant)
