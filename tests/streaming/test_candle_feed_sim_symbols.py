"""``signalworks feed`` on the simulator uses the universe size of ``SIGNALWORKS_SIM_SYMBOLS``, like the Dagster
resources: otherwise the feed would track 87 symbols while ``markets`` lists up to 2000."""

from __future__ import annotations

from datetime import UTC, datetime

from resources.exchanges.sim import SimExchange
from streaming.candles.exchange_feed import FeedClock
from streaming.candles.main import Clients


class FrozenClock:
    def now(self) -> datetime:
        return datetime(2025, 6, 2, 12, 0, tzinfo=UTC)

    async def sleep(self, seconds: float) -> None:
        return None


def test_the_simulated_client_has_the_configured_universe_size() -> None:
    clock: FeedClock = FrozenClock()
    default = Clients(clock)("sim", ("spot",)).load_markets()
    wide = Clients(clock, sim_symbols=300)("sim", ("spot",)).load_markets()
    reference = SimExchange("sim", clock=clock.now, symbols=300).load_markets()
    assert sorted(wide.get_column("symbol")) == sorted(reference.get_column("symbol"))
    assert wide.height > default.height == SimExchange("sim", clock=clock.now).load_markets().height
