"""DexScreenerClient against a loopback replay of real recorded responses, and the SimDexScreener twin.

Client tests read ``../shared/fixtures/dexscreener`` (skipped when it is absent, failed under CI).
Nothing here leaves 127.0.0.1, and no test really sleeps for a back-off.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from resources.dexscreener import (
    MAX_BATCH,
    METADATA_FIELDS,
    PRICE_FIELDS,
    RATE_LIMIT_PER_MINUTE,
    DexScreenerClient,
    DexScreenerSource,
    PairSnapshot,
    shared_rate_limit,
)
from resources.dexscreener_sim import CHAINS, SimDexScreener
from resources.exchanges.errors import (
    PermanentError,
    RateLimitedError,
    RetriesExhaustedError,
    TransientError,
)
from resources.rate_limit import SharedRateLimit, SlidingWindowLimit
from resources.retry import RetryPolicy
from tests.support.clocks import VirtualClock
from tests.support.dexscreener_replay import USD1, DexScreenerReplay, Fault
from tests.support.fixtures import shared_fixtures_dir

NOW = datetime(2025, 11, 6, 8, 15, 30, tzinfo=UTC)
USDC_SOLANA = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
USD1_EVM = "0x8d0D000Ee44948FC98c9B98A4FA4921476f08B0d"  # USD1 on bsc/ethereum, as recorded
UNKNOWN_SOLANA = "So1aNaUnknownMint1111111111111111111111111"
TOKEN_PAIRS_USD1 = f"/token-pairs/v1/solana/{USD1}"


@pytest.fixture
def dexscreener_dir() -> Path:
    return shared_fixtures_dir() / "dexscreener"


@pytest.fixture
def replay(dexscreener_dir: Path) -> Iterator[DexScreenerReplay]:
    with DexScreenerReplay(dexscreener_dir) as server:
        yield server


@pytest.fixture
def waits() -> list[float]:
    """Every back-off the retry policy asked for (recorded instead of slept)."""
    return []


@pytest.fixture
def client(replay: DexScreenerReplay, waits: list[float]) -> Iterator[DexScreenerClient]:
    with make_client(replay.base_url, waits) as live:
        yield live


def make_client(base_url: str, waits: list[float], **overrides: Any) -> DexScreenerClient:
    options: dict[str, Any] = {
        "base_url": base_url,
        "timeout_s": 2.0,
        "retry": RetryPolicy(attempts=4, base_delay=0.01, sleep=waits.append, rng=random.Random(7)),
        "clock": lambda: NOW,
    }
    options.update(overrides)
    return DexScreenerClient(**options)


def recorded(dexscreener_dir: Path, name: str) -> Any:
    return json.loads((dexscreener_dir / "responses" / name).read_text())


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


# -- the live client: parsing -------------------------------------------------------------------
def test_token_pairs_parse_every_recorded_pair_to_the_recorded_numbers(
    client: DexScreenerClient, dexscreener_dir: Path
) -> None:
    raw = recorded(dexscreener_dir, "token-pairs_v1_solana_USD1.json")
    pairs = client.token_pairs("solana", USD1)
    assert len(pairs) == len(raw) == 30
    for pair, item in zip(pairs, raw, strict=True):
        assert pair.chain == item["chainId"] == "solana"
        assert (pair.dex, pair.pair_address) == (item["dexId"], item["pairAddress"])
        assert (pair.base_address, pair.base_symbol) == (
            item["baseToken"]["address"],
            item["baseToken"]["symbol"],
        )
        assert pair.quote_symbol == item["quoteToken"]["symbol"]
        assert pair.price_usd == float(item["priceUsd"])
        assert pair.liquidity_usd == _num((item.get("liquidity") or {}).get("usd"))
        assert pair.volume_24h_usd == item["volume"]["h24"]
        assert pair.market_cap_usd == item["marketCap"]
        assert pair.fdv_usd == item["fdv"]
        assert pair.price_change_5m == _num(item["priceChange"].get("m5"))
        assert pair.price_change_24h == _num(item["priceChange"].get("h24"))
        assert pair.txns_24h_buys == item["txns"]["h24"]["buys"]
        assert pair.txns_24h_sells == item["txns"]["h24"]["sells"]
        assert pair.pair_created_at == datetime.fromtimestamp(item["pairCreatedAt"] / 1000, UTC)
        assert pair.fetched_at == NOW


def test_the_top_recorded_pair_field_by_field(client: DexScreenerClient) -> None:
    top = client.token_pairs("solana", USD1)[0]
    assert top == PairSnapshot(
        chain="solana",
        dex="raydium",
        pair_address="BCDdHonby65iduz3Ev3c9v5XjNkzyu5e56KRFHpBM4T9",
        base_address=USD1,
        base_name="World Liberty Financial USD",
        base_symbol="USD1",
        quote_address=USDC_SOLANA,
        quote_symbol="USDC",
        pair_created_at=datetime(2025, 8, 30, 18, 19, 1, tzinfo=UTC),
        price_usd=0.9989,
        liquidity_usd=15059888.24,
        volume_24h_usd=5083026.67,
        market_cap_usd=157836115.0,
        fdv_usd=157836115.0,
        price_change_5m=None,  # not in the recorded body
        price_change_1h=-0.01,
        price_change_24h=-0.04,
        txns_24h_buys=4678,
        txns_24h_sells=5027,
        fetched_at=NOW,
    )
    assert top.age() == pytest.approx((NOW - top.pair_created_at).total_seconds())  # type: ignore[operator]


def test_a_bonding_curve_pair_without_liquidity_parses_to_none(client: DexScreenerClient) -> None:
    launchlab = [p for p in client.token_pairs("solana", USD1) if p.dex == "launchlab"]
    assert launchlab and all(p.liquidity_usd is None for p in launchlab)


def test_best_pair_is_the_most_liquid_pair_with_the_token_as_base(
    client: DexScreenerClient,
) -> None:
    pairs = client.token_pairs("solana", USD1)
    best = client.best_pair("solana", USD1)
    as_base = [p for p in pairs if p.base_address == USD1]
    assert best is not None and best.pair_address == "BCDdHonby65iduz3Ev3c9v5XjNkzyu5e56KRFHpBM4T9"
    assert best.liquidity_usd == max(p.liquidity_usd or 0.0 for p in as_base)
    # Real USDC is only ever the quote in the recordings (USD1/USDC ...): those prices are the
    # base token's, so USDC has no best pair, and the "USDC"-named mints are other tokens.
    usdc = client.token_pairs("solana", USDC_SOLANA)
    assert usdc and all(p.quote_address == USDC_SOLANA for p in usdc)
    assert client.best_pair("solana", USDC_SOLANA) is None


def test_tokens_batches_at_most_30_addresses_per_request(
    client: DexScreenerClient, replay: DexScreenerReplay, dexscreener_dir: Path
) -> None:
    listed = list(
        dict.fromkeys(p["baseToken"]["address"] for p in replay.pairs if p["chainId"] == "solana")
    )
    unknown = [f"{UNKNOWN_SOLANA[:-3]}{i:03d}" for i in range(65 - len(listed))]
    addresses = [listed[0], *unknown[:20], *listed[1:], *unknown[20:], listed[0]]  # one repeat
    result = client.tokens("solana", addresses)
    assert list(result) == list(dict.fromkeys(addresses))
    sent = replay.requests_to("/tokens/v1/solana/")
    batches = [r.path.rsplit("/", 1)[1].split(",") for r in sent]
    assert [len(b) for b in batches] == [MAX_BATCH, MAX_BATCH, 5]
    assert [a for b in batches for a in b] == list(dict.fromkeys(addresses))
    assert all(result[a] == [] for a in unknown)
    assert all(result[a] for a in listed)
    (usd1,) = [p for p in result[USD1] if p.base_address == USD1]
    (recorded_v1,) = recorded(dexscreener_dir, "tokens_v1_solana_USD1.json")
    assert usd1.pair_address == recorded_v1["pairAddress"]
    assert usd1.liquidity_usd == recorded_v1["liquidity"]["usd"]


def test_a_single_token_batch_replays_the_recorded_tokens_v1_body(
    client: DexScreenerClient, replay: DexScreenerReplay
) -> None:
    result = client.tokens("solana", [USD1])
    assert [p.pair_address for p in result[USD1]] == [
        "BCDdHonby65iduz3Ev3c9v5XjNkzyu5e56KRFHpBM4T9"
    ]
    assert [r.path for r in replay.requests] == [f"/tokens/v1/solana/{USD1}"]


def test_an_unknown_token_is_empty_not_an_error(
    client: DexScreenerClient, replay: DexScreenerReplay
) -> None:
    assert client.token_pairs("solana", UNKNOWN_SOLANA) == []
    assert client.best_pair("solana", UNKNOWN_SOLANA) is None
    assert client.tokens("solana", [UNKNOWN_SOLANA]) == {UNKNOWN_SOLANA: []}
    assert client.tokens("solana", []) == {}
    assert len(replay.requests) == 3


def test_evm_addresses_match_case_insensitively(client: DexScreenerClient) -> None:
    lower = USD1_EVM.lower()
    best = client.best_pair("bsc", lower)
    assert best is not None and best.base_address == USD1_EVM and best.chain == "bsc"
    assert best.liquidity_usd == 344681.55  # the most liquid of the recorded bsc USD1 pairs
    assert client.tokens("bsc", [lower])[lower][0].pair_address == best.pair_address


@pytest.mark.parametrize(
    ("chain", "address"),
    [("", USD1), ("Solana", USD1), ("sol/ana", USD1), ("solana", ""), ("solana", " x")],
)
def test_malformed_arguments_are_rejected_before_any_request(
    client: DexScreenerClient, replay: DexScreenerReplay, chain: str, address: str
) -> None:
    with pytest.raises(ValueError, match=r"chain|address"):
        client.token_pairs(chain, address)
    assert replay.requests == []


def test_an_address_is_percent_encoded_in_the_path(
    client: DexScreenerClient, replay: DexScreenerReplay
) -> None:
    assert client.token_pairs("sui", "0x2::sui/SUI") == []
    assert replay.requests[0].path == "/token-pairs/v1/sui/0x2::sui/SUI"  # decoded by the server


# -- the live client: faults --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fault", "min_wait"),
    [
        (Fault.rate_limited(7), 7.0),
        (Fault.rate_limited(None), 0.0),
        (Fault.status_code(500, {"error": "Internal Server Error"}), 0.0),
        (Fault.status_code(503, "<html>cloudflare</html>"), 0.0),
        (Fault.truncated_json(), 0.0),
        (Fault.status_code(200, "<html>not json</html>"), 0.0),
        (Fault.status_code(200, {"unexpected": "shape"}), 0.0),
        (Fault.status_code(200, '[{"chainId": "solana"}]'), 0.0),  # a pair without its keys
    ],
    ids=[
        "429-retry-after",
        "429-bare",
        "500",
        "503-html",
        "truncated",
        "html-200",
        "dict-200",
        "bad-pair",
    ],
)
def test_a_transient_fault_is_retried_and_then_served(
    client: DexScreenerClient,
    replay: DexScreenerReplay,
    waits: list[float],
    fault: Fault,
    min_wait: float,
) -> None:
    replay.inject(fault)
    pairs = client.token_pairs("solana", USD1)
    assert len(pairs) == 30
    assert len(replay.requests) == 2 and len(waits) == 1 and waits[0] >= min_wait


def test_a_timeout_is_transient_and_retried(replay: DexScreenerReplay, waits: list[float]) -> None:
    replay.inject(Fault.delay(1.0))
    with make_client(replay.base_url, waits, timeout_s=0.2) as client:
        assert len(client.token_pairs("solana", USD1)) == 30
    assert len(waits) == 1


@pytest.mark.parametrize(
    ("fault", "cause", "hint"),
    [
        (Fault.rate_limited(2), RateLimitedError, "300 requests per minute"),
        (Fault.status_code(502, "bad gateway"), TransientError, "Base URL in use"),
    ],
)
def test_a_persistent_transient_fault_exhausts_the_retries(
    client: DexScreenerClient,
    replay: DexScreenerReplay,
    waits: list[float],
    fault: Fault,
    cause: type[Exception],
    hint: str,
) -> None:
    replay.fail_always(fault)
    with pytest.raises(RetriesExhaustedError, match=hint) as info:
        client.best_pair("solana", USD1)
    assert isinstance(info.value.__cause__, RetriesExhaustedError)
    assert isinstance(info.value.__cause__.__cause__, cause)
    assert len(replay.requests) == 4 and len(waits) == 3


@pytest.mark.parametrize("status", [400, 403, 404, 410])
def test_a_4xx_is_permanent_and_not_retried(
    client: DexScreenerClient, replay: DexScreenerReplay, waits: list[float], status: int
) -> None:
    replay.inject(Fault.status_code(status, {"error": "Invalid chain id"}), path=TOKEN_PAIRS_USD1)
    with pytest.raises(PermanentError, match=f"HTTP {status}: Invalid chain id.*chain id"):
        client.token_pairs("solana", USD1)
    assert len(replay.requests) == 1 and waits == []


def test_the_client_keeps_under_its_limit(replay: DexScreenerReplay, waits: list[float]) -> None:
    clock = VirtualClock(1_000.0)
    limit = SlidingWindowLimit(2, 60.0, clock=clock, sleep=clock.sleep)
    with make_client(replay.base_url, waits, rate_limit=limit) as client:
        for _ in range(5):
            client.token_pairs("solana", UNKNOWN_SOLANA)
    assert clock.slept == [60.0, 60.0]  # at most 2 in any 60 s: 2 at once, 2 a minute later, then 1
    assert len(replay.requests) == 5


def test_the_limits_are_the_published_one_of_a_sliding_minute(tmp_path: Path) -> None:
    with DexScreenerClient(base_url="http://127.0.0.1:9") as client:
        assert isinstance(client.rate_limit, SlidingWindowLimit)
        assert (client.rate_limit.limit, client.rate_limit.period_s) == (RATE_LIMIT_PER_MINUTE, 60.0) == (300, 60.0)
    shared = shared_rate_limit(tmp_path / "dexscreener.sqlite")
    assert (shared.name, shared.limit, shared.period_s) == ("dexscreener", 300, 60.0)


#: A small limit keeps the two-process test quick; the rule is the one of :func:`shared_rate_limit`.
PROCESS_LIMIT = 25


def _limited_requests(base_url: str, cache_path: str, n: int, start: float, go: object, results: object) -> None:
    """A process of its own: ``n`` requests under the shared limit, on a virtual clock from ``start``."""
    clock = VirtualClock(start)
    limit = SharedRateLimit(Path(cache_path), name="dexscreener", limit=PROCESS_LIMIT, period_s=60.0, clock=clock,
                            sleep=clock.sleep)
    retry = RetryPolicy(attempts=2, sleep=clock.sleep, seed=0)
    go.wait(60)  # type: ignore[attr-defined]
    times = []
    with DexScreenerClient(base_url=base_url, retry=retry, clock=lambda: NOW, rate_limit=limit) as client:
        for _ in range(n):
            client.token_pairs("solana", UNKNOWN_SOLANA)
            times.append(clock.now)  # the clock moves only while waiting for a slot: the request's time
    results.put(times)  # type: ignore[attr-defined]


def most_in_any_window(times: list[float], period_s: float) -> int:
    """The largest number of ``times`` inside one half-open window ``[t, t + period_s)``."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(ordered):
        while ordered[start] <= t - period_s:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_two_processes_together_never_exceed_the_published_limit(replay: DexScreenerReplay, tmp_path: Path) -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # forking after polars can hang
    go, results = ctx.Event(), ctx.Queue()
    n = 40  # each alone would send 25 in its first minute: together 80 need four minutes
    processes = [ctx.Process(target=_limited_requests,
                             args=(replay.base_url, str(tmp_path / "dexscreener.sqlite"), n, 1_750_000_000.0, go,
                                   results)) for _ in range(2)]
    for process in processes:
        process.start()
    go.set()
    per_process = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert [p.exitcode for p in processes] == [0, 0]
    times = per_process[0] + per_process[1]
    assert len(times) == len(replay.requests) == 2 * n
    assert most_in_any_window(times, 60.0) == PROCESS_LIMIT  # never more, and the limit is used
    assert max(times) - min(times) == 180.0  # 80 requests: 25, 25, 25 and 5 in four successive minutes


def test_requests_name_the_client(client: DexScreenerClient, replay: DexScreenerReplay) -> None:
    client.token_pairs("solana", USD1)
    headers = replay.requests[0].headers
    assert headers["user-agent"].startswith("signalworks/") and "json" in headers["accept"]


# -- the snapshot --------------------------------------------------------------------------------
def test_price_and_metadata_fields_partition_the_snapshot() -> None:
    names = [f.name for f in dataclasses.fields(PairSnapshot)]
    assert set(PRICE_FIELDS).isdisjoint(METADATA_FIELDS)
    assert sorted(PRICE_FIELDS + METADATA_FIELDS) == sorted(names)


def test_a_snapshot_survives_a_json_round_trip_of_its_parts() -> None:
    snapshot = SimDexScreener(clock=lambda: NOW).best_pair("base", "0x" + "ab" * 20)
    assert snapshot is not None
    parts = [json.loads(json.dumps(snapshot.part(f))) for f in (METADATA_FIELDS, PRICE_FIELDS)]
    assert PairSnapshot.from_parts(*parts) == snapshot


# -- the twin ------------------------------------------------------------------------------------
def evm(i: int) -> str:
    return f"0x{i:040x}"


def solana_mint(i: int) -> str:
    return f"{i:04d}".replace("0", "z") + "pumpXYZabcdefghijkmnopqrstuvwx"  # 34 base58 characters


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def test_the_client_and_the_twin_share_one_contract(client: DexScreenerClient) -> None:
    assert isinstance(client, DexScreenerSource)
    assert isinstance(SimDexScreener(), DexScreenerSource)


def test_the_twin_is_a_pure_function_of_seed_address_and_time() -> None:
    a = SimDexScreener(seed=7, clock=lambda: NOW).tokens(
        "solana", [solana_mint(i) for i in range(20)]
    )
    b = SimDexScreener(seed=7, clock=lambda: NOW).tokens(
        "solana", [solana_mint(i) for i in range(20)]
    )
    c = SimDexScreener(seed=8, clock=lambda: NOW).tokens(
        "solana", [solana_mint(i) for i in range(20)]
    )
    assert a == b
    assert a != c
    later = NOW + timedelta(seconds=25)  # same minute: same numbers, newer fetched_at
    same_minute = SimDexScreener(seed=7, clock=lambda: later).tokens("solana", list(a))
    for address, pairs in a.items():
        assert [dataclasses.replace(p, fetched_at=later) for p in pairs] == same_minute[address]


def test_the_twin_anchored_at_an_epoch_shows_the_same_market_at_the_same_offsets() -> None:
    """A replay anchors the twin at its stream's start: the market it meets k minutes in is the
    same whatever the date (only the instants move with the epoch)."""
    offsets = [timedelta(seconds=s) for s in (0, 59, 60, 3_600, 86_400 * 9 + 17)]
    tokens = [solana_mint(i) for i in range(30)]

    def market(epoch: datetime) -> list[list[tuple]]:
        views = []
        for offset in offsets:
            sim = SimDexScreener(seed=7, epoch=epoch, clock=lambda o=offset: epoch + o)
            views.append([
                (p.pair_address, p.price_usd, p.liquidity_usd, p.volume_24h_usd, p.pair_created_at - epoch)
                for pairs in sim.tokens("solana", tokens).values() for p in pairs
            ])
        return views

    anchored = [market(epoch) for epoch in (NOW, NOW + timedelta(days=137, seconds=7), datetime(2027, 2, 3, tzinfo=UTC))]
    assert anchored[0] == anchored[1] == anchored[2]
    assert any(row for row in anchored[0]) and anchored[0][0] != anchored[0][3]  # listed, and it moves
    unanchored = SimDexScreener(seed=7, clock=lambda: NOW).tokens("solana", tokens)
    assert [p.price_usd for pairs in unanchored.values() for p in pairs] != [row[1] for row in anchored[0][0]]
    with pytest.raises(ValueError, match="naive"):
        SimDexScreener(epoch=datetime(2025, 1, 1))


@pytest.mark.parametrize("chain", ["solana", "ethereum", "bsc", "base", "arbitrum", "polygon"])
def test_twin_snapshots_look_like_memecoin_pairs(chain: str) -> None:
    sim = SimDexScreener(clock=lambda: NOW)
    addresses = [solana_mint(i) if chain == "solana" else evm(i) for i in range(40)]
    best = [sim.best_pair(chain, a) for a in addresses]
    listed = [p for p in best if p is not None]
    assert len(listed) >= 30
    for address, pair in zip(addresses, best, strict=True):
        if pair is None:
            continue
        assert (pair.chain, pair.base_address, pair.fetched_at) == (chain, address, NOW)
        assert pair.quote_symbol == CHAINS[chain].native_symbol and pair.dex in CHAINS[chain].dexes
        assert pair.price_usd is not None and pair.price_usd > 0
        assert pair.market_cap_usd is not None and 50 <= pair.market_cap_usd <= 5e9
        assert pair.market_cap_usd <= pair.fdv_usd  # type: ignore[operator]
        assert 0 < pair.liquidity_usd < pair.market_cap_usd  # type: ignore[operator]
        assert pair.volume_24h_usd is not None and pair.volume_24h_usd >= 0
        assert pair.txns_24h_buys is not None and pair.txns_24h_sells is not None
        assert timedelta(hours=1) <= NOW - pair.pair_created_at <= timedelta(days=22)  # type: ignore[operator]
        if chain != "solana":
            assert len(pair.pair_address) == 42 and pair.pair_address.startswith("0x")
    assert len({p.pair_address for p in listed}) == len(listed)
    assert len({p.base_symbol for p in listed}) > len(listed) // 2


def test_twin_price_changes_agree_with_its_own_past_prices() -> None:
    clock = Clock(NOW)
    sim = SimDexScreener(clock=clock)
    for i in range(30):
        address = evm(i)
        clock.now = NOW
        now = sim.best_pair("base", address)
        if now is None:
            continue
        for minutes, change in ((5, now.price_change_5m), (60, now.price_change_1h)):
            clock.now = NOW - timedelta(minutes=minutes)
            listing = sim.listing("base", address, NOW)
            if listing is None or clock.now < listing.created_at:
                continue
            before = sim.best_pair("base", address)
            assert before is not None and before.pair_address == now.pair_address
            implied = 100 * (now.price_usd / before.price_usd - 1)  # type: ignore[operator]
            assert change == pytest.approx(implied, rel=1e-3, abs=0.02)


def test_twin_metadata_is_stable_while_prices_move() -> None:
    clock = Clock(NOW)
    sim = SimDexScreener(clock=clock)
    compared = moved = 0
    for i in range(60):
        address = evm(i)
        listing = sim.listing("ethereum", address, NOW)
        if listing is None or listing.relists_at <= NOW + timedelta(hours=6):
            continue
        snaps = []
        for hours in (0, 1, 6):
            clock.now = NOW + timedelta(hours=hours)
            snaps.append(sim.best_pair("ethereum", address))
        parts = [s.part(METADATA_FIELDS) for s in snaps if s is not None]
        assert len(parts) == 3 and parts[0] == parts[1] == parts[2]
        compared += 1
        moved += len({s.price_usd for s in snaps if s is not None}) == 3
    assert compared >= 40 and moved >= compared - 1


def test_a_new_listing_takes_over_at_relists_at() -> None:
    sim = SimDexScreener()
    listing = sim.listing("solana", solana_mint(3), NOW)
    assert (
        listing is not None and listing.created_at + timedelta(hours=1) <= NOW < listing.relists_at
    )
    before = SimDexScreener(clock=lambda: listing.relists_at - timedelta(minutes=1))
    after = SimDexScreener(clock=lambda: listing.relists_at)
    old, new = before.best_pair("solana", solana_mint(3)), after.best_pair("solana", solana_mint(3))
    assert old is not None and new is not None
    assert old.pair_address != new.pair_address
    assert new.pair_created_at == listing.relists_at - timedelta(hours=1)
    assert (old.base_symbol, old.base_name) == (new.base_symbol, new.base_name)  # same token


def test_the_twin_has_pumps_and_rugs() -> None:
    sim = SimDexScreener(clock=lambda: NOW)
    batch = sim.tokens("bsc", [evm(i) for i in range(120)])
    changes = [pairs[0].price_change_24h or 0.0 for pairs in batch.values() if pairs]
    assert max(changes) > 100  # pumped
    assert min(changes) < -80  # rugged
    assert sum(abs(c) < 50 for c in changes) > len(changes) / 2  # most days are quieter


def test_some_addresses_are_not_listed_deterministically() -> None:
    sim = SimDexScreener(clock=lambda: NOW)
    unlisted = [a for a in (evm(i) for i in range(2000)) if not sim.is_listed("base", a)]
    assert 0.03 < len(unlisted) / 2000 < 0.07
    assert all(sim.token_pairs("base", a) == [] for a in unlisted[:20])
    assert all(sim.best_pair("base", a) is None for a in unlisted[:20])
    assert unlisted == [
        a for a in (evm(i) for i in range(2000)) if not SimDexScreener().is_listed("base", a)
    ]
    listed = next(a for a in (evm(i) for i in range(50)) if sim.is_listed("base", a))
    forced = SimDexScreener(
        clock=lambda: NOW, unknown_addresses=[listed.upper().replace("0X", "0x")]
    )
    assert forced.best_pair("base", listed) is None
    assert SimDexScreener(unknown_fraction=0.0).is_listed("base", unlisted[0])


@pytest.mark.parametrize(
    ("chain", "address"),
    [
        ("base", "0x1234"),  # too short
        ("ethereum", USD1),  # a Solana mint on an EVM chain
        ("solana", evm(1)),  # 0 and x are not base58
        ("evm", evm(1)),  # chain left undecided by extraction
        ("tron", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"),  # not simulated
    ],
)
def test_the_twin_lists_nothing_for_a_malformed_address_or_unsimulated_chain(
    chain: str, address: str
) -> None:
    sim = SimDexScreener(clock=lambda: NOW, unknown_fraction=0.0)
    assert sim.token_pairs(chain, address) == []
    assert sim.tokens(chain, [address]) == {address: []}


def test_twin_tokens_agree_with_token_pairs_and_evm_case_does_not_matter() -> None:
    sim = SimDexScreener(clock=lambda: NOW)
    addresses = [evm(i) for i in range(1, 200, 7)]
    batch = sim.tokens("arbitrum", addresses)
    assert batch == {a: sim.token_pairs("arbitrum", a) for a in addresses}
    assert sum(len(pairs) == 2 for pairs in batch.values()) >= 3  # some listings have a USDC pair
    for address, pairs in batch.items():
        upper = "0x" + address[2:].upper()
        other = sim.token_pairs("arbitrum", upper)
        assert [p.part(PRICE_FIELDS) for p in other] == [p.part(PRICE_FIELDS) for p in pairs]
        if pairs:
            assert sim.best_pair("arbitrum", address) == pairs[0]  # the main pair is the deepest


def test_the_sidecar_and_the_runs_take_their_requests_from_one_limit(tmp_path: Path) -> None:
    from resources.social_resources import LiveDexScreenerResource
    from streaming.arrival import arrival_pricer_from_env

    pricer = arrival_pricer_from_env({"SIGNALWORKS_DEXSCREENER": "live",
                                      "SIGNALWORKS_DEXSCREENER_BASE_URL": "http://127.0.0.1:9"}, tmp_path)
    resource = LiveDexScreenerResource(cache_path=str((tmp_path / "cache" / "dexscreener.sqlite").resolve()),
                                       base_url="http://127.0.0.1:9")
    with resource.session() as session:
        sidecar_limit = pricer.dex.client.rate_limit  # type: ignore[attr-defined]
        run_limit = session.client.rate_limit  # type: ignore[attr-defined]
        assert isinstance(sidecar_limit, SharedRateLimit) and isinstance(run_limit, SharedRateLimit)
        assert (sidecar_limit.path, sidecar_limit.name) == (run_limit.path, run_limit.name)
    pricer.dex.cache.close()
    pricer.dex.client.close()  # type: ignore[attr-defined]
