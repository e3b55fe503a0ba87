"""DexScreener's data model (pure): a pair snapshot, its cache split, and parsing the API's JSON.

Shared by the live client (:mod:`resources.dexscreener`), its twin
(:mod:`resources.dexscreener_sim`) and the cache (:mod:`resources.ttl_cache`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

# fmt: off
#: Fields that move with every trade: cache them briefly (default 5 min).
PRICE_FIELDS: tuple[str, ...] = (
    "price_usd", "liquidity_usd", "volume_24h_usd", "market_cap_usd", "fdv_usd",
    "price_change_5m", "price_change_1h", "price_change_24h",
    "txns_24h_buys", "txns_24h_sells", "fetched_at",
)
#: Fields that identify the pair and hardly ever change: cache them long (default 24 h).
METADATA_FIELDS: tuple[str, ...] = (
    "chain", "dex", "pair_address", "base_address", "base_name", "base_symbol",
    "quote_address", "quote_symbol", "pair_created_at",
)
# fmt: on
_DATETIME_FIELDS = frozenset({"pair_created_at", "fetched_at"})


@dataclass(frozen=True)
class PairSnapshot:
    """One DEX pair of a token as DexScreener showed it at ``fetched_at``.

    Metadata fields (:data:`METADATA_FIELDS`): ``chain``, ``dex``, ``pair_address``,
    ``base_address``, ``base_name``, ``base_symbol``, ``quote_address``, ``quote_symbol``,
    ``pair_created_at`` (aware UTC, ``None`` when DexScreener does not know it).

    Price fields (:data:`PRICE_FIELDS`), all in USD where they are amounts: ``price_usd`` (of the
    *base* token), ``liquidity_usd`` (``None`` for bonding-curve pools without one),
    ``volume_24h_usd``, ``market_cap_usd``, ``fdv_usd``, ``price_change_5m`` / ``_1h`` / ``_24h``
    (percent, ``-0.04`` is -0.04 %), ``txns_24h_buys`` / ``txns_24h_sells`` (counts) and
    ``fetched_at`` (aware UTC, the client's clock when the answer arrived). ``None`` means
    DexScreener did not report the value.
    """

    chain: str
    dex: str
    pair_address: str
    base_address: str
    base_name: str
    base_symbol: str
    quote_address: str
    quote_symbol: str
    pair_created_at: datetime | None
    price_usd: float | None
    liquidity_usd: float | None
    volume_24h_usd: float | None
    market_cap_usd: float | None
    fdv_usd: float | None
    price_change_5m: float | None
    price_change_1h: float | None
    price_change_24h: float | None
    txns_24h_buys: int | None
    txns_24h_sells: int | None
    fetched_at: datetime

    def age(self, at: datetime | None = None) -> float | None:
        """Seconds between ``pair_created_at`` and ``at`` (default ``fetched_at``)."""
        if self.pair_created_at is None:
            return None
        return ((at or self.fetched_at) - self.pair_created_at).total_seconds()

    def part(self, fields: Iterable[str]) -> dict[str, Any]:
        """The named fields as a JSON-safe dict (datetimes as ISO-8601 strings)."""
        out: dict[str, Any] = {}
        for name in fields:
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out

    @classmethod
    def from_parts(cls, *parts: Mapping[str, Any]) -> PairSnapshot:
        """Rebuild a snapshot from :meth:`part` dicts that together hold every field."""
        merged: dict[str, Any] = {}
        for part in parts:
            merged.update(part)
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in merged.items() if k in names}
        for name in _DATETIME_FIELDS:
            if isinstance(values.get(name), str):
                values[name] = datetime.fromisoformat(values[name])
        return cls(**values)


@runtime_checkable
class DexScreenerSource(Protocol):
    """What the live client and its twin both offer."""

    def token_pairs(self, chain: str, address: str) -> list[PairSnapshot]:
        """Every pair that trades the token, either side."""
        ...

    def tokens(self, chain: str, addresses: Sequence[str]) -> dict[str, list[PairSnapshot]]:
        """Pairs per requested address (every address a key, ``[]`` when not listed)."""
        ...

    def best_pair(self, chain: str, address: str) -> PairSnapshot | None:
        """The most liquid pair with the token as base, ``None`` when not listed."""
        ...

    def now(self) -> datetime:
        """The source's clock (aware UTC): what ``fetched_at`` of its snapshots is measured on."""
        ...


@runtime_checkable
class PairLookup(Protocol):
    """A source that resolves a DEX pair (pool) address to its pair (the client and its twin)."""

    def pair(self, chain: str, pair_address: str) -> PairSnapshot | None:
        """The pair ``pair_address`` on ``chain``, ``None`` when DexScreener does not know it."""
        ...


def same_address(a: str, b: str) -> bool:
    """Whether two addresses are equal: EVM ``0x`` addresses ignore case, others do not."""
    if a.startswith(("0x", "0X")) and b.startswith(("0x", "0X")):
        return a.lower() == b.lower()
    return a == b


def most_liquid(pairs: Iterable[PairSnapshot], address: str) -> PairSnapshot | None:
    """The pair with the highest ``liquidity_usd`` among those whose *base* is ``address``.

    Pairs that trade the token as quote are skipped: their ``price_usd`` is another token's.
    Missing liquidity counts as zero; ties go to the higher 24 h volume, then the first seen.
    """
    best: PairSnapshot | None = None
    best_key = (-math.inf, -math.inf)
    for pair in pairs:
        if not same_address(pair.base_address, address):
            continue
        key = (pair.liquidity_usd or 0.0, pair.volume_24h_usd or 0.0)
        if best is None or key > best_key:
            best, best_key = pair, key
    return best


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool) or value == "":
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _int(value: Any) -> int | None:
    number = _float(value)
    return None if number is None else int(number)


def _dig(obj: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)  # type: ignore[assignment]
    return obj


def pair_from_json(item: Mapping[str, Any], *, fetched_at: datetime) -> PairSnapshot:
    """Convert one DexScreener pair object into a :class:`PairSnapshot`.

    ``pairCreatedAt`` (epoch ms) becomes an aware UTC datetime; numeric strings become floats.

    Raises
    ------
    KeyError, TypeError, ValueError
        When the object lacks ``chainId``, ``pairAddress`` or ``baseToken.address`` or holds a
        value of the wrong type.
    """
    base = item["baseToken"]
    quote_token = item.get("quoteToken") or {}
    created_ms = _float(item.get("pairCreatedAt"))
    return PairSnapshot(
        chain=str(item["chainId"]),
        dex=str(item.get("dexId") or ""),
        pair_address=str(item["pairAddress"]),
        base_address=str(base["address"]),
        base_name=str(base.get("name") or ""),
        base_symbol=str(base.get("symbol") or ""),
        quote_address=str(quote_token.get("address") or ""),
        quote_symbol=str(quote_token.get("symbol") or ""),
        pair_created_at=None
        if created_ms is None
        else datetime.fromtimestamp(created_ms / 1000, tz=UTC),
        price_usd=_float(item.get("priceUsd")),
        liquidity_usd=_float(_dig(item, "liquidity", "usd")),
        volume_24h_usd=_float(_dig(item, "volume", "h24")),
        market_cap_usd=_float(item.get("marketCap")),
        fdv_usd=_float(item.get("fdv")),
        price_change_5m=_float(_dig(item, "priceChange", "m5")),
        price_change_1h=_float(_dig(item, "priceChange", "h1")),
        price_change_24h=_float(_dig(item, "priceChange", "h24")),
        txns_24h_buys=_int(_dig(item, "txns", "h24", "buys")),
        txns_24h_sells=_int(_dig(item, "txns", "h24", "sells")),
        fetched_at=fetched_at,
    )
