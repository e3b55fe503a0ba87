"""Live CoinGecko v3 client: the top coins by market cap as a :data:`COINGECKO_SCHEMA` frame.

HTTP errors, timeouts and malformed bodies are translated here, once, into the taxonomy of
:mod:`resources.exchanges.errors` and retried through :class:`~resources.retry.RetryPolicy`.
The API key travels only in a request header; it is never logged and never appears in an error
message. The offline twin is :class:`resources.coingecko_sim.SimCoinGecko`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
import polars as pl

from ml.marketdata.frames import COINGECKO_SCHEMA
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

Plan = Literal["public", "demo", "pro"]

SOURCE = "coingecko"
PUBLIC_BASE_URL = "https://api.coingecko.com/api/v3"
PRO_BASE_URL = "https://pro-api.coingecko.com/api/v3"
DEMO_KEY_HEADER = "x-cg-demo-api-key"
PRO_KEY_HEADER = "x-cg-pro-api-key"
#: CoinGecko serves at most 250 coins per ``/coins/markets`` page.
MAX_PER_PAGE = 250
#: Extra pages fetched beyond ``ceil(n / per_page)`` to make up for coins repeated across pages.
_SPARE_PAGES = 2
_KEY_HINT = (
    "check SIGNALWORKS_COINGECKO_API_KEY and the plan it belongs to "
    f"(demo keys use {PUBLIC_BASE_URL} with header {DEMO_KEY_HEADER}, "
    f"pro keys use {PRO_BASE_URL} with header {PRO_KEY_HEADER})"
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _floor_to_minute(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r} from the clock: it must be timezone-aware")
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def _parse_ts(value: Any) -> datetime | None:
    """An ISO-8601 string such as ``2021-04-14T11:54:46.763Z`` as an aware UTC datetime."""
    if value is None or value == "":
        return None
    parsed = datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:  # CoinGecko always sends "Z"; a bare time is taken as UTC
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _parse_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def markets_to_frame(items: list[Mapping[str, Any]], *, snapshot_ts: datetime) -> pl.DataFrame:
    """Convert ``/coins/markets`` objects (USD) into a :data:`COINGECKO_SCHEMA` frame.

    ``snapshot_ts`` must be timezone-aware; ISO dates become ``Datetime("ms", "UTC")``.

    Raises
    ------
    ValueError, TypeError, KeyError
        When an object lacks an ``id`` or holds a value of the wrong type.
    """
    columns: dict[str, list[Any]] = {name: [] for name in COINGECKO_SCHEMA}
    for item in items:
        change = item.get("price_change_percentage_24h")
        if change is None:
            change = item.get("price_change_percentage_24h_in_currency")
        rank = item.get("market_cap_rank")
        row = {
            "snapshot_ts": snapshot_ts,
            "coin_id": str(item["id"]),
            "symbol": None if item.get("symbol") is None else str(item["symbol"]),
            "name": None if item.get("name") is None else str(item["name"]),
            "market_cap_rank": None if rank is None else int(rank),
            "price_usd": _parse_float(item.get("current_price")),
            "market_cap_usd": _parse_float(item.get("market_cap")),
            "fdv_usd": _parse_float(item.get("fully_diluted_valuation")),
            "total_volume_usd": _parse_float(item.get("total_volume")),
            "circulating_supply": _parse_float(item.get("circulating_supply")),
            "total_supply": _parse_float(item.get("total_supply")),
            "max_supply": _parse_float(item.get("max_supply")),
            "price_change_pct_24h": _parse_float(change),
            "ath_usd": _parse_float(item.get("ath")),
            "ath_ts": _parse_ts(item.get("ath_date")),
            "atl_usd": _parse_float(item.get("atl")),
            "atl_ts": _parse_ts(item.get("atl_date")),
            "last_updated": _parse_ts(item.get("last_updated")),
        }
        for name, value in row.items():
            columns[name].append(value)
    return pl.DataFrame(columns, schema=COINGECKO_SCHEMA)


class CoinGeckoClient:
    """Synchronous client for the CoinGecko v3 REST API (public, demo or pro plan).

    Parameters
    ----------
    base_url
        API root. With ``plan="pro"`` and the public default, the pro root is used instead.
    api_key
        Optional key, sent only as a request header.
    api_key_header
        Header name for the key. ``None`` picks it: ``x-cg-pro-api-key`` for ``plan="pro"`` or a
        ``pro-api.`` host, ``x-cg-demo-api-key`` otherwise.
    plan
        ``"public"`` (no key), ``"demo"`` or ``"pro"``; ``None`` infers it from key and host.
    timeout_s
        Per-request timeout in seconds (connect, read, write and pool).
    retry
        Retry policy for transient failures; a default :class:`RetryPolicy` when ``None``.
    clock
        Returns the current aware UTC time; stamps ``snapshot_ts``.
    per_page
        Coins per page, 1..250.
    """

    def __init__(
        self,
        *,
        base_url: str = PUBLIC_BASE_URL,
        api_key: str | None = None,
        api_key_header: str | None = None,
        plan: Plan | None = None,
        timeout_s: float = 15.0,
        retry: RetryPolicy | None = None,
        clock: Clock | None = None,
        per_page: int = MAX_PER_PAGE,
    ) -> None:
        if not 1 <= per_page <= MAX_PER_PAGE:
            raise ValueError(f"per_page must be in 1..{MAX_PER_PAGE}, got {per_page}")
        if plan is None:
            plan = "public" if not api_key else ("pro" if "pro-api." in base_url else "demo")
        if plan == "pro" and base_url == PUBLIC_BASE_URL:
            base_url = PRO_BASE_URL
        if api_key_header is None:
            is_pro = plan == "pro" or "pro-api." in base_url
            api_key_header = PRO_KEY_HEADER if is_pro else DEMO_KEY_HEADER
        self.base_url = base_url.rstrip("/")
        self.plan: Plan = plan
        self.api_key_header = api_key_header
        self.per_page = per_page
        self._api_key = api_key or None
        self._retry = retry if retry is not None else RetryPolicy()
        self._clock: Clock = clock if clock is not None else _utc_now
        headers = {"accept": "application/json", "user-agent": "signalworks/0.1"}
        if self._api_key:
            headers[api_key_header] = self._api_key
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s),
            verify=tls_context(),
        )

    def __repr__(self) -> str:
        key = "set" if self._api_key else "none"
        return f"CoinGeckoClient(base_url={self.base_url!r}, plan={self.plan!r}, api_key={key})"

    def __enter__(self) -> CoinGeckoClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def now(self) -> datetime:
        """The client's clock (aware UTC)."""
        return self._clock()

    def close(self) -> None:
        """Close the underlying HTTP connection pool."""
        self._http.close()

    def top_markets(self, n: int = 2000) -> pl.DataFrame:
        """The ``n`` largest coins by market cap, in USD, as one snapshot.

        Pages through ``/coins/markets`` (ordered by market cap, descending) until ``n`` distinct
        coins are collected, a page comes back empty or short, or a page adds no new coin. Ranks
        shift between page requests, so a coin repeated on a later page keeps its first row.

        Returns
        -------
        polars.DataFrame
            Exactly :data:`~ml.marketdata.frames.COINGECKO_SCHEMA`, at most ``n`` rows in the
            order CoinGecko ranked them; ``snapshot_ts`` is the clock time floored to the minute
            (UTC); ``ath_ts``, ``atl_ts`` and ``last_updated`` are UTC.

        Raises
        ------
        PermanentError
            Bad credentials or plan (401/403), a rejected request (400/422 etc.).
        RetriesExhaustedError
            A transient failure (429, 5xx, timeout, malformed body) outlived every retry.
        """
        if n <= 0:
            return pl.DataFrame(schema=COINGECKO_SCHEMA)
        snapshot_ts = _floor_to_minute(self._clock())
        max_pages = math.ceil(n / self.per_page) + _SPARE_PAGES
        frames: list[pl.DataFrame] = []
        seen: set[str] = set()
        for page in range(1, max_pages + 1):
            frame = self._fetch_page(page, snapshot_ts)
            fresh = frame.filter(~pl.col("coin_id").is_in(list(seen))).unique(
                subset="coin_id", keep="first", maintain_order=True
            )
            repeated = frame.height - fresh.height
            if repeated:
                logger.debug("coingecko page %d repeated %d coins already seen", page, repeated)
            frames.append(fresh.head(n - len(seen)))
            seen.update(fresh["coin_id"].to_list())
            if len(seen) >= n or frame.height < self.per_page or fresh.height == 0:
                break
        result = (
            pl.concat(frames, how="vertical") if frames else pl.DataFrame(schema=COINGECKO_SCHEMA)
        )
        logger.info("coingecko snapshot %s: %d coins in %d pages", snapshot_ts, result.height, page)
        return result

    def _fetch_page(self, page: int, snapshot_ts: datetime) -> pl.DataFrame:
        params = {
            "vs_currency": "usd",
            "order": "market_cap_desc",
            "per_page": str(self.per_page),
            "page": str(page),
            "sparkline": "false",
            "price_change_percentage": "24h",
        }
        what = f"/coins/markets page {page}"

        def attempt() -> pl.DataFrame:
            body = self._get_json("/coins/markets", params)
            if not isinstance(body, list):
                raise PermanentError(
                    f"/coins/markets returned a {type(body).__name__}, expected a list of coins",
                    source=SOURCE,
                )
            try:
                return markets_to_frame(body, snapshot_ts=snapshot_ts)
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                raise TransientError(
                    f"/coins/markets page {page} has a malformed coin object ({type(e).__name__})",
                    source=SOURCE,
                ) from e

        try:
            return self._retry.call(attempt, what=what)
        except RetriesExhaustedError as e:
            hint = (
                "Too many 429 responses: lower the snapshot frequency or set "
                "SIGNALWORKS_COINGECKO_API_KEY for a higher rate limit. "
                if isinstance(e.__cause__, RateLimitedError)
                else ""
            )
            message = (
                f"{self._redact(str(e))} {hint}CoinGecko status: https://status.coingecko.com; "
                f"base URL in use: {self.base_url}"
            )
            raise RetriesExhaustedError(message) from e

    def _get_json(self, path: str, params: Mapping[str, str]) -> Any:
        """GET ``path`` and decode its JSON body, translating every failure into the taxonomy."""
        response = get_checked(self._http, path, source=SOURCE, params=dict(params), redact=self._redact)
        status = response.status_code
        if status in (401, 403):
            raise PermanentError(
                f"GET {path} refused with HTTP {status} "
                f"({self._redact(error_text(response))}): {_KEY_HINT}",
                source=SOURCE,
            )
        if status >= 400:
            raise PermanentError(
                f"GET {path} rejected with HTTP {status}: {self._redact(error_text(response))}",
                source=SOURCE,
            )
        try:
            return response.json()
        except ValueError as e:
            raise TransientError(
                f"GET {path} returned malformed JSON ({len(response.content)} bytes)",
                source=SOURCE,
            ) from e

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text
