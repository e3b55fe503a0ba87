"""Arrival snapshots: the sidecar prices each call's tokens as it arrives, into the shared cache."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from resources.dexscreener import PairSnapshot
from resources.dexscreener_sim import SimDexScreener
from resources.exchanges.errors import TransientError
from resources.social_config import SignalworksSocialConfig
from resources.ttl_cache import CachedDexScreener, PersistentTTLCache
from resources.warehouse.engine import make_engine
from resources.warehouse.social import SocialStore
from streaming.arrival import ArrivalPricer, arrival_pricer_from_env
from streaming.events import Event
from streaming.extract_codecs import b58encode
from streaming.listen import run_listener
from streaming.sources.base import Emit

EVM = "0x532f27101965dd16442e59d40670faf5ebb142e4"
NOW = datetime(2025, 6, 1, 12, 0, 30, tzinfo=UTC)  # the frozen clock of every simulator and cache here


class CountingSim(SimDexScreener):
    """The simulated DexScreener, counting ``tokens`` requests (what the pricer sends)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.requests: list[tuple[str, tuple[str, ...]]] = []

    def tokens(self, chain: str, addresses: Sequence[str]) -> dict[str, list[PairSnapshot]]:
        self.requests.append((chain, tuple(addresses)))
        return super().tokens(chain, addresses)


class Down(SimDexScreener):
    def tokens(self, chain: str, addresses: Sequence[str]) -> dict[str, list[PairSnapshot]]:
        raise TransientError("dexscreener: connection refused")


def _mints(count: int, sim: SimDexScreener) -> list[str]:
    """Solana mints the simulated DexScreener lists."""
    rng = random.Random(5)
    found: list[str] = []
    while len(found) < count:
        mint = b58encode(bytes(rng.getrandbits(8) for _ in range(32)))
        if sim.is_listed("solana", mint):
            found.append(mint)
    return found


def _event(index: int, text: str) -> Event:
    return Event.from_message(source="replay", channel="alpha", message_id=str(index), author="a", text=text,
                              ts=NOW)


def _cache(tmp_path: Path) -> PersistentTTLCache:
    return PersistentTTLCache(tmp_path / "dex.sqlite", clock=lambda: NOW.timestamp())


def _pricer(tmp_path: Path, client: SimDexScreener) -> ArrivalPricer:
    return ArrivalPricer(CachedDexScreener(client, _cache(tmp_path)), batch_s=0.05)


def test_calls_are_priced_once_per_burst_and_evm_without_a_chain_is_left_to_the_run(tmp_path: Path) -> None:
    sim = CountingSim(seed=42, clock=lambda: NOW)
    mint, other = _mints(2, sim)
    pricer = _pricer(tmp_path, sim)

    async def scenario() -> None:
        await pricer.start()
        pricer.observe(_event(1, f"CA {mint} pump.fun/coin/{mint}"))
        pricer.observe(_event(2, f"echo {mint} and {other} on solana"))
        pricer.observe(_event(3, f"contract {EVM}"))  # no chain named: chain "evm"
        await pricer.close()

    asyncio.run(scenario())
    assert sim.requests == [("solana", (mint, other))]  # one request for the burst, each token once
    assert pricer.stats.requested == 2 and pricer.stats.fetched == 2 and pricer.stats.errors == 0
    cached = CachedDexScreener(sim, _cache(tmp_path))
    pair = cached.best_pair("solana", mint)
    assert pair is not None and pair.fetched_at == NOW
    assert len(sim.requests) == 1  # served from the cache the sidecar filled


def test_a_fresh_price_is_not_fetched_again(tmp_path: Path) -> None:
    clock = [datetime(2025, 6, 1, 12, 0, tzinfo=UTC)]
    sim = CountingSim(seed=42, clock=lambda: clock[0])
    (mint,) = _mints(1, sim)
    dex = CachedDexScreener(sim, PersistentTTLCache(tmp_path / "dex.sqlite", clock=lambda: clock[0].timestamp()))
    assert dex.refresh("solana", [mint], fresh_within_s=15).fetched == 1
    clock[0] += timedelta(seconds=10)
    assert dex.refresh("solana", [mint], fresh_within_s=15).reused == 1
    clock[0] += timedelta(seconds=10)
    assert dex.refresh("solana", [mint], fresh_within_s=15).fetched == 1
    assert len(sim.requests) == 2


def test_a_failing_dexscreener_is_counted_and_never_stops_the_sidecar(tmp_path: Path) -> None:
    pricer = _pricer(tmp_path, Down(seed=42, clock=lambda: NOW))
    url = f"sqlite:///{tmp_path / 'w.db'}"
    mint = _mints(1, SimDexScreener(seed=42, clock=lambda: NOW))[0]

    class Calls:
        name = "calls"

        async def run(self, emit: Emit) -> None:
            for index in range(5):
                await emit(_event(index, f"call {index}: {mint} on solana"))

    async def scenario() -> None:
        report = await run_listener(SignalworksSocialConfig(), warehouse_url=url, spool_path=tmp_path / "s.jsonl",
                                    extra_sources=[Calls()], include_configured=False, once=True,
                                    health_interval_s=60, arrival=pricer)
        assert report.sink.written == 5

    asyncio.run(scenario())
    assert SocialStore(make_engine(url)).count() == 5
    assert pricer.stats.errors >= 1 and pricer.stats.fetched == 0


def test_the_pricer_follows_the_code_locations_settings(tmp_path: Path) -> None:
    pricer = arrival_pricer_from_env({"SIGNALWORKS_SIM_SEED": "7"}, tmp_path)
    assert isinstance(pricer.dex.client, SimDexScreener) and pricer.dex.client.seed == 7
    assert pricer.dex.cache.path == (tmp_path / "cache" / "dexscreener.sqlite").resolve()
    pricer.dex.cache.close()
    with pytest.raises(ValueError, match="sim or live"):
        arrival_pricer_from_env({"SIGNALWORKS_DEXSCREENER": "paper"}, tmp_path)


def test_closing_the_live_pricer_closes_its_http_client_and_cache(tmp_path: Path) -> None:
    """The sidecar's live DexScreener client holds a connection pool: closing the pricer closes it."""
    pricer = arrival_pricer_from_env({"SIGNALWORKS_DEXSCREENER": "live",
                                      "SIGNALWORKS_DEXSCREENER_BASE_URL": "http://127.0.0.1:9"}, tmp_path)
    assert not pricer.dex.client.closed
    asyncio.run(pricer.close())
    assert pricer.dex.client.closed and pricer.dex.cache.closed


def test_in_lockstep_a_replay_prices_each_call_at_its_own_stream_time(tmp_path: Path) -> None:
    from resources.clock import StreamClock
    from streaming.sources.replay import ReplaySource

    start = datetime(2026, 3, 9, 17, 45, 10, tzinfo=UTC)
    clock = StreamClock(start)
    sim = CountingSim(seed=42, clock=clock.now, epoch=start)
    mints = _mints(4, sim)
    recorded = datetime(2025, 1, 1, tzinfo=UTC)
    records = [{"source": "replay", "channel": "alpha", "message_id": str(i), "author": "a",
                "text": f"gem {mint} pump.fun/coin/{mint}", "ts": (recorded + timedelta(seconds=97 * i)).isoformat()}
               for i, mint in enumerate(mints)]
    cache = PersistentTTLCache(tmp_path / "dex.sqlite", clock=lambda: clock.now().timestamp())
    pricer = ArrivalPricer(CachedDexScreener(sim, cache), lockstep=True)
    replay = ReplaySource(records=records, speed=float("inf"), stream_clock=clock)
    asyncio.run(run_listener(SignalworksSocialConfig(), warehouse_url=f"sqlite:///{tmp_path / 'w.db'}",
                             spool_path=tmp_path / "s.jsonl", extra_sources=[replay], include_configured=False,
                             once=True, health_interval_s=0, arrival=pricer))
    cached = CachedDexScreener(sim, PersistentTTLCache(tmp_path / "dex.sqlite", clock=lambda: clock.now().timestamp()))
    fetched = [cached.best_pair("solana", mint).fetched_at for mint in mints]  # type: ignore[union-attr]
    called = [start + timedelta(seconds=97 * i) for i in range(len(mints))]
    assert fetched == called
    assert pricer.stats.fetched == len(mints) and pricer.stats.errors == 0
