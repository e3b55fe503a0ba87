"""Offline twin of :class:`resources.dexscreener.DexScreenerClient`: memecoin-like DEX pairs.

:class:`SimDexScreener` answers ``token_pairs``, ``tokens``, ``best_pair`` and ``pair`` (a pair it
has shown, looked up by its address) with the same
:class:`~resources.dexscreener.PairSnapshot` objects as the live client, as a pure function of
``(seed, chain, address, minutes since the epoch)`` (values change once a minute; only
``fetched_at`` carries the exact clock time). The epoch is the Unix epoch unless one is given: a
replay anchors the market at its stream's start, so its calls meet the same market whatever the
calendar says (see :class:`SimDexScreener`). Any well-formed address gets pairs, so replayed synthetic calls can
be enriched, except a deterministic ``unknown_fraction`` of addresses (and any address listed in
``unknown_addresses``) that DexScreener "does not list": ``[]``, as from the real API.

The model, per token:

* **Listings.** A token is listed in cycles of ``P`` minutes (per token, 2-21 days, log-uniform,
  with a per-token phase): the listing that is current at time ``t`` is the latest one created at
  least an hour before ``t``, so the pair is always some hours to days old and its metadata
  (pair address, DEX, symbols, ``pair_created_at``) is stable until the next listing takes over
  at :attr:`SimListing.relists_at` (as when a pump.fun coin migrates to a new pool).
* **Price.** From a launch market cap of $5k-$200k, the log price follows a heavy-tailed random
  walk (Student t, 3 d.o.f.) whose volatility decays from 2-4.5 % to 0.2-0.6 % a minute, plus pumps
  (one every 1-5 days: x1.3-x4 over 3-45 minutes, then a 50-100 % retrace) and, in a quarter of listings, a rug pull
  (-90 to -99 % within minutes; liquidity drains to 0.5-5 %).
* **Liquidity, volume, trades.** Liquidity grows with the square root of market cap; per-minute
  volume is market cap x a turnover that decays with age, higher on big moves; the 24 h volume
  and trade counts are sums over the listing's path, so they agree with the price moves.
* **Pairs.** A main pair against the chain's wrapped native token and, in about a third of the
  listings, a smaller USDC pair on another DEX created later.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from resources.dexscreener import PairSnapshot, most_liquid, same_address
from resources.exchanges.base import Clock

MINUTES_PER_DAY = 1440
MINUTE = timedelta(minutes=1)
UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: A listing becomes current this many minutes after its pair is created.
MIN_AGE_MIN = 60
#: How many served pair addresses the twin remembers for :meth:`SimDexScreener.pair`.
PAIR_INDEX_SIZE = 65_536
_EVM_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_SOLANA_RE = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{32,44}$")
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
#: Two-letter syllables of simulated token symbols, concatenated.
_SYLLABLES = "pepobonkdogemooncatzwifishibkaruzolumigabakotaneroxiyuqufave"
_SUFFIXES = ("", "", "", " Inu", " Coin", " AI", " Cat", " Frog", " on Sol", " 2.0")


@dataclass(frozen=True)
class ChainProfile:
    """How pairs look on one chain: address family, DEXes, wrapped native and USDC contracts."""

    family: str  # "evm" or "solana"
    dexes: tuple[str, ...]
    native_symbol: str
    native_address: str
    usdc_address: str


# fmt: off
_CHAIN_TABLE = (  # chain, family, DEXes, wrapped native symbol and contract, USDC contract
    ("solana", "solana", "raydium pumpswap meteora orca", "SOL",
     "So11111111111111111111111111111111111111112", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"),
    ("ethereum", "evm", "uniswap sushiswap", "WETH",
     "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"),
    ("bsc", "evm", "pancakeswap uniswap", "WBNB",
     "0xbb4CdB9CBd36B01bD1cBaEBF2De08d9173bc095c", "0x8AC76a51cc950d9822D68b83fE1Ad97B32Cd580d"),
    ("base", "evm", "aerodrome uniswap", "WETH",
     "0x4200000000000000000000000000000000000006", "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"),
    ("arbitrum", "evm", "uniswap camelot", "WETH",
     "0x82aF49447D8a07e3bd95BD0d56f35241523fBab1", "0xaf88d065e77c8cC2239327C5EDb3A432268e5831"),
    ("polygon", "evm", "quickswap uniswap", "WPOL",
     "0x0d500B1d8E8eF31E21C99d1Db9A6444d3ADf1270", "0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359"),
    ("optimism", "evm", "velodrome uniswap", "WETH",
     "0x4200000000000000000000000000000000000006", "0x0b2C639c533813f4Aa9D7837CAf62653d097Ff85"),
    ("avalanche", "evm", "traderjoe pangolin", "WAVAX",
     "0xB31f66AA3C1e785363F0875A1B74E27b85FD66c7", "0xB97EF9Ef8734C71904D8002F8b6Bc66Dd9c48a6E"),
)
# fmt: on
#: The simulated chains (DexScreener chain ids).
CHAINS: dict[str, ChainProfile] = {
    name: ChainProfile(family, tuple(dexes.split()), symbol, native, usdc)
    for name, family, dexes, symbol, native, usdc in _CHAIN_TABLE
}


@dataclass(frozen=True)
class SimListing:
    """The listing of a token current at some time: ``created_at <= t < relists_at``-ish.

    ``created_at`` is the main pair's creation (aware UTC); the listing is current from
    ``created_at + 1 h`` until ``relists_at``, when the next listing takes over.
    """

    index: int
    created_at: datetime
    relists_at: datetime


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _check_aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r} from the clock: it must be timezone-aware")
    return moment


def _canonical(chain: str, address: str) -> str:
    return address.lower() if CHAINS[chain].family == "evm" else address


def _digest(*parts: object) -> bytes:
    return hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=32).digest()


def _rng(seed: int, *parts: object) -> np.random.Generator:
    words = np.frombuffer(_digest(seed, *parts), dtype=np.uint32)
    return np.random.default_rng(np.random.SeedSequence([int(w) for w in words]))


def _address_like(family: str, raw: bytes) -> str:
    if family == "evm":
        return "0x" + raw[:20].hex()
    number, chars = int.from_bytes(raw[:32], "big"), []
    while number:
        number, rem = divmod(number, 58)
        chars.append(_B58[rem])
    return "".join(reversed(chars)).rjust(44, "1")[:44]


@dataclass(frozen=True)
class _Token:
    symbol: str
    name: str
    period: int  # minutes between listings
    phase: int  # minutes
    supply: float  # total
    circulating: float
    trade_usd: float  # average trade size


@dataclass(frozen=True)
class _Path:
    """One listing's minute path from the main pair's creation (arrays of one length)."""

    log_price: np.ndarray
    liquidity: np.ndarray
    cum_volume: np.ndarray  # volume USD summed from minute 0 through minute i
    dex: str
    second: tuple[str, int, float, float, float] | None  # dex, delay min, liq/vol share, basis


@functools.lru_cache(maxsize=4096)
def _token(seed: int, chain: str, canonical: str) -> _Token:
    rng = _rng(seed, "token", chain, canonical)
    syllables = rng.choice(len(_SYLLABLES) // 2, size=int(rng.integers(2, 4)))
    symbol = "".join(_SYLLABLES[2 * i : 2 * i + 2] for i in syllables).upper()
    name = symbol.capitalize() + _SUFFIXES[int(rng.integers(len(_SUFFIXES)))]
    period = int(MINUTES_PER_DAY * math.exp(rng.uniform(math.log(2), math.log(21))))
    if CHAINS[chain].family == "solana" and rng.random() < 0.8:
        supply = 1e9  # pump.fun mints
    else:
        supply = float(10 ** rng.uniform(8, 12))
    circulating = supply if rng.random() < 0.7 else supply * rng.uniform(0.5, 0.95)
    return _Token(
        symbol=symbol,
        name=name,
        period=period,
        phase=int(rng.integers(period)),
        supply=supply,
        circulating=circulating,
        trade_usd=float(rng.uniform(80, 400)),
    )


def _ramp(d: np.ndarray, ramp: float) -> np.ndarray:
    return np.clip(d / ramp, 0.0, 1.0)


@functools.lru_cache(maxsize=48)
def _path(seed: int, chain: str, canonical: str, index: int) -> _Path:
    token = _token(seed, chain, canonical)
    rng = _rng(seed, "listing", chain, canonical, index)
    n = token.period + MIN_AGE_MIN + 1
    i = np.arange(n, dtype=np.float64)
    mcap0 = math.exp(rng.uniform(math.log(5e3), math.log(2e5)))
    sigma = rng.uniform(0.002, 0.006) + rng.uniform(0.015, 0.04) * np.exp(
        -i / rng.uniform(120, 1440)
    )
    z = rng.standard_t(3, n) / math.sqrt(3.0)
    returns = rng.normal(-5e-5, 1e-4) + sigma * z
    returns[0] = 0.0
    walk = np.cumsum(returns)
    events = np.zeros(n)
    for _ in range(int(rng.poisson(n / (MINUTES_PER_DAY * rng.uniform(1.0, 5.0))))):
        start, ramp = rng.uniform(0, n), rng.uniform(3, 45)
        size, retrace, tau = (
            math.log(rng.uniform(1.3, 4.0)),
            rng.uniform(0.5, 1.0),
            rng.uniform(60, 720),
        )
        d = i - start
        decay = np.where(d > ramp, 1.0 - np.exp(-(d - ramp) / tau), 0.0)
        events += size * _ramp(d, ramp) * (1.0 - retrace * decay)
    drain = np.ones(n)
    if rng.random() < 0.25:
        start, ramp = rng.uniform(60, n), rng.uniform(1, 3)
        events += math.log(rng.uniform(0.01, 0.1)) * _ramp(i - start, ramp)
        drain = np.where(i >= start, rng.uniform(0.005, 0.05), 1.0)
    log_mcap = np.clip(math.log(mcap0) + walk + events, math.log(100.0), math.log(2e9))
    mcap = np.exp(log_mcap)
    liquidity = np.minimum(rng.uniform(0.15, 0.35) * np.sqrt(mcap * mcap0) * drain, 0.9 * mcap)
    turnover = (0.2 + rng.uniform(2.0, 8.0) * np.exp(-i / rng.uniform(360, 2880))) / MINUTES_PER_DAY
    jumps = np.abs(np.diff(events, prepend=0.0))
    volume = mcap * turnover * (0.3 + np.abs(z)) * (1.0 + 20.0 * jumps) * np.sqrt(drain)
    profile = CHAINS[chain]
    dex = profile.dexes[int(rng.integers(len(profile.dexes)))]
    second = None
    if rng.random() < 0.35:
        other = profile.dexes[(profile.dexes.index(dex) + 1) % len(profile.dexes)]
        second = (
            other,
            int(rng.uniform(30, 2 * MINUTES_PER_DAY)),
            float(rng.uniform(0.02, 0.2)),
            float(rng.uniform(0.02, 0.15)),
            float(rng.normal(0.0, 0.003)),
        )
    arrays = (log_mcap - math.log(token.circulating), liquidity, np.cumsum(volume))
    for array in arrays:
        array.setflags(write=False)
    return _Path(*arrays, dex=dex, second=second)


class SimDexScreener:
    """Deterministic DexScreener twin (see the module docstring for the model).

    Parameters
    ----------
    seed
        Selects the simulated world; same seed, chain, address and minute give the same pairs.
    clock
        Returns the current aware UTC time (the real time when ``None``).
    epoch
        Where the simulated market's time axis starts (aware; default the Unix epoch). Listings,
        prices and pairs are a function of the minutes elapsed since it, never of the calendar:
        a replay passes its stream's start, so the market its calls meet is the same on any day
        it is replayed.
    unknown_fraction
        Share of well-formed addresses that are "not listed" (decided by a hash of seed, chain and
        address, so the same addresses every time).
    unknown_addresses
        Addresses that are never listed, whatever the hash says.

    Only the chains in :data:`CHAINS` are simulated; an address on another chain, or one that is
    not well-formed for its chain (0x + 40 hex on EVM chains, base58 of 32-44 characters on
    Solana), is not listed.
    """

    def __init__(
        self,
        *,
        seed: int = 42,
        clock: Clock | None = None,
        epoch: datetime | None = None,
        unknown_fraction: float = 0.05,
        unknown_addresses: Collection[str] = (),
    ) -> None:
        if not 0.0 <= unknown_fraction <= 1.0:
            raise ValueError(f"unknown_fraction must be in [0, 1], got {unknown_fraction}")
        self.seed = seed
        self.unknown_fraction = unknown_fraction
        self.unknown_addresses = frozenset(
            a.lower() if a.startswith("0x") else a for a in unknown_addresses
        )
        self._clock: Clock = clock if clock is not None else _utc_now
        self.epoch = _check_aware(epoch) if epoch is not None else UNIX_EPOCH
        self._pair_index: dict[tuple[str, str], str] = {}

    def __repr__(self) -> str:
        return (f"SimDexScreener(seed={self.seed}, epoch={self.epoch.isoformat()}, "
                f"unknown_fraction={self.unknown_fraction})")

    def _minute(self, moment: datetime) -> int:
        """Whole minutes from the epoch to ``moment`` (floor; exact, no float rounding)."""
        return (_check_aware(moment) - self.epoch) // MINUTE

    def _at_minute(self, minute: int) -> datetime:
        return self.epoch + minute * MINUTE

    def __enter__(self) -> SimDexScreener:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def now(self) -> datetime:
        """The twin's clock (aware UTC)."""
        return self._clock()

    def close(self) -> None:
        """Nothing to release; present so the twin can stand in for the client."""

    def is_listed(self, chain: str, address: str) -> bool:
        """Whether the twin lists the token at all (independent of time)."""
        profile = CHAINS.get(chain)
        if profile is None:
            return False
        pattern = _EVM_RE if profile.family == "evm" else _SOLANA_RE
        if not pattern.match(address):
            return False
        canonical = _canonical(chain, address)
        if canonical in self.unknown_addresses:
            return False
        draw = int.from_bytes(_digest(self.seed, "unknown", chain, canonical)[:8], "big") / 2**64
        return draw >= self.unknown_fraction

    def listing(self, chain: str, address: str, at: datetime | None = None) -> SimListing | None:
        """The listing current at ``at`` (default: the clock), ``None`` when not listed."""
        if not self.is_listed(chain, address):
            return None
        token = _token(self.seed, chain, _canonical(chain, address))
        index = (self._minute(at or self._clock()) - MIN_AGE_MIN - token.phase) // token.period
        created = token.phase + index * token.period
        return SimListing(
            index=index,
            created_at=self._at_minute(created),
            relists_at=self._at_minute(created + token.period + MIN_AGE_MIN),
        )

    def token_pairs(self, chain: str, address: str) -> list[PairSnapshot]:
        """Every simulated pair of the token now, main pair first; ``[]`` when not listed."""
        return self._pairs(chain, address, self._clock())

    def tokens(self, chain: str, addresses: Sequence[str]) -> dict[str, list[PairSnapshot]]:
        """Pairs per distinct address (as given, request order), ``[]`` when not listed."""
        now = self._clock()
        return {a: self._pairs(chain, a, now) for a in dict.fromkeys(addresses)}

    def best_pair(self, chain: str, address: str) -> PairSnapshot | None:
        """The most liquid simulated pair, or ``None`` when not listed."""
        return most_liquid(self.token_pairs(chain, address), address)

    def pair(self, chain: str, pair_address: str) -> PairSnapshot | None:
        """The pair ``pair_address`` as it is now, if this twin has shown it (in any answer of
        ``token_pairs``/``tokens``/``best_pair``); else ``None``, as the live API answers for an
        address that is no pair. Pair addresses are hashes, so the twin remembers the last
        :data:`PAIR_INDEX_SIZE` it served instead of inverting them."""
        token = self._pair_index.get((chain, _canonical(chain, pair_address) if chain in CHAINS else pair_address))
        if token is None:
            return None
        return next((p for p in self.token_pairs(chain, token) if same_address(p.pair_address, pair_address)), None)

    def _pairs(self, chain: str, address: str, now: datetime) -> list[PairSnapshot]:
        listing = self.listing(chain, address, now)
        if listing is None:
            return []
        canonical = _canonical(chain, address)
        token = _token(self.seed, chain, canonical)
        path = _path(self.seed, chain, canonical, listing.index)
        created = self._minute(listing.created_at)
        i = self._minute(now) - created
        profile = CHAINS[chain]

        def change(window: int) -> float:
            past = path.log_price[max(i - window, 0)]
            return round(100.0 * math.expm1(float(path.log_price[i] - past)), 2)

        price = math.exp(float(path.log_price[i]))
        volume = float(
            path.cum_volume[i]
            - (path.cum_volume[i - MINUTES_PER_DAY] if i >= MINUTES_PER_DAY else 0.0)
        )
        change_24h = change(MINUTES_PER_DAY)
        buy_share = min(0.7, max(0.3, 0.5 + 0.15 * math.tanh(change_24h / 100.0)))
        raw = _digest(self.seed, "pair", chain, canonical, listing.index)

        def pair(
            dex: str,
            pair_raw: bytes,
            quote: tuple[str, str],
            created_min: int,
            liq_share: float,
            vol_share: float,
            basis: float,
        ) -> PairSnapshot:
            px = price * (1.0 + basis)
            trades = volume * vol_share / token.trade_usd
            return PairSnapshot(
                chain=chain,
                dex=dex,
                pair_address=_address_like(profile.family, pair_raw),
                base_address=address,
                base_name=token.name,
                base_symbol=token.symbol,
                quote_address=quote[1],
                quote_symbol=quote[0],
                pair_created_at=self._at_minute(created_min),
                price_usd=float(f"{px:.6g}"),
                liquidity_usd=round(float(path.liquidity[i]) * liq_share, 2),
                volume_24h_usd=round(volume * vol_share, 2),
                market_cap_usd=round(px * token.circulating, 2),
                fdv_usd=round(px * token.supply, 2),
                price_change_5m=change(5),
                price_change_1h=change(60),
                price_change_24h=change_24h,
                txns_24h_buys=round(trades * buy_share),
                txns_24h_sells=round(trades * (1 - buy_share)),
                fetched_at=now,
            )

        native = (profile.native_symbol, profile.native_address)
        specs = [(path.dex, raw, native, created, 1.0, 1.0, 0.0)]
        if path.second is not None:
            dex, delay, liq_share, vol_share, basis = path.second
            if created + delay <= self._minute(now):
                second = hashlib.blake2b(raw, digest_size=32).digest()
                usdc = ("USDC", profile.usdc_address)
                specs.append((dex, second, usdc, created + delay, liq_share, vol_share, basis))
        served = [pair(*spec) for spec in specs]
        for snapshot in served:
            if len(self._pair_index) >= PAIR_INDEX_SIZE:
                del self._pair_index[next(iter(self._pair_index))]
            self._pair_index[(chain, _canonical(chain, snapshot.pair_address))] = address
        return served


__all__ = ["CHAINS", "ChainProfile", "SimDexScreener", "SimListing"]
