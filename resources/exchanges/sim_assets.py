"""The simulated world's assets: what trades on the ``sim`` venues and at what price level.

Prices are USD (= USDT in the simulator). Levels, supplies and listing dates are realistic but not
historical: the simulator draws its own path, pulled toward a log-linear *anchor* that runs from
``start_price`` at listing to ``anchor_price`` at :data:`ANCHOR_DATE` and stays flat after it, so
a simulated BTC trades in the tens of thousands of dollars in 2025, PEPE around 1e-5, and so on.
Tickers marked "(invented)" in their name are fictional memes.

:data:`SIM_ASSETS` is the built-in universe (87 assets). :func:`sim_universe` extends it to any
size up to :data:`MAX_UNIVERSE` with generated small caps (invented tickers, names end in
"(generated)"), like the long tail of an exchange's USDT list: asset ``i`` depends on ``i``
only, so a larger universe always starts with every asset of a smaller one.
"""

from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal

import numpy as np

Segment = Literal["major", "alt", "meme"]

#: The simulated world starts here (UTC): nothing trades before it.
GENESIS = datetime(2020, 1, 1, tzinfo=UTC)
GENESIS_MS = int(GENESIS.timestamp() * 1000)
#: From this date on every asset's anchor price is flat at ``anchor_price``.
ANCHOR_DATE = date(2025, 1, 1)

DAY_MS = 86_400_000


@dataclass(frozen=True)
class SimAsset:
    """One simulated asset.

    Attributes
    ----------
    base : str
        Ticker, e.g. ``"BTC"``; markets are ``BASE/USDT`` (spot) and ``BASE/USDT:USDT`` (perp).
    name : str
        Display name.
    segment : {"major", "alt", "meme"}
        Market segment (drives turnover, meme pumps and volume spikes).
    start_price : float
        Price in USD at the first instant the asset trades (GENESIS, or ``listed_from``).
    anchor_price : float
        Price level in USD the process is pulled toward from :data:`ANCHOR_DATE` on.
    beta : float
        Loading on the BTC factor (log returns), daily and intraday. BTC itself has 1.
    vol : float
        Standard deviation of the daily log return in the normal volatility regime (total,
        BTC factor included). Multiply by ~19 for an annualised figure.
    supply : float
        Circulating supply in base units (market cap = supply * price).
    max_supply : float or None
        Hard cap in base units, None when uncapped.
    has_perp : bool
        Whether a USDT-settled perpetual ``BASE/USDT:USDT`` exists.
    listed_from : date or None
        First UTC day with trading; None means GENESIS.
    """

    base: str
    name: str
    segment: Segment
    start_price: float
    anchor_price: float
    beta: float
    vol: float
    supply: float
    max_supply: float | None
    has_perp: bool
    listed_from: date | None = None

    @property
    def asset_id(self) -> int:
        """Stable 32-bit id of the ticker (CRC-32, never Python's salted ``hash()``)."""
        return zlib.crc32(self.base.encode("ascii"))

    @property
    def listing_day(self) -> int:
        """Index of the first trading day, counted in UTC days since GENESIS."""
        if self.listed_from is None:
            return 0
        return (self.listed_from - GENESIS.date()).days

    @property
    def listing_ms(self) -> int:
        """First trading instant in epoch milliseconds (UTC midnight of the listing day)."""
        return GENESIS_MS + self.listing_day * DAY_MS


def _a(
    base: str,
    name: str,
    segment: Segment,
    start: float,
    anchor: float,
    beta: float,
    vol: float,
    supply: float,
    max_supply: float | None,
    perp: bool = True,
    listed: str | None = None,
) -> SimAsset:
    return SimAsset(
        base=base,
        name=name,
        segment=segment,
        start_price=start,
        anchor_price=anchor,
        beta=beta,
        vol=vol,
        supply=supply,
        max_supply=max_supply,
        has_perp=perp,
        listed_from=date.fromisoformat(listed) if listed else None,
    )


# fmt: off
SIM_ASSETS: tuple[SimAsset, ...] = (
    # majors ------------------------------------------------------------------------------------
    _a("BTC", "Bitcoin", "major", 7200, 94_000, 1.0, 0.030, 19.8e6, 21e6),
    _a("ETH", "Ethereum", "major", 130, 3350, 1.1, 0.042, 120.4e6, None),
    _a("SOL", "Solana", "major", 0.95, 190, 1.35, 0.058, 480e6, None, listed="2020-04-10"),
    _a("BNB", "BNB", "major", 13.7, 700, 0.85, 0.038, 144e6, 200e6),
    _a("XRP", "XRP", "major", 0.19, 2.3, 1.05, 0.048, 57e9, 100e9),
    _a("ADA", "Cardano", "major", 0.033, 0.9, 1.15, 0.05, 35.5e9, 45e9),
    _a("TRX", "TRON", "major", 0.0133, 0.25, 0.7, 0.035, 86e9, None),
    _a("AVAX", "Avalanche", "major", 4.6, 38, 1.35, 0.058, 410e6, 720e6, listed="2020-09-22"),
    _a("LINK", "Chainlink", "major", 1.78, 21, 1.25, 0.055, 630e6, 1e9),
    _a("TON", "Toncoin", "major", 1.2, 5.6, 0.8, 0.045, 2.5e9, None, listed="2021-09-15"),
    _a("DOT", "Polkadot", "major", 2.9, 7.0, 1.2, 0.052, 1.5e9, None, listed="2020-08-19"),
    _a("LTC", "Litecoin", "major", 41, 105, 1.05, 0.045, 75e6, 84e6),
    _a("BCH", "Bitcoin Cash", "major", 205, 440, 1.05, 0.047, 19.8e6, 21e6),
    # alts --------------------------------------------------------------------------------------
    _a("NEAR", "NEAR Protocol", "alt", 0.6, 5.2, 1.35, 0.062, 1.2e9, None, listed="2020-10-14"),
    _a("ATOM", "Cosmos", "alt", 4.0, 6.7, 1.2, 0.055, 390e6, None),
    _a("UNI", "Uniswap", "alt", 3.0, 13.5, 1.3, 0.06, 600e6, 1e9, listed="2020-09-17"),
    _a("AAVE", "Aave", "alt", 50, 310, 1.3, 0.062, 15e6, 16e6, listed="2020-10-02"),
    _a("ICP", "Internet Computer", "alt", 400, 10, 1.2, 0.065, 470e6, None, listed="2021-05-10"),
    _a("FIL", "Filecoin", "alt", 30, 5.0, 1.2, 0.06, 600e6, 2e9, listed="2020-10-15"),
    _a("APT", "Aptos", "alt", 8.0, 9.0, 1.3, 0.062, 550e6, None, listed="2022-10-19"),
    _a("ARB", "Arbitrum", "alt", 1.25, 0.75, 1.3, 0.06, 4.2e9, 10e9, listed="2023-03-23"),
    _a("OP", "Optimism", "alt", 1.4, 1.85, 1.35, 0.062, 1.3e9, 4.29e9, listed="2022-05-31"),
    _a("SUI", "Sui", "alt", 1.1, 4.2, 1.4, 0.07, 3e9, 10e9, listed="2023-05-03"),
    _a("INJ", "Injective", "alt", 3.0, 22, 1.45, 0.07, 97e6, 100e6, listed="2020-10-21"),
    _a("TIA", "Celestia", "alt", 2.3, 5.0, 1.4, 0.07, 450e6, None, listed="2023-10-31"),
    _a("SEI", "Sei", "alt", 0.19, 0.45, 1.45, 0.072, 4e9, 10e9, listed="2023-08-15"),
    _a("RENDER", "Render", "alt", 0.07, 7.0, 1.5, 0.07, 515e6, 644e6, listed="2020-06-11"),
    _a("FET", "Fetch.ai", "alt", 0.03, 1.3, 1.45, 0.07, 2.5e9, 2.63e9),
    _a("GRT", "The Graph", "alt", 0.3, 0.2, 1.3, 0.062, 9.5e9, None, listed="2020-12-17"),
    _a("STX", "Stacks", "alt", 0.18, 1.7, 1.35, 0.065, 1.5e9, 1.818e9),
    _a("IMX", "Immutable", "alt", 1.0, 1.3, 1.4, 0.068, 1.7e9, 2e9, listed="2021-11-05"),
    _a("HBAR", "Hedera", "alt", 0.01, 0.28, 1.1, 0.055, 38e9, 50e9),
    _a("ALGO", "Algorand", "alt", 0.22, 0.35, 1.15, 0.055, 8.3e9, 10e9),
    _a("VET", "VeChain", "alt", 0.0047, 0.045, 1.15, 0.055, 81e9, 86.7e9),
    _a("XLM", "Stellar", "alt", 0.045, 0.42, 1.0, 0.05, 30e9, 50e9),
    _a("ETC", "Ethereum Classic", "alt", 4.5, 26, 1.1, 0.055, 150e6, 210.7e6),
    _a("MKR", "Maker", "alt", 580, 1800, 1.1, 0.055, 880e3, 1.005e6),
    _a("LDO", "Lido DAO", "alt", 1.5, 1.8, 1.35, 0.065, 895e6, 1e9, listed="2021-01-05"),
    _a("RUNE", "THORChain", "alt", 0.18, 3.5, 1.35, 0.07, 340e6, 500e6),
    _a("KAS", "Kaspa", "alt", 0.0003, 0.12, 1.0, 0.07, 25e9, 28.7e9, False, "2022-05-25"),
    _a("ENA", "Ethena", "alt", 0.9, 0.9, 1.45, 0.075, 3e9, 15e9, listed="2024-04-02"),
    _a("JUP", "Jupiter", "alt", 0.6, 0.8, 1.45, 0.072, 1.35e9, 10e9, listed="2024-01-31"),
    _a("PYTH", "Pyth Network", "alt", 0.35, 0.4, 1.4, 0.07, 3.6e9, 10e9, listed="2023-11-20"),
    _a("WLD", "Worldcoin", "alt", 2.3, 2.2, 1.4, 0.075, 800e6, 10e9, listed="2023-07-24"),
    _a("ONDO", "Ondo", "alt", 0.28, 1.35, 1.35, 0.07, 1.4e9, 10e9, listed="2024-01-18"),
    _a("HYPE", "Hyperliquid", "alt", 3.9, 22, 1.2, 0.08, 334e6, 1e9, listed="2024-11-29"),
    _a("CRV", "Curve DAO", "alt", 3.0, 0.9, 1.35, 0.065, 1.2e9, 3.03e9, listed="2020-08-14"),
    _a("SAND", "The Sandbox", "alt", 0.05, 0.6, 1.4, 0.068, 2.4e9, 3e9, listed="2020-08-14"),
    _a("MANA", "Decentraland", "alt", 0.033, 0.6, 1.35, 0.065, 1.9e9, 2.19e9),
    _a("AXS", "Axie Infinity", "alt", 0.5, 7.0, 1.35, 0.072, 150e6, 270e6, listed="2020-11-04"),
    _a("EGLD", "MultiversX", "alt", 10, 35, 1.25, 0.062, 27e6, 31.4e6, listed="2020-09-03"),
    _a("THETA", "Theta Network", "alt", 0.09, 2.0, 1.3, 0.062, 1e9, 1e9),
    _a("XTZ", "Tezos", "alt", 1.4, 1.25, 1.15, 0.055, 1e9, None),
    _a("EOS", "EOS", "alt", 2.6, 0.8, 1.1, 0.055, 1.5e9, 2.1e9),
    _a("ZEC", "Zcash", "alt", 28, 55, 1.05, 0.058, 16.3e6, 21e6),
    _a("DASH", "Dash", "alt", 41, 35, 1.0, 0.055, 12e6, 18.9e6),
    _a("CAKE", "PancakeSwap", "alt", 0.6, 2.4, 1.2, 0.065, 290e6, 450e6, listed="2020-09-29"),
    _a("DYDX", "dYdX", "alt", 9.0, 1.5, 1.35, 0.07, 650e6, 1e9, listed="2021-09-08"),
    _a("GMX", "GMX", "alt", 5.0, 25, 1.2, 0.065, 10e6, 13.25e6, listed="2021-09-01"),
    _a("PENDLE", "Pendle", "alt", 1.0, 4.5, 1.4, 0.072, 160e6, None, listed="2021-07-01"),
    _a("JTO", "Jito", "alt", 2.0, 3.0, 1.4, 0.072, 300e6, 1e9, listed="2023-12-07"),
    _a("STRK", "Starknet", "alt", 2.0, 0.45, 1.4, 0.07, 2.3e9, 10e9, listed="2024-02-20"),
    # memes -------------------------------------------------------------------------------------
    _a("DOGE", "Dogecoin", "meme", 0.002, 0.32, 1.35, 0.062, 147e9, None),
    _a("SHIB", "Shiba Inu", "meme", 1.5e-5, 2.1e-5, 1.5, 0.07, 589e12, None, listed="2021-05-10"),
    _a("PEPE", "Pepe", "meme", 1.5e-7, 1.8e-5, 1.7, 0.088, 420.69e12, 420.69e12, listed="2023-04-17"),
    _a("WIF", "dogwifhat", "meme", 0.2, 2.0, 1.7, 0.11, 998.9e6, 998.9e6, listed="2023-12-01"),
    _a("BONK", "Bonk", "meme", 2e-7, 3e-5, 1.7, 0.1, 77e12, 93e12, listed="2022-12-29"),
    _a("FLOKI", "FLOKI", "meme", 3e-5, 1.5e-4, 1.6, 0.095, 9.6e12, 10e12, listed="2021-07-01"),
    _a("POPCAT", "Popcat", "meme", 0.004, 0.5, 1.7, 0.11, 980e6, 980e6, listed="2024-01-01"),
    _a("BRETT", "Brett", "meme", 0.01, 0.13, 1.7, 0.11, 9.9e9, 10e9, listed="2024-03-01"),
    _a("MEW", "cat in a dogs world", "meme", 0.003, 0.008, 1.6, 0.11, 88.9e9, 88.9e9, listed="2024-04-01"),
    _a("TURBO", "Turbo", "meme", 2e-4, 0.007, 1.6, 0.105, 69e9, 69e9, listed="2023-05-01"),
    _a("NEIRO", "Neiro", "meme", 5e-4, 0.002, 1.7, 0.12, 420e9, 420e9, listed="2024-08-01"),
    _a("MOG", "Mog Coin", "meme", 1e-7, 2e-6, 1.7, 0.11, 390e12, 420e12, False, "2023-07-20"),
    _a("BOME", "Book of Meme", "meme", 0.008, 0.006, 1.7, 0.11, 69e9, 69e9, listed="2024-03-16"),
    _a("PNUT", "Peanut the Squirrel", "meme", 0.3, 0.55, 1.7, 0.12, 1e9, 1e9, listed="2024-11-01"),
    _a("GLORP", "Glorp the Alien (invented)", "meme", 4e-4, 0.003, 1.8, 0.13, 1e10, 1e10, False, "2023-09-01"),
    _a("WOOF", "Woofer Inu (invented)", "meme", 1e-6, 3e-6, 1.7, 0.12, 5e13, 1e14, False, "2021-06-01"),
    _a("MOONPIG", "Moon Pig (invented)", "meme", 0.02, 0.05, 1.8, 0.12, 1e9, 1e9, False, "2022-02-01"),
    _a("KEKW", "Kek Warrior (invented)", "meme", 1e-4, 9e-4, 1.8, 0.13, 42e9, 42e9, listed="2023-06-01"),
    _a("CHAD", "Giga Chad Cat (invented)", "meme", 0.001, 0.02, 1.8, 0.13, 9e9, 1e10, False, "2024-02-01"),
    _a("SIMDOG", "Sim Dog (invented)", "meme", 5e-4, 0.004, 1.6, 0.11, 1e11, None),
    _a("LAMBO", "Lambo Inu (invented)", "meme", 0.05, 0.01, 1.7, 0.12, 7e8, 1e9, False, "2021-11-01"),
    _a("NYAN", "Nyan Coin (invented)", "meme", 8e-4, 0.003, 1.7, 0.12, 6.9e10, 6.9e10, False, "2022-08-01"),
    _a("FROGE", "Froge Empire (invented)", "meme", 2e-5, 2e-4, 1.8, 0.13, 4.2e12, 4.2e12, listed="2023-03-01"),
    _a("HODL", "Hodl Hamster (invented)", "meme", 0.01, 0.04, 1.8, 0.13, 2e9, 2e9, False, "2024-05-01"),
    _a("ZOOM", "Zoomer Coin (invented)", "meme", 0.002, 0.008, 1.8, 0.13, 5e10, 5e10, listed="2024-06-01"),
)
# fmt: on

ASSETS_BY_BASE: dict[str, SimAsset] = {asset.base: asset for asset in SIM_ASSETS}
#: The common factor every other asset loads on.
FACTOR_BASE = "BTC"

if len(ASSETS_BY_BASE) != len(SIM_ASSETS):  # pragma: no cover - guards the table above
    raise RuntimeError("duplicate ticker in SIM_ASSETS")
if len({a.asset_id for a in SIM_ASSETS}) != len(SIM_ASSETS):  # pragma: no cover
    raise RuntimeError("CRC-32 collision between two tickers in SIM_ASSETS")


#: Size of the built-in universe, the default of ``SIGNALWORKS_SIM_SYMBOLS``.
DEFAULT_UNIVERSE = len(SIM_ASSETS)
#: Largest universe :func:`sim_universe` builds.
MAX_UNIVERSE = 2000
#: Seed of the generated tail: fixed, so every world seed sees the same assets (not the same paths).
_TAIL_SEED = 20_240_101
_CONSONANTS = "BCDFGHJKLMNPRSTVWXZ"
_VOWELS = "AEIOUY"


def _ticker(rng: np.random.Generator) -> str:
    """An invented 3-6 letter ticker: consonant-vowel syllables, sometimes a trailing consonant."""
    letters = []
    for _ in range(int(rng.integers(2, 4))):
        letters += [_CONSONANTS[int(rng.integers(len(_CONSONANTS)))], _VOWELS[int(rng.integers(len(_VOWELS)))]]
    if rng.random() < 0.4:
        letters.append(_CONSONANTS[int(rng.integers(len(_CONSONANTS)))])
    return "".join(letters)[:6]


def _generated_asset(index: int, taken: set[str], ids: set[int]) -> SimAsset:
    """Asset number ``index`` (>= DEFAULT_UNIVERSE) of the generated tail: a small cap whose market
    cap falls with its rank like an exchange's long tail (~$1 B at rank 90, ~$40 M at rank 400)."""
    rng = np.random.default_rng(np.random.SeedSequence(_TAIL_SEED, spawn_key=(index,)))
    meme = rng.random() < 0.35
    base = _ticker(rng)
    while base in taken or zlib.crc32(base.encode("ascii")) in ids:
        base = _ticker(rng)
    rank = index + 1
    market_cap = 1.2e9 * (rank / 90.0) ** -2.2 * math.exp(0.4 * rng.standard_normal())
    anchor = float(10.0 ** rng.uniform(-5.0, 1.5)) if meme else float(10.0 ** rng.uniform(-2.5, 1.8))
    listing = date.fromordinal(
        date(2020, 1, 1).toordinal() + int(rng.integers(0, (date(2025, 10, 1) - date(2020, 1, 1)).days))
    )
    supply = market_cap / anchor
    return SimAsset(
        base=base,
        name=f"{base.title()} (generated)",
        segment="meme" if meme else "alt",
        start_price=anchor * math.exp(0.8 * rng.standard_normal()),
        anchor_price=anchor,
        beta=float(rng.uniform(1.35, 1.75) if meme else rng.uniform(1.1, 1.5)),
        vol=float(rng.uniform(0.08, 0.12) if meme else rng.uniform(0.055, 0.085)),
        supply=supply,
        max_supply=supply * float(rng.uniform(1.0, 3.0)) if rng.random() < 0.6 else None,
        has_perp=bool(rng.random() < (0.5 if meme else 0.7)),
        listed_from=None if listing.toordinal() <= GENESIS.date().toordinal() else listing,
    )


@functools.lru_cache(maxsize=8)
def sim_universe(size: int = DEFAULT_UNIVERSE) -> tuple[SimAsset, ...]:
    """The first ``size`` assets of the simulated universe (majors first, then alts, memes and
    the generated tail), deterministic and prefix-stable.

    Raises ``ValueError`` unless ``1 <= size <= MAX_UNIVERSE``.
    """
    if not 1 <= size <= MAX_UNIVERSE:
        raise ValueError(f"the simulated universe holds 1 to {MAX_UNIVERSE} assets, not {size}")
    if size <= DEFAULT_UNIVERSE:
        return SIM_ASSETS[:size]
    assets = list(SIM_ASSETS)
    taken = {a.base for a in assets}
    ids = {a.asset_id for a in assets}
    for index in range(DEFAULT_UNIVERSE, size):
        asset = _generated_asset(index, taken, ids)
        taken.add(asset.base)
        ids.add(asset.asset_id)
        assets.append(asset)
    return tuple(assets)
