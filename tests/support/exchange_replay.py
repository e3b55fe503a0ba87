"""A loopback server that replays real recorded exchange REST responses to the real ccxt client.

Requests arrive as ``/<host>/<path>?<query>`` because the client rewrites every API base URL
(``https://api.binance.com`` -> ``http://127.0.0.1:PORT/api.binance.com``, see
:meth:`ExchangeReplay.url_overrides`). What is real and what is not:

* Bodies listed in ``exchanges/manifest.json`` of ``../shared/fixtures`` are served byte for byte,
  status 200. A request matches an entry on method, host, path and the data-selecting query keys
  (:data:`SELECTING_KEYS`); ``limit`` and timestamps are ignored. Where the manifest query is
  empty, the selecting keys are read from the body when it names them (a one-symbol object, a
  Bybit ``result.category``, one OKX ``instType``, see :func:`_inferred_selectors`); otherwise
  the entry answers any value. Ties go to the entry with more selecting keys, then to
  ``kind == recorded``, then to the smaller file. No match: 404 (listed by
  :meth:`ExchangeReplay.unmatched`). MEXC contract paths on ``api.mexc.com`` (where ccxt 4.5.90
  sends them) are answered from the ``contract.mexc.com`` recordings (:data:`HOST_ALIASES`).
* Kline endpoints of Binance (spot, USD-M), OKX (``candles``, ``history-candles``) and Bybit v5
  answer from the real 1m candles of ``freqtrade/UNITTEST_BTC-1m.json``, rendered in each
  exchange's wire format and honouring the paging parameters as the real APIs document them:
  Binance ``startTime``/``endTime`` inclusive, oldest first, the first ``limit`` from
  ``startTime``; OKX ``after`` (ts < after) / ``before`` (ts > before), newest first, the newest
  ``limit`` of the range, ``candles`` only within the latest 1440, page caps 300 and
  ``history-candles`` 100; Bybit ``start`` (the candle containing it) / ``end`` inclusive, newest
  first, the first ``limit`` from ``start`` when only ``start`` is given, else the newest ``limit``.
  **Synthetic:** the columns the source lacks (close time, quote volume, trade count: ``"0"``),
  and the served symbol (:data:`KLINE_SYMBOLS`; the source file does not name its market).
* Faults (:class:`Fault`) and :meth:`ExchangeReplay.add_json_route` answers are synthetic, and
  so is serving the same real candles under further market ids (``kline_symbols``), which lets a
  test track several symbols.

Every request is recorded (:attr:`ExchangeReplay.requests`) so a test can assert what ccxt sent.
"""

from __future__ import annotations

import json
import random
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from tests.support.fixtures import shared_fixtures_dir
from tests.support.loopback import LoopbackHTTP

SELECTING_KEYS = ("symbol", "instId", "category", "productType", "instType")
#: Market ids (per exchange host) answered from the freqtrade candles.
KLINE_SYMBOLS: dict[str, frozenset[str]] = {
    "api.binance.com": frozenset({"BTCUSDT"}),
    "fapi.binance.com": frozenset({"BTCUSDT"}),
    "www.okx.com": frozenset({"BTC-USDT", "BTC-USDT-SWAP"}),
    "api.bybit.com": frozenset({"BTCUSDT"}),
}
#: ccxt 4.5.90 calls MEXC's contract API on ``api.mexc.com/api/v1/contract``; the recordings
#: were made on the older ``contract.mexc.com`` host, which serves the same paths.
HOST_ALIASES: dict[tuple[str, str], str] = {
    ("api.mexc.com", "/api/v1/contract/"): "contract.mexc.com"
}
MINUTE_MS = 60_000
_JSON = "application/json"

Candle = tuple[int, float, float, float, float, float]
FaultKind = Literal["respond", "truncate", "delay", "scramble", "drop"]


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour, applied to one matching request.

    ``respond`` answers ``status``/``body``/``headers`` instead of the replay; ``truncate`` serves
    the normal body cut to half its length; ``delay`` sleeps ``delay_s`` before answering
    normally; ``scramble`` (kline routes only) shuffles the page and repeats some of its candles;
    ``drop`` closes the connection without answering (a server that died behind its address).
    """

    kind: FaultKind
    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    delay_s: float = 0.0
    seed: int = 0

    @classmethod
    def rate_limited(cls, retry_after: str = "1") -> Fault:
        """HTTP 429 with a ``Retry-After`` header (seconds or an HTTP date)."""
        return cls(
            "respond",
            status=429,
            body=b"Too Many Requests",
            headers=(("Retry-After", retry_after),),
        )

    @classmethod
    def status_code(cls, status: int, body: dict[str, Any] | str) -> Fault:
        """Any status with a JSON (dict) or raw (str) body."""
        raw = json.dumps(body) if isinstance(body, dict) else body
        return cls("respond", status=status, body=raw.encode())

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        """A 5xx with an HTML body, as a load balancer sends it."""
        body = f"<html><body><h1>{status} Internal Server Error</h1></body></html>".encode()
        return cls("respond", status=status, body=body, headers=(("Content-Type", "text/html"),))

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Answer normally, but only after ``seconds`` (set it beyond the client's timeout)."""
        return cls("delay", delay_s=seconds)

    @classmethod
    def truncated_json(cls) -> Fault:
        """A 200 whose body is the normal one cut in half: JSON that does not parse."""
        return cls("truncate")

    @classmethod
    def dropped(cls) -> Fault:
        """No answer at all: the connection is closed as soon as the request has been read."""
        return cls("drop", status=0)

    @classmethod
    def scrambled(cls, seed: int = 7) -> Fault:
        """The normal kline page, shuffled (seeded) with some candles sent twice."""
        return cls("scramble", seed=seed)


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the server saw it, and what it answered."""

    method: str
    host: str
    path: str
    query: dict[str, str]
    status: int
    fault: str | None

    @property
    def target(self) -> str:
        return f"{self.host}{self.path}"


@dataclass(frozen=True)
class _Route:
    method: str
    host: str
    path: str
    selectors: tuple[tuple[str, str], ...]
    body: bytes
    recorded: bool
    source: str

    def matches(self, method: str, host: str, path: str, query: dict[str, str]) -> bool:
        return (self.method, self.host, self.path) == (method, host, path) and all(
            query.get(k) == v for k, v in self.selectors
        )


@dataclass
class _Injected:
    pattern: re.Pattern[str]
    faults: deque[Fault]
    forever: Fault | None = None
    after: int = 0


@cache
def real_candles(fixtures: Path | None = None) -> tuple[Candle, ...]:
    """The 13,681 real 1m candles ``[ts_ms, open, high, low, close, volume]`` (sorted, unique)."""
    root = fixtures or shared_fixtures_dir()
    rows = json.loads((root / "freqtrade" / "UNITTEST_BTC-1m.json").read_text())
    return tuple((int(r[0]), *(float(x) for x in r[1:6])) for r in rows)  # type: ignore[misc]


_OKX_BY_INST_TYPE = ("/api/v5/market/tickers", "/api/v5/public/instruments")


def _inferred_selectors(host: str, path: str, body: bytes) -> dict[str, str]:
    """Selecting keys a body answers for when its manifest query is empty.

    Several vendor-doc bodies answer a one-symbol query although the manifest records none: a
    top-level object (Binance, MEXC spot) or ``data`` object (MEXC contract) with a ``symbol``.
    Bybit's spot and linear bodies share a path and carry ``result.category``; OKX bodies list
    items of one ``instType`` (for the endpoints selected by it).
    """
    try:
        payload = json.loads(body)
    except ValueError:
        return {}
    if not isinstance(payload, dict):
        return {}
    result, data = payload.get("result"), payload.get("data")
    if isinstance(payload.get("symbol"), str):
        return {"symbol": payload["symbol"]}
    if isinstance(data, dict) and isinstance(data.get("symbol"), str):
        return {"symbol": data["symbol"]}
    if host == "api.bybit.com" and isinstance(result, dict) and result.get("category"):
        return {"category": str(result["category"])}
    if (
        host == "www.okx.com"
        and path in _OKX_BY_INST_TYPE
        and isinstance(data, list)
        and data
        and all(isinstance(d, dict) for d in data)
    ):
        inst_types = {d.get("instType") for d in data}
        if len(inst_types) == 1 and None not in inst_types:
            return {"instType": str(inst_types.pop())}
    return {}


def load_manifest_routes(fixtures: Path, bodies: Iterable[str] | None = None) -> list[_Route]:
    """Routes for the manifest entries (all, or only the ``body_file`` names in ``bodies``)."""
    wanted = None if bodies is None else set(bodies)
    entries = json.loads((fixtures / "exchanges" / "manifest.json").read_text())
    routes = []
    for entry in entries:
        if wanted is not None and entry["body_file"] not in wanted:
            continue
        body = (fixtures / "exchanges" / entry["body_file"]).read_bytes()
        selectors = {k: v for k, v in (entry.get("query") or {}).items() if k in SELECTING_KEYS}
        if not selectors:
            selectors = _inferred_selectors(entry["host"], entry["path"], body)
        routes.append(
            _Route(
                entry["method"],
                entry["host"],
                entry["path"],
                tuple(sorted(selectors.items())),
                body,
                entry["kind"] == "recorded",
                entry["body_file"],
            )
        )
    if wanted is not None and len({r.source for r in routes}) != len(wanted):
        missing = wanted - {r.source for r in routes}
        raise ValueError(f"body files not in the manifest: {sorted(missing)}")
    return routes


# --- kline emulation -------------------------------------------------------------------------


def _num(x: float) -> str:
    return repr(x)


def _select(
    rows: Sequence[Candle], lo: int | None, hi: int | None, limit: int, *, from_oldest: bool
) -> list[Candle]:
    """Candles with ``lo <= ts <= hi``; the first ``limit`` from the oldest or newest end."""
    picked = [r for r in rows if (lo is None or r[0] >= lo) and (hi is None or r[0] <= hi)]
    return picked[:limit] if from_oldest else picked[-limit:]


def _int(query: dict[str, str], key: str) -> int | None:
    return int(query[key]) if key in query else None


def _limit(query: dict[str, str], default: int, cap: int) -> int:
    return max(1, min(int(query.get("limit", default)), cap))


class _Klines:
    """Pages of real candles in Binance, OKX and Bybit wire formats (see the module docstring)."""

    def __init__(
        self,
        candles: Sequence[Candle],
        now_ms: int | None,
        symbols: dict[str, frozenset[str]] | None = None,
    ) -> None:
        self.now_ms = now_ms if now_ms is not None else candles[-1][0] + MINUTE_MS
        self.rows = [c for c in candles if c[0] <= self.now_ms]
        self.symbols = symbols or KLINE_SYMBOLS

    def _open(self, ts: int) -> bool:
        return ts + MINUTE_MS > self.now_ms

    def answer(
        self, host: str, path: str, query: dict[str, str], scramble: Fault | None
    ) -> tuple[int, Any] | None:
        if host in ("api.binance.com", "fapi.binance.com") and path in (
            "/api/v3/klines",
            "/fapi/v1/klines",
        ):
            return self._binance(host, query, scramble)
        if host == "www.okx.com" and path in (
            "/api/v5/market/candles",
            "/api/v5/market/history-candles",
        ):
            return self._okx(path.endswith("history-candles"), query, scramble)
        if host == "api.bybit.com" and path == "/v5/market/kline":
            return self._bybit(query, scramble)
        return None

    @staticmethod
    def _scramble(rows: list[Candle], fault: Fault | None) -> list[Candle]:
        if fault is None or not rows:
            return rows
        rng = random.Random(fault.seed)
        extra = rng.sample(rows, k=max(1, len(rows) // 10))
        out = rows + extra
        rng.shuffle(out)
        return out

    def _binance(self, host: str, q: dict[str, str], scramble: Fault | None) -> tuple[int, Any]:
        if q.get("symbol") not in self.symbols[host]:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        if q.get("interval") != "1m":
            return 400, {"code": -1120, "msg": "Invalid interval."}
        cap = 1000 if host == "api.binance.com" else 1500
        start, end = _int(q, "startTime"), _int(q, "endTime")
        rows = _select(self.rows, start, end, _limit(q, 500, cap), from_oldest=start is not None)
        rows = self._scramble(rows, scramble)
        return 200, [
            [
                ts,
                _num(o),
                _num(h),
                _num(lo),
                _num(c),
                _num(v),
                ts + MINUTE_MS - 1,
                "0",
                0,
                "0",
                "0",
                "0",
            ]
            for ts, o, h, lo, c, v in rows
        ]

    def _okx(self, history: bool, q: dict[str, str], scramble: Fault | None) -> tuple[int, Any]:
        if q.get("instId") not in self.symbols["www.okx.com"]:
            return 200, {"code": "51001", "msg": "Instrument ID does not exist", "data": []}
        if q.get("bar") != "1m":
            return 200, {"code": "51000", "msg": "Parameter bar error", "data": []}
        rows = self.rows if history else self.rows[-1440:]
        after, before = _int(q, "after"), _int(q, "before")
        lo = None if before is None else before + 1
        hi = None if after is None else after - 1
        picked = _select(rows, lo, hi, _limit(q, 100, 100 if history else 300), from_oldest=False)
        picked = self._scramble(picked, scramble) if scramble else picked[::-1]
        data = [
            [
                str(ts),
                _num(o),
                _num(h),
                _num(lo_),
                _num(c),
                _num(v),
                _num(v),
                "0",
                "0" if self._open(ts) else "1",
            ]
            for ts, o, h, lo_, c, v in picked
        ]
        return 200, {"code": "0", "msg": "", "data": data}

    def _bybit(self, q: dict[str, str], scramble: Fault | None) -> tuple[int, Any]:
        if q.get("symbol") not in self.symbols["api.bybit.com"]:
            return 200, {
                "retCode": 10001,
                "retMsg": "Not supported symbols",
                "result": {},
                "retExtInfo": {},
                "time": self.now_ms,
            }
        if q.get("interval") != "1":
            return 200, {
                "retCode": 10001,
                "retMsg": "Invalid period!",
                "result": {},
                "retExtInfo": {},
                "time": self.now_ms,
            }
        start, end = _int(q, "start"), _int(q, "end")
        lo = None if start is None else start - start % MINUTE_MS
        picked = _select(
            self.rows, lo, end, _limit(q, 200, 1000), from_oldest=start is not None and end is None
        )
        picked = self._scramble(picked, scramble) if scramble else picked[::-1]
        rows = [
            [str(ts), _num(o), _num(h), _num(lo_), _num(c), _num(v), "0"]
            for ts, o, h, lo_, c, v in picked
        ]
        return 200, {
            "retCode": 0,
            "retMsg": "OK",
            "result": {"symbol": q["symbol"], "category": q.get("category"), "list": rows},
            "retExtInfo": {},
            "time": self.now_ms,
        }


def guard_loopback(monkeypatch: Any) -> None:
    """Make any name lookup or connection to a non-loopback address fail (use in a fixture)."""
    allowed = {"127.0.0.1", "::1", "localhost"}
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in allowed:
            raise OSError(f"test tried to resolve {host!r}: only loopback is allowed")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(sock: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and address[0] not in allowed:
            raise OSError(f"test tried to connect to {address!r}: only loopback is allowed")
        return real_connect(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)


# --- the server ------------------------------------------------------------------------------


class ExchangeReplay:
    """Context manager running the replay on ``127.0.0.1`` (free port) in a background thread.

    Parameters
    ----------
    bodies
        Only these manifest ``body_file`` names are served (default: all of them).
    market_now_ms
        The exchange's "now" for kline routes: later candles do not exist yet and the candle
        containing it is served as still open (OKX ``confirm = "0"``). Default: after the data.
    kline_symbols
        Further market ids per host (e.g. ``{"api.binance.com": {"ETHUSDT"}}``) answered with the
        same real candles as :data:`KLINE_SYMBOLS` (synthetic: the source has one market).
    """

    def __init__(
        self,
        *,
        bodies: Iterable[str] | None = None,
        market_now_ms: int | None = None,
        fixtures: Path | None = None,
        kline_symbols: dict[str, Iterable[str]] | None = None,
    ) -> None:
        self.fixtures = fixtures or shared_fixtures_dir()
        self._routes = load_manifest_routes(self.fixtures, bodies)
        self.candles = real_candles(self.fixtures)
        served = {
            host: ids | frozenset((kline_symbols or {}).get(host, ()))
            for host, ids in KLINE_SYMBOLS.items()
        }
        self._klines = _Klines(self.candles, market_now_ms, served)
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._faults: list[_Injected] = []
        self._http: LoopbackHTTP | None = None

    # lifecycle
    def __enter__(self) -> ExchangeReplay:
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                replay._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._http = LoopbackHTTP(Handler)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._http is not None:
            self._http.close()

    @property
    def base_url(self) -> str:
        assert self._http is not None, "use ExchangeReplay as a context manager"
        return self._http.url

    def hosts(self) -> set[str]:
        return {r.host for r in self._routes} | set(KLINE_SYMBOLS)

    def url_overrides(self) -> dict[str, str]:
        """``{"https://<host>": "http://127.0.0.1:PORT/<host>"}`` for every host served."""
        return {f"https://{h}": f"{self.base_url}/{h}" for h in sorted(self.hosts())}

    # configuration
    def add_json_route(
        self, host: str, path: str, payload: Any, *, method: str = "GET", **selectors: str
    ) -> None:
        """Serve ``payload`` (synthetic) for a request whose query carries ``selectors``."""
        body = json.dumps(payload).encode()
        route = _Route(
            method, host, path, tuple(sorted(selectors.items())), body, True, "synthetic"
        )
        with self._lock:
            self._routes.insert(0, route)

    def inject(
        self, pattern: str, *faults: Fault, forever: Fault | None = None, after: int = 0
    ) -> None:
        """Queue ``faults`` for requests whose ``host + path`` matches the regex ``pattern``.

        The first ``after`` matching requests pass untouched; then each queued fault is used
        once, in order; ``forever`` then applies to every later match.
        """
        with self._lock:
            self._faults.append(_Injected(re.compile(pattern), deque(faults), forever, after))

    # inspection
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, pattern: str) -> list[RecordedRequest]:
        rx = re.compile(pattern)
        return [r for r in self.requests if rx.search(r.target)]

    def unmatched(self) -> list[RecordedRequest]:
        """Requests the replay had no answer for (served 404)."""
        return [r for r in self.requests if r.status == 404 and r.fault is None]

    # request handling
    def _next_fault(self, target: str) -> Fault | None:
        with self._lock:
            for injected in self._faults:
                if injected.pattern.search(target):
                    if injected.after > 0:
                        injected.after -= 1
                        return None
                    if injected.faults:
                        return injected.faults.popleft()
                    if injected.forever is not None:
                        return injected.forever
        return None

    def _route(self, method: str, host: str, path: str, query: dict[str, str]) -> _Route | None:
        with self._lock:
            candidates = [r for r in self._routes if r.matches(method, host, path, query)]
        if not candidates:
            return None
        return max(candidates, key=lambda r: (len(r.selectors), r.recorded, -len(r.body)))

    def _answer(
        self, method: str, host: str, path: str, query: dict[str, str], fault: Fault | None
    ) -> tuple[int, bytes, str]:
        scramble = fault if fault is not None and fault.kind == "scramble" else None
        if method == "GET":
            kline = self._klines.answer(host, path, query, scramble)
            if kline is not None:
                return kline[0], json.dumps(kline[1]).encode(), _JSON
        route = self._route(method, host, path, query)
        if route is None:
            message = {"replay": f"no recorded response for {method} {host}{path} {query}"}
            return 404, json.dumps(message).encode(), _JSON
        return 200, route.body, _JSON

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        split = urlsplit(handler.path)
        host, _, rest = split.path.lstrip("/").partition("/")
        path = "/" + rest
        for (alias_host, prefix), real_host in HOST_ALIASES.items():
            if host == alias_host and path.startswith(prefix):
                host = real_host
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        fault = self._next_fault(host + path)
        headers: tuple[tuple[str, str], ...] = ()
        if fault is not None and fault.kind == "drop":
            with self._lock:
                self._requests.append(
                    RecordedRequest(handler.command, host, path, query, 0, fault.kind)
                )
            handler.close_connection = True
            return
        if fault is not None and fault.kind == "respond":
            status, body, content_type = fault.status, fault.body, _JSON
            headers = fault.headers
        else:
            status, body, content_type = self._answer(handler.command, host, path, query, fault)
            if fault is not None and fault.kind == "truncate":
                body = body[: len(body) // 2]
        with self._lock:  # recorded on arrival, so a test sees a request its client gave up on
            self._requests.append(
                RecordedRequest(
                    handler.command,
                    host,
                    path,
                    query,
                    status,
                    None if fault is None else fault.kind,
                )
            )
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.delay_s)
        header_names = {k.lower() for k, _ in headers}
        try:
            handler.send_response(status)
            if "content-type" not in header_names:
                handler.send_header("Content-Type", content_type)
            for key, value in headers:
                handler.send_header(key, value)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout fault)


__all__ = ["ExchangeReplay", "Fault", "RecordedRequest", "guard_loopback", "real_candles"]
