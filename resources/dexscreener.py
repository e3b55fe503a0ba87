"""Live DexScreener client: DEX pairs of a token (price, liquidity, volume, market cap, pair age).

Tokens are identified by ``(chain, address)`` with DexScreener's chain ids (``solana``,
``ethereum``, ``bsc``, ``base``, ``arbitrum``, ``polygon`` ...). HTTP errors, timeouts and
malformed bodies are translated here, once, into the taxonomy of
:mod:`resources.exchanges.errors` and retried through :class:`~resources.retry.RetryPolicy`.
A token DexScreener does not list is an empty answer, never an error.

DexScreener publishes a limit of 300 requests per minute for ``/token-pairs/v1`` and
``/tokens/v1``; the client keeps under it on its own (a token bucket) and honours the
``Retry-After`` of a 429. The offline twin is :class:`resources.dexscreener_sim.SimDexScreener`;
the persistent cache in front of either is :class:`resources.ttl_cache.CachedDexScreener`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

import httpx

from resources.exchanges.base import Clock
from resources.exchanges.errors import (
    PermanentError,
    RateLimitedError,
    RetriesExhaustedError,
    TransientError,
)
from resources.http_common import error_text, get_checked, tls_context
from resources.retry import RetryPolicy

logger = logging.getLogger(__name__)

SOURCE = "dexscreener"
BASE_URL = "https://api.dexscreener.com"
#: ``/tokens/v1`` accepts at most this many comma-separated addresses per request.
MAX_BATCH = 30
#: Published limit of ``/token-pairs/v1`` and ``/tokens/v1``, requests per minute.
RATE_LIMIT_PER_MINUTE = 300

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


class _TokenBucket:
    """At most ``rate`` requests per ``period`` seconds, with a burst of ``rate`` (thread-safe)."""

    def __init__(self, rate: float, period: float, *, sleep: Callable[[float], None]) -> None:
        self._capacity = rate
        self._per_second = rate / period
        self._tokens = rate
        self._sleep = sleep
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self._capacity, self._tokens + (now - self._last) * self._per_second)
            self._last = now
            self._tokens -= 1.0
            wait = -self._tokens / self._per_second if self._tokens < 0 else 0.0
        if wait > 0:
            logger.info("dexscreener: %.2fs pause to stay under the published rate limit", wait)
            self._sleep(wait)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _check(chain: str, address: str = "-") -> str:
    """``address`` once ``chain`` and it are well-formed enough to go into a URL path."""
    if not chain or not chain.replace("-", "").replace("_", "").isalnum() or chain != chain.lower():
        raise ValueError(f"chain must be a DexScreener chain id such as 'solana', got {chain!r}")
    if not address or address != address.strip():
        raise ValueError(f"token address must be non-empty, without blanks, got {address!r}")
    return address


class DexScreenerClient:
    """Synchronous client for DexScreener's public REST API (no key needed).

    Parameters
    ----------
    base_url
        API root.
    timeout_s
        Per-request timeout in seconds (connect, read, write and pool).
    retry
        Retry policy for transient failures; a default :class:`RetryPolicy` when ``None``.
    clock
        Returns the current aware UTC time; stamps ``fetched_at``.
    max_requests_per_minute
        Client-side limit (token bucket, burst of one minute's worth); ``None`` disables it.
        Waits use ``retry.sleep``.
    """

    def __init__(
        self,
        *,
        base_url: str = BASE_URL,
        timeout_s: float = 10,
        retry: RetryPolicy | None = None,
        clock: Clock | None = None,
        max_requests_per_minute: float | None = RATE_LIMIT_PER_MINUTE,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._retry = retry if retry is not None else RetryPolicy()
        self._clock: Clock = clock if clock is not None else _utc_now
        self._bucket = (
            None
            if max_requests_per_minute is None
            else _TokenBucket(max_requests_per_minute, 60.0, sleep=self._retry.sleep)
        )
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"accept": "application/json", "user-agent": "signalworks/0.1"},
            timeout=httpx.Timeout(timeout_s),
            verify=tls_context(),
        )

    def __repr__(self) -> str:
        return f"DexScreenerClient(base_url={self.base_url!r})"

    def __enter__(self) -> DexScreenerClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def now(self) -> datetime:
        """The client's clock (aware UTC)."""
        return self._clock()

    def close(self) -> None:
        """Close the underlying HTTP connection pool."""
        self._http.close()

    def token_pairs(self, chain: str, address: str) -> list[PairSnapshot]:
        """Every pair that trades ``address`` on ``chain`` (``GET /token-pairs/v1/{chain}/{address}``).

        Returns
        -------
        list[PairSnapshot]
            In DexScreener's order; the token may be the base or the quote of a pair. ``[]`` when
            DexScreener does not list the token.

        Raises
        ------
        PermanentError
            A rejected request (4xx other than 429).
        RetriesExhaustedError
            A transient failure (429, 5xx, timeout, malformed body) outlived every retry.
        """
        path = f"/token-pairs/v1/{chain}/{quote(_check(chain, address), safe='')}"
        return self._pairs(path)

    def tokens(self, chain: str, addresses: Sequence[str]) -> dict[str, list[PairSnapshot]]:
        """Pairs of many tokens through ``GET /tokens/v1/{chain}/{a,b,...}``, ≤ 30 per request.

        Returns
        -------
        dict[str, list[PairSnapshot]]
            One key per distinct requested address (as given), in request order; a pair is listed
            under every requested address it trades (base or quote, EVM case-insensitively);
            ``[]`` for a token DexScreener does not list.

        Raises
        ------
        PermanentError, RetriesExhaustedError
            As :meth:`token_pairs`.
        """
        _check(chain)
        wanted = list(dict.fromkeys(_check(chain, a) for a in addresses))
        result: dict[str, list[PairSnapshot]] = {a: [] for a in wanted}
        for start in range(0, len(wanted), MAX_BATCH):
            chunk = wanted[start : start + MAX_BATCH]
            joined = ",".join(quote(a, safe="") for a in chunk)
            for pair in self._pairs(f"/tokens/v1/{chain}/{joined}"):
                for address in chunk:
                    if same_address(pair.base_address, address) or same_address(
                        pair.quote_address, address
                    ):
                        result[address].append(pair)
        return result

    def best_pair(self, chain: str, address: str) -> PairSnapshot | None:
        """The most liquid pair with ``address`` as base token, or ``None`` (see :func:`most_liquid`)."""
        return most_liquid(self.token_pairs(chain, address), address)

    def _pairs(self, path: str) -> list[PairSnapshot]:
        def attempt() -> list[PairSnapshot]:
            body = self._get_json(path)
            fetched_at = self._clock()
            if isinstance(body, Mapping) and "pairs" in body:  # the /latest/dex/... envelope
                body = body["pairs"] or []
            if not isinstance(body, list):
                raise TransientError(
                    f"GET {path} returned a {type(body).__name__}, expected a list of pairs",
                    source=SOURCE,
                )
            try:
                return [pair_from_json(item, fetched_at=fetched_at) for item in body]
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                raise TransientError(
                    f"GET {path} has a malformed pair object ({type(e).__name__}: {e})",
                    source=SOURCE,
                ) from e

        try:
            return self._retry.call(attempt, what=f"GET {path}")
        except RetriesExhaustedError as e:
            hint = (
                f"Too many 429 responses: DexScreener allows {RATE_LIMIT_PER_MINUTE} requests "
                "per minute per IP; batch lookups with tokens() and keep the cache in front. "
                if isinstance(e.__cause__, RateLimitedError)
                else ""
            )
            raise RetriesExhaustedError(f"{e} {hint}Base URL in use: {self.base_url}") from e

    def _get_json(self, path: str) -> Any:
        """GET ``path`` and decode its JSON body, translating every failure into the taxonomy."""
        if self._bucket is not None:
            self._bucket.acquire()
        response = get_checked(self._http, path, source=SOURCE)
        status = response.status_code
        if status >= 400:
            raise PermanentError(
                f"GET {path} rejected with HTTP {status}: {error_text(response)}; check the "
                "chain id (DexScreener's, e.g. 'solana', 'bsc') and the token address",
                source=SOURCE,
            )
        try:
            return response.json()
        except ValueError as e:
            raise TransientError(
                f"GET {path} returned malformed JSON ({len(response.content)} bytes)", source=SOURCE
            ) from e
