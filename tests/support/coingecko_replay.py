"""A loopback CoinGecko v3 server that replays the real recorded responses of ``../shared/fixtures``.

What is real and what is not:

* Every entry of ``coingecko/manifest.json`` (recorded against the live API in 2021, 200, 422 and
  500 bodies alike) is served byte for byte, with its recorded status, for a request on the same
  path and query (values compared without the blanks the Ruby recorder put after commas).
* The recorded ``/coins/markets`` bodies hold one or two coins, too few to exercise paging. With
  :meth:`CoinGeckoReplay.serve_market_pages` the server answers paged ``/coins/markets``
  requests from a list of coin objects instead. :func:`recorded_market_universe` builds that
  list from real recorded objects: the recorded USD market object of bitcoin, tether's market
  data from the recorded ``/coins/ethereum/contract/...`` detail response (reshaped, values
  unchanged), then identities (id, symbol, name) from the recorded ``/coins/list`` whose other
  fields are copied verbatim from those two real objects. **Synthetic:** the page envelope and
  slicing, the ``market_cap_rank`` of each object (its position in the paging) and the pairing of
  a listed identity with another coin's recorded numbers.
* Faults (:class:`Fault`) are synthetic by construction, except :meth:`CoinGeckoReplay.recorded_fault`,
  which replays a recorded error body (e.g. the real 422 ``Missing parameter vs_currency``).

The server records every request (method, path, query, headers) so a test can check what the
client sent, e.g. that the API key travelled in its header.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from tests.support.http_faults import Fault as BaseFault
from tests.support.http_faults import RecordedRequest
from tests.support.loopback import LoopbackHTTP

API_PREFIX = "/api/v3"
MARKETS_PATH = f"{API_PREFIX}/coins/markets"
_JSON = "application/json; charset=utf-8"

class Fault(BaseFault):
    """:class:`~tests.support.http_faults.Fault` with CoinGecko's documented 429 body (synthetic)."""

    RATE_LIMIT_BODY: ClassVar[dict[str, Any]] = {"status": {"error_code": 429, "error_message": "You've exceeded the Rate Limit."}}


@dataclass(frozen=True)
class _Recording:
    path: str
    query: tuple[tuple[str, str], ...]
    status: int
    content_type: str
    body: bytes


def _normalise_query(
    pairs: Iterator[tuple[str, str]] | list[tuple[str, str]],
) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, ",".join(p.strip() for p in v.split(","))) for k, v in pairs))


def coin_detail_to_market_object(detail: dict[str, Any]) -> dict[str, Any]:
    """Reshape a recorded ``/coins/{id}`` detail body into a ``/coins/markets`` object (USD).

    Only the shape changes: every value is taken from ``detail["market_data"]`` (its ``usd`` entry
    where the field is per currency).
    """
    md = detail["market_data"]

    def usd(key: str) -> Any:
        value = md.get(key)
        return value.get("usd") if isinstance(value, dict) else value

    return {
        "id": detail["id"],
        "symbol": detail["symbol"],
        "name": detail["name"],
        "image": (detail.get("image") or {}).get("large"),
        "current_price": usd("current_price"),
        "market_cap": usd("market_cap"),
        "market_cap_rank": md.get("market_cap_rank", detail.get("market_cap_rank")),
        "fully_diluted_valuation": usd("fully_diluted_valuation"),
        "total_volume": usd("total_volume"),
        "high_24h": usd("high_24h"),
        "low_24h": usd("low_24h"),
        "price_change_24h": md.get("price_change_24h"),
        "price_change_percentage_24h": md.get("price_change_percentage_24h"),
        "market_cap_change_24h": md.get("market_cap_change_24h"),
        "market_cap_change_percentage_24h": md.get("market_cap_change_percentage_24h"),
        "circulating_supply": md.get("circulating_supply"),
        "total_supply": md.get("total_supply"),
        "max_supply": md.get("max_supply"),
        "ath": usd("ath"),
        "ath_change_percentage": usd("ath_change_percentage"),
        "ath_date": usd("ath_date"),
        "atl": usd("atl"),
        "atl_change_percentage": usd("atl_change_percentage"),
        "atl_date": usd("atl_date"),
        "roi": md.get("roi"),
        "last_updated": md.get("last_updated"),
    }


def recorded_market_universe(coingecko_dir: Path, size: int) -> list[dict[str, Any]]:
    """``size`` coin objects for paging tests, built from recorded bodies (see module docstring).

    The first two are real and complete: bitcoin (recorded ``/coins/markets`` USD object) and
    tether (recorded contract detail, reshaped). The rest pair a recorded ``/coins/list`` identity
    with the numbers of one of those two, alternately.
    """
    responses = coingecko_dir / "responses"
    markets = responses / "coingecko_api_v3_coins_markets__qb7461b.json"
    bitcoin = json.loads(markets.read_text())[0]
    tether_detail = json.loads(
        (
            responses
            / "coingecko_api_v3_coins_ethereum_contract_0xdAC17F958D2ee523a2206206994597C13D831ec7.json"
        ).read_text()
    )
    tether = coin_detail_to_market_object(tether_detail)
    templates = (bitcoin, tether)
    universe = [dict(bitcoin), dict(tether)]
    listed = json.loads((responses / "coingecko_api_v3_coins_list.json").read_text())
    taken = {bitcoin["id"], tether["id"]}
    for entry in listed:
        if len(universe) >= size:
            break
        if entry["id"] in taken:
            continue
        taken.add(entry["id"])
        coin = dict(templates[len(universe) % 2])
        coin.update(id=entry["id"], symbol=entry["symbol"], name=entry["name"])
        universe.append(coin)
    return universe[:size]


@dataclass
class _Pages:
    coins: list[dict[str, Any]]
    overlap: int


@dataclass
class CoinGeckoReplay:
    """Context manager running the replay on ``127.0.0.1`` (random port) in a background thread.

    ``coingecko_dir`` is ``<shared fixtures>/coingecko``. Point a client at :attr:`base_url`.
    """

    coingecko_dir: Path
    requests: list[RecordedRequest] = field(default_factory=list)
    _recordings: list[_Recording] = field(default_factory=list)
    _faults: dict[str, deque[Fault]] = field(default_factory=dict)
    _persistent: dict[str, Fault] = field(default_factory=dict)
    _pages: _Pages | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _http: LoopbackHTTP | None = None

    def __post_init__(self) -> None:
        manifest = json.loads((self.coingecko_dir / "manifest.json").read_text())
        for entry in manifest:
            self._recordings.append(
                _Recording(
                    path=entry["path"],
                    query=_normalise_query(list(entry["query"].items())),
                    status=int(entry["status"]),
                    content_type=entry.get("content_type", _JSON),
                    body=(self.coingecko_dir / entry["body_file"]).read_bytes(),
                )
            )

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> CoinGeckoReplay:
        self._http = LoopbackHTTP(_make_handler(self))
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._http is not None
        self._http.close()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/api/v3``: the API root to give a client."""
        assert self._http is not None, "enter the context manager first"
        return f"{self._http.url}{API_PREFIX}"

    # -- configuration ------------------------------------------------------------------------
    def inject(self, path: str, *faults: Fault) -> None:
        """Queue ``faults`` for the next requests on ``path`` (``/coins/markets`` or full path)."""
        with self._lock:
            self._faults.setdefault(_full_path(path), deque()).extend(faults)

    def fail_always(self, path: str, fault: Fault | None) -> None:
        """Apply ``fault`` to every request on ``path`` once its queue is empty (None clears it)."""
        with self._lock:
            if fault is None:
                self._persistent.pop(_full_path(path), None)
            else:
                self._persistent[_full_path(path)] = fault

    def recorded_fault(self, path: str, status: int) -> Fault:
        """A fault that answers with the real recorded body of ``path`` for ``status``."""
        full = _full_path(path)
        for rec in self._recordings:
            if rec.path == full and rec.status == status:
                return Fault("respond", status=status, body=rec.body)
        raise LookupError(f"no recorded {status} response for {full}")

    def serve_market_pages(self, coins: list[dict[str, Any]], *, overlap: int = 0) -> None:
        """Answer paged ``/coins/markets`` requests from ``coins`` (synthetic envelope).

        Page ``k`` (1-based) of size ``per_page`` holds ``coins[start:start + per_page]`` with
        ``start = (k - 1) * per_page - (overlap if k > 1 else 0)``: the last ``overlap`` coins of
        page 1 show up again on page 2, as when ranks shift between requests. Each object's
        ``market_cap_rank`` is its position in the paging, ``(k - 1) * per_page + i + 1``.
        """
        with self._lock:
            self._pages = _Pages(coins=[dict(c) for c in coins], overlap=overlap)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The recorded requests on ``path``, oldest first."""
        full = _full_path(path)
        with self._lock:
            return [r for r in self.requests if r.path == full]

    # -- serving (called from the handler threads) --------------------------------------------
    def _record(self, request: RecordedRequest) -> Fault | None:
        with self._lock:
            self.requests.append(request)
            queue = self._faults.get(request.path)
            if queue:
                return queue.popleft()
            return self._persistent.get(request.path)

    def _answer(self, path: str, query: dict[str, str]) -> tuple[int, bytes]:
        pages = self._pages
        if pages is not None and path == MARKETS_PATH and "page" in query:
            if "vs_currency" not in query:
                missing = self.recorded_fault(MARKETS_PATH, 422)
                return missing.status, missing.body
            per_page = int(query.get("per_page", "100"))
            page = int(query["page"])
            start = max(0, (page - 1) * per_page - (pages.overlap if page > 1 else 0))
            chunk = [dict(c) for c in pages.coins[start : start + per_page]]
            for i, coin in enumerate(chunk):
                coin["market_cap_rank"] = (page - 1) * per_page + i + 1
            return 200, json.dumps(chunk).encode()
        wanted = _normalise_query(list(query.items()))
        for rec in self._recordings:
            if rec.path == path and rec.query == wanted:
                return rec.status, rec.body
        # Synthetic: nothing was recorded for this request.
        return 404, json.dumps({"error": f"replay: nothing recorded for {path} {query}"}).encode()


def _full_path(path: str) -> str:
    return path if path.startswith(API_PREFIX) else f"{API_PREFIX}{path}"


def _make_handler(replay: CoinGeckoReplay) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            """Silence the default stderr access log."""

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = dict(parse_qsl(url.query, keep_blank_values=True))
            headers = {k.lower(): v for k, v in self.headers.items()}
            fault = replay._record(RecordedRequest("GET", url.path, query, headers))
            extra: tuple[tuple[str, str], ...] = ()
            if fault is not None and fault.kind == "respond":
                status, body, extra = fault.status, fault.body, fault.headers
            else:
                if fault is not None and fault.kind == "delay":
                    time.sleep(fault.delay_s)
                status, body = replay._answer(url.path, query)
                if fault is not None and fault.kind == "truncate":
                    body = body[: max(1, len(body) // 2)]
            try:
                self.send_response(status)
                self.send_header("Content-Type", _JSON)
                self.send_header("Content-Length", str(len(body)))
                for name, value in extra:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout fault); nothing to answer

    return Handler
