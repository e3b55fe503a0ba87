"""Live DexScreener client: DEX pairs of a token (price, liquidity, volume, market cap, pair age).

Tokens are identified by ``(chain, address)`` with DexScreener's chain ids (``solana``,
``ethereum``, ``bsc``, ``base``, ``arbitrum``, ``polygon`` ...). HTTP errors, timeouts and
malformed bodies are translated here, once, into the taxonomy of
:mod:`resources.exchanges.errors` and retried through :class:`~resources.retry.RetryPolicy`.
A token DexScreener does not list is an empty answer, never an error.

DexScreener publishes a limit of 300 requests per minute (per IP) for ``/token-pairs/v1`` and
``/tokens/v1``; the client keeps under it (:mod:`resources.rate_limit`) and honours the
``Retry-After`` of a 429. The limit is per IP, so every client of every run and process on
the machine shares one: :func:`shared_rate_limit` on the DexScreener cache file. The offline
twin is :class:`resources.dexscreener_sim.SimDexScreener`; the persistent cache in front of
either is :class:`resources.ttl_cache.CachedDexScreener`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from resources.dexscreener_pairs import (
    METADATA_FIELDS,
    PRICE_FIELDS,
    DexScreenerSource,
    PairLookup,
    PairSnapshot,
    most_liquid,
    pair_from_json,
    same_address,
)
from resources.exchanges.base import Clock
from resources.exchanges.errors import (
    PermanentError,
    RateLimitedError,
    RetriesExhaustedError,
    TransientError,
)
from resources.http_common import error_text, get_checked, tls_context
from resources.rate_limit import RateLimit, SharedRateLimit, SlidingWindowLimit
from resources.retry import RetryPolicy

logger = logging.getLogger(__name__)

SOURCE = "dexscreener"
BASE_URL = "https://api.dexscreener.com"
#: ``/tokens/v1`` accepts at most this many comma-separated addresses per request.
MAX_BATCH = 30
#: Published limit of ``/token-pairs/v1`` and ``/tokens/v1``, requests per minute.
RATE_LIMIT_PER_MINUTE = 300

__all__ = [
    "METADATA_FIELDS",
    "PRICE_FIELDS",
    "DexScreenerClient",
    "DexScreenerSource",
    "PairLookup",
    "PairSnapshot",
    "most_liquid",
    "pair_from_json",
    "same_address",
    "shared_rate_limit",
]


def shared_rate_limit(path: Path, *, clock: Callable[[], float] = time.time,
                      sleep: Callable[[float], None] = time.sleep) -> SharedRateLimit:
    """DexScreener's published limit, shared by every process that uses ``path`` (the
    DexScreener cache file of the data home: Dagster runs and the sidecar alike)."""
    return SharedRateLimit(path, name=SOURCE, limit=RATE_LIMIT_PER_MINUTE, period_s=60.0, clock=clock, sleep=sleep)


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
        Limit of this client alone (at most this many requests in any 60 s, waits through
        ``retry.sleep``) when no ``rate_limit`` is given; ``None`` disables it.
    rate_limit
        A limit shared with other clients and processes (:func:`shared_rate_limit`).
    """

    def __init__(
        self,
        *,
        base_url: str = BASE_URL,
        timeout_s: float = 10,
        retry: RetryPolicy | None = None,
        clock: Clock | None = None,
        max_requests_per_minute: int | None = RATE_LIMIT_PER_MINUTE,
        rate_limit: RateLimit | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._retry = retry if retry is not None else RetryPolicy()
        self._clock: Clock = clock if clock is not None else _utc_now
        self._limit: RateLimit | None = rate_limit
        if rate_limit is None and max_requests_per_minute is not None:
            self._limit = SlidingWindowLimit(max_requests_per_minute, 60.0, name=SOURCE, sleep=self._retry.sleep)
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
        """Close the underlying HTTP connection pool (closing twice is harmless)."""
        self._http.close()

    @property
    def rate_limit(self) -> RateLimit | None:
        """The limit every request of this client waits for (``None``: unlimited)."""
        return self._limit

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` ran (no connection of this client is open any more)."""
        return self._http.is_closed

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

    def pair(self, chain: str, pair_address: str) -> PairSnapshot | None:
        """The pair (pool) ``pair_address`` on ``chain`` (``GET /latest/dex/pairs/{chain}/{pair}``).

        A chart link names a pair, not a token: its ``base_address`` is the token traded.
        ``None`` when DexScreener does not know the pair (an address that is a token, say).

        Raises
        ------
        PermanentError, RetriesExhaustedError
            As :meth:`token_pairs`.
        """
        path = f"/latest/dex/pairs/{chain}/{quote(_check(chain, pair_address), safe='')}"
        pairs = self._pairs(path)
        return next((p for p in pairs if same_address(p.pair_address, pair_address)), None)

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
        if self._limit is not None:
            self._limit.acquire()
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
