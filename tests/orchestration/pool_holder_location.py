"""A code location whose one asset takes the ``sim`` exchange's slot and keeps it: the step that
``test_exchange_pools`` kills with SIGKILL (run with ``dagster asset materialize -m``)."""

# no `from __future__ import annotations`: Dagster checks the type of `context` at definition time
import threading

from dagster import AssetExecutionContext, Definitions, Failure, asset

from assets.pools import exchange_slot

#: A step the test failed to kill gives up after this long instead of living on.
HOLD_AT_MOST_S = 600


@asset
def exchange_slot_holder(context: AssetExecutionContext) -> None:
    with exchange_slot(context.instance, exchange="sim", run_id=context.run.run_id,
                       step_key=context.get_step_execution_context().step.key, log=context.log):
        context.log.info("holding the slot of exchange:sim until killed")
        threading.Event().wait(HOLD_AT_MOST_S)
    raise Failure(f"nobody killed this step within {HOLD_AT_MOST_S} s")


defs = Definitions(assets=[exchange_slot_holder])
