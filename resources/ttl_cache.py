"""A TTL cache in a SQLite file that survives restarts, and the DexScreener cache built on it.

:class:`PersistentTTLCache` keeps JSON values under ``(namespace, key)`` with a per-entry expiry.
Several processes (Dagster runs, the sidecar) may share one file: it runs in WAL mode (readers
never wait for writers), every write is a short ``BEGIN IMMEDIATE`` transaction (takes the write
lock up front, so two writers never deadlock upgrading a read lock) and a busy timeout makes a
writer wait for the lock instead of failing with "database is locked".

:class:`CachedDexScreener` puts it in front of a
:class:`~resources.dexscreener.DexScreenerSource` (the live client or its twin): metadata
(pair, DEX, symbols, creation time) is served from a 24 h entry, prices (price, liquidity,
volume, market cap, changes, trades) from a 5 min entry; the cache hit rate is reported.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resources.dexscreener import (
    METADATA_FIELDS,
    PRICE_FIELDS,
    DexScreenerSource,
    PairSnapshot,
    most_liquid,
)
from resources.rate_limit import connect_shared, immediate

logger = logging.getLogger(__name__)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS ttl_cache ("
    " namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
    " expires_at REAL NOT NULL, stored_at REAL NOT NULL,"
    " PRIMARY KEY (namespace, key)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS ttl_cache_expiry ON ttl_cache (expires_at)",
)
_UPSERT = (
    "INSERT INTO ttl_cache (namespace, key, value, expires_at, stored_at) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value,"
    " expires_at = excluded.expires_at, stored_at = excluded.stored_at"
)


@dataclass(frozen=True)
class CacheStats:
    """Lookups that found a live entry (``hits``) and those that did not (``misses``).

    ``namespaces`` breaks the totals down per namespace (empty for a single namespace's stats).
    """

    hits: int = 0
    misses: int = 0
    namespaces: Mapping[str, CacheStats] = field(default_factory=dict)

    @property
    def lookups(self) -> int:
        """``hits + misses``."""
        return self.hits + self.misses

    @property
    def hit_rate(self) -> float | None:
        """``hits / lookups`` in [0, 1]; ``None`` before the first lookup (not 0: nothing measured)."""
        return self.hits / self.lookups if self.lookups else None


@dataclass(frozen=True)
class CacheEntry:
    """One value to store with :meth:`PersistentTTLCache.set_many`."""

    namespace: str
    key: str
    value: Any
    ttl_s: float


class PersistentTTLCache:
    """JSON values with per-entry expiry in a SQLite file shared by threads and processes.

    Parameters
    ----------
    path
        The SQLite file; created (with its parent folders) when absent.
    clock
        Seconds since the epoch (``time.time``); expiry is ``clock() + ttl_s``.
    busy_timeout_s
        How long a writer waits for another process's write lock before giving up.

    Hit and miss counts are kept per instance (they describe this process's lookups and start at
    zero on every open); the entries themselves are shared and persistent.
    """

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout_s: float = 30.0,
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[str, list[int]] = {}
        self._closed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = connect_shared(self.path, busy_timeout_s)
        try:
            with self._write() as conn:
                for statement in _SCHEMA:
                    conn.execute(statement)
        except BaseException:
            self._conn.close()
            raise

    def __repr__(self) -> str:
        return f"PersistentTTLCache({str(self.path)!r})"

    def __enter__(self) -> PersistentTTLCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (entries stay in the file); closing twice is harmless."""
        with self._lock:
            self._conn.close()
            self._closed = True

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` ran (the file is no longer open through this instance)."""
        return self._closed

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        # Called with self._lock held, or from __init__ before the instance is shared.
        return immediate(self._conn)

    def get(self, namespace: str, key: str) -> Any | None:
        """The live value under ``(namespace, key)``, or ``None`` (absent or expired: a miss)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT value, expires_at FROM ttl_cache WHERE namespace = ? AND key = ?",
                (namespace, key),
            ).fetchone()
            hit = row is not None and row[1] > self._clock()
            counts = self._counts.setdefault(namespace, [0, 0])
            counts[0 if hit else 1] += 1
        return json.loads(row[0]) if hit else None

    def set(self, namespace: str, key: str, value: Any, ttl_s: float) -> None:
        """Store ``value`` (JSON-serialisable, not ``None``) for ``ttl_s`` seconds (> 0)."""
        self.set_many([CacheEntry(namespace, key, value, ttl_s)])

    def set_many(self, entries: Iterable[CacheEntry]) -> None:
        """Store several entries in one transaction: all of them or none.

        Raises
        ------
        ValueError
            A ``None`` value (indistinguishable from a miss), a value JSON cannot hold exactly
            (NaN, infinity), or ``ttl_s <= 0``.
        TypeError
            A value that is not JSON-serialisable.
        """
        rows = []
        for entry in entries:
            if entry.value is None:
                raise ValueError(f"cannot cache None under {entry.namespace}/{entry.key}")
            if not entry.ttl_s > 0:
                raise ValueError(f"ttl_s must be > 0, got {entry.ttl_s}")
            text = json.dumps(entry.value, separators=(",", ":"), allow_nan=False)
            rows.append((entry.namespace, entry.key, text, entry.ttl_s))
        with self._lock:
            now = self._clock()
            with self._write() as conn:
                conn.executemany(
                    _UPSERT, [(ns, key, text, now + ttl, now) for ns, key, text, ttl in rows]
                )

    def delete(self, namespace: str, key: str) -> bool:
        """Remove one entry; whether it was there."""
        with self._lock, self._write() as conn:
            cursor = conn.execute(
                "DELETE FROM ttl_cache WHERE namespace = ? AND key = ?", (namespace, key)
            )
            return cursor.rowcount > 0

    def purge_expired(self) -> int:
        """Delete every expired entry; the number deleted."""
        with self._lock:
            now = self._clock()
            with self._write() as conn:
                deleted = conn.execute(
                    "DELETE FROM ttl_cache WHERE expires_at <= ?", (now,)
                ).rowcount
        logger.info("ttl cache %s: purged %d expired entries", self.path, deleted)
        return deleted

    def size(self, namespace: str | None = None) -> int:
        """Live (unexpired) entries, in one namespace or in all."""
        sql, args = "SELECT COUNT(*) FROM ttl_cache WHERE expires_at > ?", [self._clock()]
        if namespace is not None:
            sql, args = sql + " AND namespace = ?", [*args, namespace]
        with self._lock:
            return int(self._conn.execute(sql, args).fetchone()[0])

    def stats(self, namespace: str | None = None) -> CacheStats:
        """Hits and misses of this instance, overall (with a per-namespace breakdown) or for one."""
        with self._lock:
            per = {ns: CacheStats(h, m) for ns, (h, m) in self._counts.items()}
        if namespace is not None:
            return per.get(namespace, CacheStats())
        return CacheStats(
            hits=sum(s.hits for s in per.values()),
            misses=sum(s.misses for s in per.values()),
            namespaces=per,
        )

    def reset_stats(self) -> None:
        """Start counting hits and misses from zero."""
        with self._lock:
            self._counts.clear()


PRICE_NAMESPACE = "dexscreener.price"
METADATA_NAMESPACE = "dexscreener.metadata"


@dataclass(frozen=True)
class RefreshOutcome:
    """Tokens fetched by :meth:`CachedDexScreener.refresh` and tokens whose entry was fresh."""

    fetched: int
    reused: int


class CachedDexScreener:
    """:meth:`best_pair` through a :class:`PersistentTTLCache`, with separate TTLs.

    Each fetch stores two entries per token: the metadata fields
    (:data:`~resources.dexscreener.METADATA_FIELDS`) for ``metadata_ttl_s`` and the price fields
    (:data:`~resources.dexscreener.PRICE_FIELDS`) for ``price_ttl_s``. A lookup is served from
    the cache while *both* entries are live (and name the same pair); once either has expired the
    token is fetched again and both are refreshed. A token that is not listed is remembered as
    such for ``price_ttl_s`` only (a new coin may list any minute). ``fetched_at`` of a served
    snapshot tells how old its prices are.

    Parameters
    ----------
    client
        The live :class:`~resources.dexscreener.DexScreenerClient` or its twin.
    cache
        Where entries live; may be shared with other processes.
    price_ttl_s, metadata_ttl_s
        Lifetimes in seconds (defaults 5 min and 24 h).
    """

    def __init__(
        self,
        client: DexScreenerSource,
        cache: PersistentTTLCache,
        *,
        price_ttl_s: float = 300,
        metadata_ttl_s: float = 86400,
    ) -> None:
        if not (price_ttl_s > 0 and metadata_ttl_s > 0):
            raise ValueError(f"TTLs must be > 0, got {price_ttl_s=} {metadata_ttl_s=}")
        self.client = client
        self.cache = cache
        self.price_ttl_s = price_ttl_s
        self.metadata_ttl_s = metadata_ttl_s
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0

    def best_pair(self, chain: str, address: str) -> PairSnapshot | None:
        """The token's most liquid pair (``None`` when not listed), cached as described above.

        Raises whatever the client raises on a fetch (nothing is cached then).
        """
        key = _key(chain, address)
        found, snapshot = self._lookup(key)
        if found:
            return snapshot
        snapshot = self.client.best_pair(chain, address)
        self._store(key, snapshot)
        return snapshot

    def best_pairs(self, chain: str, addresses: Sequence[str]) -> dict[str, PairSnapshot | None]:
        """:meth:`best_pair` for many tokens; the misses are fetched together with ``tokens()``.

        Returns one entry per distinct address as given, in request order.
        """
        result: dict[str, PairSnapshot | None] = {}
        missing: list[str] = []
        for address in dict.fromkeys(addresses):
            found, snapshot = self._lookup(_key(chain, address))
            result[address] = snapshot
            if not found:
                missing.append(address)
        if missing:
            fetched = self.client.tokens(chain, missing)
            for address in missing:
                snapshot = most_liquid(fetched.get(address, []), address)
                self._store(_key(chain, address), snapshot)
                result[address] = snapshot
        return result

    def refresh(self, chain: str, addresses: Sequence[str], *, fresh_within_s: float) -> RefreshOutcome:
        """Make sure each token's cached price is at most ``fresh_within_s`` old: fetch (together,
        with ``tokens()``) those whose entry is older or absent, and store them. A token remembered
        as not listed is left as it is until that entry expires."""
        now = self.client.now()
        wanted = list(dict.fromkeys(addresses))
        stale = []
        for address in wanted:
            found, snapshot = self._lookup(_key(chain, address))
            if not found or (snapshot is not None and (now - snapshot.fetched_at).total_seconds() > fresh_within_s):
                stale.append(address)
        if stale:
            fetched = self.client.tokens(chain, stale)
            for address in stale:
                self._store(_key(chain, address), most_liquid(fetched.get(address, []), address))
        return RefreshOutcome(fetched=len(stale), reused=len(wanted) - len(stale))

    def stats(self) -> CacheStats:
        """Lookups served without a fetch (hits) and with one (misses), plus both namespaces."""
        per = self.cache.stats().namespaces
        with self._lock:
            return CacheStats(
                hits=self._hits,
                misses=self._misses,
                namespaces={
                    ns: per[ns] for ns in (PRICE_NAMESPACE, METADATA_NAMESPACE) if ns in per
                },
            )

    @property
    def hit_rate(self) -> float | None:
        """Share of lookups served from the cache (``None`` before the first)."""
        return self.stats().hit_rate

    def _lookup(self, key: str) -> tuple[bool, PairSnapshot | None]:
        found, snapshot = False, None
        price = self.cache.get(PRICE_NAMESPACE, key)
        if price is not None and not price.get("listed", False):
            found = True
        elif price is not None:
            metadata = self.cache.get(METADATA_NAMESPACE, key)
            if metadata is not None and metadata.get("pair_address") == price.get("pair_address"):
                found, snapshot = True, PairSnapshot.from_parts(metadata, price)
        with self._lock:
            if found:
                self._hits += 1
            else:
                self._misses += 1
        return found, snapshot

    def _store(self, key: str, snapshot: PairSnapshot | None) -> None:
        if snapshot is None:
            self.cache.set(PRICE_NAMESPACE, key, {"listed": False}, self.price_ttl_s)
            return
        price = {
            "listed": True,
            "pair_address": snapshot.pair_address,
            **snapshot.part(PRICE_FIELDS),
        }
        self.cache.set_many(
            [
                CacheEntry(PRICE_NAMESPACE, key, price, self.price_ttl_s),
                CacheEntry(
                    METADATA_NAMESPACE, key, snapshot.part(METADATA_FIELDS), self.metadata_ttl_s
                ),
            ]
        )


def _key(chain: str, address: str) -> str:
    """Cache key of a token: EVM ``0x`` addresses lower-cased (case-insensitive), others as given."""
    return f"{chain}:{address.lower() if address.startswith(('0x', '0X')) else address}"
