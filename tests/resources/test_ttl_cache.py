"""PersistentTTLCache (a real SQLite file, real processes) and CachedDexScreener over the real twin.

Time is a fake clock wherever expiry matters; concurrency uses real processes started with the
``spawn`` method, writing one file at the same moment.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from resources.dexscreener import METADATA_FIELDS, PRICE_FIELDS, PairSnapshot
from resources.dexscreener_sim import SimDexScreener
from resources.ttl_cache import (
    METADATA_NAMESPACE,
    PRICE_NAMESPACE,
    CachedDexScreener,
    CacheEntry,
    CacheStats,
    PersistentTTLCache,
)

T0 = datetime(2025, 11, 6, 12, 0, tzinfo=UTC)


class FakeClock:
    """One fake time for the cache (epoch seconds) and the twin (aware datetime)."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def epoch(self) -> float:
        return self.now.timestamp()

    def utc(self) -> datetime:
        return self.now


class CountingTwin:
    """The real SimDexScreener, counting the calls that reach it (what a fetch costs)."""

    def __init__(self, sim: SimDexScreener) -> None:
        self.sim = sim
        self.calls: list[tuple[str, tuple[str, ...]]] = []

    def token_pairs(self, chain: str, address: str) -> list[PairSnapshot]:
        self.calls.append(("token_pairs", (address,)))
        return self.sim.token_pairs(chain, address)

    def tokens(self, chain: str, addresses: Sequence[str]) -> dict[str, list[PairSnapshot]]:
        self.calls.append(("tokens", tuple(addresses)))
        return self.sim.tokens(chain, addresses)

    def best_pair(self, chain: str, address: str) -> PairSnapshot | None:
        self.calls.append(("best_pair", (address,)))
        return self.sim.best_pair(chain, address)

    def now(self) -> datetime:
        return self.sim.now()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(tmp_path: Path, clock: FakeClock) -> Iterator[PersistentTTLCache]:
    with PersistentTTLCache(tmp_path / "cache" / "ttl.db", clock=clock.epoch) as opened:
        yield opened


def evm(i: int) -> str:
    return f"0x{i:040x}"


def listed_addresses(sim: SimDexScreener, n: int, chain: str = "base") -> list[str]:
    found = [a for a in (evm(i) for i in range(10 * n)) if sim.is_listed(chain, a)]
    return found[:n]


# -- PersistentTTLCache -------------------------------------------------------------------------
def test_get_honours_each_entrys_expiry(cache: PersistentTTLCache, clock: FakeClock) -> None:
    cache.set("ns", "short", {"v": 1}, ttl_s=10)
    cache.set("ns", "long", [1, 2.5, "x", None, {"deep": True}], ttl_s=100)
    assert cache.get("ns", "short") == {"v": 1}
    clock.advance(9.999)
    assert cache.get("ns", "short") == {"v": 1}
    clock.advance(0.001)
    assert cache.get("ns", "short") is None  # expired exactly at stored + ttl
    assert cache.get("ns", "long") == [1, 2.5, "x", None, {"deep": True}]
    clock.advance(90)
    assert cache.get("ns", "long") is None
    assert cache.get("ns", "never-set") is None


def test_namespaces_are_separate_and_a_set_overwrites(
    cache: PersistentTTLCache, clock: FakeClock
) -> None:
    cache.set("a", "k", 1, ttl_s=10)
    cache.set("b", "k", 2, ttl_s=10)
    assert (cache.get("a", "k"), cache.get("b", "k")) == (1, 2)
    clock.advance(8)
    cache.set("a", "k", 3, ttl_s=10)  # a new value and a new expiry
    clock.advance(5)
    assert (cache.get("a", "k"), cache.get("b", "k")) == (3, None)


def test_entries_survive_closing_and_reopening_the_file(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "ttl.db"
    with PersistentTTLCache(path, clock=clock.epoch) as first:
        first.set("prices", "solana:abc", {"price": 0.000123}, ttl_s=300)
        first.set_many([CacheEntry("meta", f"k{i}", {"i": i}, 86400) for i in range(50)])
    with PersistentTTLCache(path, clock=clock.epoch) as second:
        assert second.get("prices", "solana:abc") == {"price": 0.000123}
        assert [second.get("meta", f"k{i}") for i in range(50)] == [{"i": i} for i in range(50)]
        assert second.stats().hits == 51  # counts start from zero in each instance
        clock.advance(300)
        assert second.get("prices", "solana:abc") is None  # expiry was persisted too
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


@pytest.mark.parametrize(
    ("value", "ttl_s", "error"),
    [
        (None, 10, ValueError),
        (float("nan"), 10, ValueError),
        ({"x": float("inf")}, 10, ValueError),
        ({"x": object()}, 10, TypeError),
        (1, 0, ValueError),
        (1, -5, ValueError),
    ],
)
def test_values_json_cannot_hold_exactly_are_refused(
    cache: PersistentTTLCache, value: object, ttl_s: float, error: type[Exception]
) -> None:
    with pytest.raises(error):
        cache.set_many([CacheEntry("ns", "ok", 1, 10), CacheEntry("ns", "bad", value, ttl_s)])
    assert cache.get("ns", "ok") is None  # nothing of the batch was stored


def test_purge_expired_deletes_only_expired_entries(
    cache: PersistentTTLCache, clock: FakeClock
) -> None:
    cache.set_many([CacheEntry("ns", f"s{i}", i, 10) for i in range(5)])
    cache.set_many([CacheEntry("ns", f"l{i}", i, 1000) for i in range(3)])
    assert cache.size() == 8
    clock.advance(10)
    assert cache.size("ns") == 3
    assert cache.purge_expired() == 5
    assert cache.purge_expired() == 0
    assert cache.get("ns", "l2") == 2
    assert cache.delete("ns", "l2") and not cache.delete("ns", "l2")
    assert cache.size() == 2


def test_stats_count_hits_and_misses_per_namespace(
    cache: PersistentTTLCache, clock: FakeClock
) -> None:
    assert cache.stats() == CacheStats() and cache.stats().hit_rate is None
    cache.set("p", "a", 1, ttl_s=5)
    cache.set("m", "a", 1, ttl_s=50)
    for _ in range(3):
        cache.get("p", "a")
        cache.get("m", "a")
    clock.advance(6)
    cache.get("p", "a")
    cache.get("m", "a")
    cache.get("m", "missing")
    overall = cache.stats()
    assert (overall.hits, overall.misses, overall.lookups) == (7, 2, 9)
    assert overall.hit_rate == pytest.approx(7 / 9)
    assert overall.namespaces == {"p": CacheStats(3, 1), "m": CacheStats(4, 1)}
    assert cache.stats("p").hit_rate == 0.75
    assert cache.stats("unused") == CacheStats()
    cache.reset_stats()
    assert cache.stats().lookups == 0


def _writer(path: str, worker: int, n: int, start: multiprocessing.synchronize.Event) -> None:
    """Child process: wait for the start signal, then write (and read) ``n`` entries one by one."""
    start.wait(timeout=30)
    cache = PersistentTTLCache(Path(path), busy_timeout_s=30.0)
    for i in range(n):
        cache.set("own", f"w{worker}-{i}", {"worker": worker, "i": i}, ttl_s=3600)
        cache.set("shared", f"k{i}", {"worker": worker, "i": i}, ttl_s=3600)
        if i % 10 == 0:
            cache.set_many([CacheEntry("batch", f"w{worker}-{i}-{j}", j, 3600) for j in range(20)])
            cache.get("shared", f"k{i // 2}")
    cache.close()


def test_concurrent_writers_in_separate_processes_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared" / "ttl.db"  # not created yet: the writers race to set it up
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    n, workers = 150, 3
    procs = [ctx.Process(target=_writer, args=(str(path), w, n, start)) for w in range(workers)]
    for proc in procs:
        proc.start()
    start.set()
    for proc in procs:
        proc.join(timeout=60)
    assert [proc.exitcode for proc in procs] == [0] * workers  # no "database is locked"
    with PersistentTTLCache(path) as cache:
        for w in range(workers):
            assert all(cache.get("own", f"w{w}-{i}") == {"worker": w, "i": i} for i in range(n))
        shared = [cache.get("shared", f"k{i}") for i in range(n)]
        assert all(v is not None and v["i"] == i for i, v in enumerate(shared))
        assert cache.size("batch") == workers * (n // 10) * 20
        assert cache.size() == workers * n + n + workers * (n // 10) * 20


def test_threads_sharing_one_instance_and_another_instance_on_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ttl.db"
    one, two = PersistentTTLCache(path), PersistentTTLCache(path)
    errors: list[BaseException] = []

    def work(cache: PersistentTTLCache, tag: str) -> None:
        try:
            for i in range(100):
                cache.set("t", f"{tag}{i}", i, ttl_s=60)
                assert cache.get("t", f"{tag}{i}") == i
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [
        threading.Thread(target=work, args=(c, f"{c is one}-{k}-"))
        for c in (one, two)
        for k in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert one.size("t") == 600 and one.stats().hits + two.stats().hits == 600
    one.close()
    two.close()


# -- CachedDexScreener --------------------------------------------------------------------------
def make_cached(
    cache: PersistentTTLCache, clock: FakeClock, **ttls: float
) -> tuple[CachedDexScreener, CountingTwin]:
    twin = CountingTwin(SimDexScreener(clock=clock.utc))
    return CachedDexScreener(twin, cache, **ttls), twin


def test_prices_are_refetched_after_5_minutes_metadata_is_kept(
    cache: PersistentTTLCache, clock: FakeClock
) -> None:
    cached, twin = make_cached(cache, clock)
    (address,) = listed_addresses(twin.sim, 1)
    first = cached.best_pair("base", address)
    assert first is not None and first == twin.sim.best_pair("base", address)
    assert len(twin.calls) == 1
    clock.advance(299)
    assert cached.best_pair("base", address) == first  # the 5-minute-old prices, from the cache
    assert len(twin.calls) == 1
    clock.advance(1)
    second = cached.best_pair("base", address)
    assert len(twin.calls) == 2
    assert second is not None and second.fetched_at == clock.now
    assert second.part(METADATA_FIELDS) == first.part(METADATA_FIELDS)
    assert second.part(PRICE_FIELDS) != first.part(PRICE_FIELDS)
    stats = cached.stats()
    assert (stats.hits, stats.misses, stats.hit_rate) == (1, 2, pytest.approx(1 / 3))
    assert stats.namespaces[PRICE_NAMESPACE] == CacheStats(hits=1, misses=2)
    assert stats.namespaces[METADATA_NAMESPACE] == CacheStats(hits=1, misses=0)


def test_an_expired_metadata_entry_forces_a_fetch_even_with_live_prices(
    cache: PersistentTTLCache, clock: FakeClock
) -> None:
    cached, twin = make_cached(cache, clock, price_ttl_s=300, metadata_ttl_s=60)
    (address,) = listed_addresses(twin.sim, 1)
    cached.best_pair("base", address)
    clock.advance(30)
    cached.best_pair("base", address)
    assert len(twin.calls) == 1
    clock.advance(30)
    cached.best_pair("base", address)
    assert len(twin.calls) == 2  # prices were live (60 s old), metadata had expired
    assert cache.stats(METADATA_NAMESPACE) == CacheStats(hits=1, misses=1)


def test_metadata_lives_24_hours_in_the_file(cache: PersistentTTLCache, clock: FakeClock) -> None:
    cached, twin = make_cached(cache, clock)
    (address,) = listed_addresses(twin.sim, 1)
    snapshot = cached.best_pair("base", address)
    assert snapshot is not None
    key = f"base:{address}"
    clock.advance(86399)
    assert cache.get(PRICE_NAMESPACE, key) is None
    assert cache.get(METADATA_NAMESPACE, key) == snapshot.part(METADATA_FIELDS)
    clock.advance(1)
    assert cache.get(METADATA_NAMESPACE, key) is None


def test_an_unlisted_token_is_remembered_for_the_price_ttl(
    cache: PersistentTTLCache, clock: FakeClock
) -> None:
    cached, twin = make_cached(cache, clock)
    unlisted = next(a for a in (evm(i) for i in range(500)) if not twin.sim.is_listed("base", a))
    assert cached.best_pair("base", unlisted) is None
    assert cached.best_pair("base", unlisted) is None
    assert len(twin.calls) == 1
    clock.advance(300)
    assert cached.best_pair("base", unlisted) is None
    assert len(twin.calls) == 2


def test_the_cache_serves_a_restarted_process_without_fetching(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "ttl.db"
    with PersistentTTLCache(path, clock=clock.epoch) as before:
        cached, twin = make_cached(before, clock)
        addresses = listed_addresses(twin.sim, 3)
        snapshots = [cached.best_pair("base", a) for a in addresses]
    clock.advance(120)
    with PersistentTTLCache(path, clock=clock.epoch) as after:
        restarted, twin_after = make_cached(after, clock)
        assert [restarted.best_pair("base", a) for a in addresses] == snapshots
        assert twin_after.calls == [] and restarted.hit_rate == 1.0


def test_evm_addresses_share_one_entry_whatever_their_case(
    cache: PersistentTTLCache, clock: FakeClock
) -> None:
    cached, twin = make_cached(cache, clock)
    (address,) = listed_addresses(twin.sim, 1)
    first = cached.best_pair("base", address)
    again = cached.best_pair("base", "0x" + address[2:].upper())
    assert again == first and len(twin.calls) == 1
    assert cached.best_pair("ethereum", address) is not None and len(twin.calls) == 2  # other chain


def test_best_pairs_fetches_only_the_expired_tokens_in_one_batch(
    cache: PersistentTTLCache, clock: FakeClock
) -> None:
    cached, twin = make_cached(cache, clock)
    addresses = listed_addresses(twin.sim, 10)
    early, late = addresses[:5], addresses[5:]
    cached.best_pairs("base", early)
    clock.advance(200)
    cached.best_pairs("base", late)
    assert twin.calls == [("tokens", tuple(early)), ("tokens", tuple(late))]
    clock.advance(150)  # early prices are 350 s old, late ones 150 s
    result = cached.best_pairs("base", [*addresses, addresses[0]])
    assert twin.calls[-1] == ("tokens", tuple(early))
    assert list(result) == addresses
    assert all(result[a] == twin.sim.best_pair("base", a) for a in early)
    assert all(
        result[a] is not None and result[a].fetched_at == T0 + timedelta(seconds=200) for a in late
    )  # type: ignore[union-attr]
    assert cached.stats().hits == 5 and cached.stats().misses == 15


def test_a_fetch_error_caches_nothing(cache: PersistentTTLCache, clock: FakeClock) -> None:
    class Failing(CountingTwin):
        def best_pair(self, chain: str, address: str) -> PairSnapshot | None:
            raise RuntimeError("network down")

    cached = CachedDexScreener(Failing(SimDexScreener(clock=clock.utc)), cache)
    with pytest.raises(RuntimeError):
        cached.best_pair("base", evm(1))
    assert cache.size() == 0


def test_ttls_must_be_positive(cache: PersistentTTLCache) -> None:
    with pytest.raises(ValueError, match="TTL"):
        CachedDexScreener(SimDexScreener(), cache, price_ttl_s=0)


def test_closing_is_reported_and_harmless_twice(tmp_path: Path) -> None:
    cache = PersistentTTLCache(tmp_path / "ttl.db")
    assert not cache.closed
    cache.close()
    cache.close()
    assert cache.closed
    with pytest.raises(sqlite3.ProgrammingError):
        cache.get("ns", "k")  # a closed cache cannot be used by mistake
