"""A loopback DexScreener server that replays the real recorded responses of ``../shared/fixtures``.

What is real and what is not:

* Every entry of ``dexscreener/manifest.json`` (recorded against the live API about 2025-11-06:
  ``/token-pairs/v1/solana/USD1...``, ``/tokens/v1/solana/USD1...``, ``/latest/dex/...``,
  token profiles and boosts) is served byte for byte, with its recorded status, for a request on
  the same path and query. Where one path was recorded twice, the first recording answers.
* Requests on ``/token-pairs/v1/...`` and ``/tokens/v1/...`` that were not recorded are answered
  from the **real recorded pair objects** of every recorded body (61 distinct pairs on solana,
  bsc, base and ethereum; each pair object verbatim; a pair recorded several times comes from the ``/v1`` recordings
  first, then the first in manifest order):
  ``/token-pairs/v1/{chain}/{address}`` lists the pairs that trade the address, either side;
  ``/tokens/v1/{chain}/{a,b,...}`` lists, per address, its most liquid pair as base token (the
  recorded single-token ``/tokens/v1`` answer is exactly that). Addresses compare
  case-insensitively when they start with ``0x``. **Synthetic:** the selection and the envelope,
  and ``[]`` for an address no recording mentions (the live API's answer for an unlisted token).
  ``/latest/dex/pairs/{chain}/{pair}`` answers the recorded pair object of that pair address
  in the API's envelope (``{"pairs": [...], "pair": ...}``; ``null`` for an unknown pair).
  Other unrecorded paths get a synthetic 404.
* Faults (:class:`Fault`) are synthetic by construction (DexScreener's own 429 body was not
  recorded; the one here is a plain JSON message).

The server records every request (method, path, query, headers) so a test can check what the
client sent, e.g. how many addresses one ``/tokens/v1`` request carried.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.support.http_faults import Fault, RecordedRequest
from tests.support.loopback import LoopbackHTTP

_JSON = "application/json"
TOKEN_PAIRS_PREFIX = "/token-pairs/v1/"
TOKENS_PREFIX = "/tokens/v1/"
PAIRS_PREFIX = "/latest/dex/pairs/"
#: The token of the recordings: World Liberty Financial USD (USD1) on Solana.
USD1 = "USD1ttGY1N17NEEHLmELoaybftRBUSErhqYiQzvEmuB"

@dataclass(frozen=True)
class _Recording:
    path: str
    query: tuple[tuple[str, str], ...]
    status: int
    body: bytes


def _same(a: str, b: str) -> bool:
    if a.startswith("0x") and b.startswith("0x"):
        return a.lower() == b.lower()
    return a == b


def _liquidity(pair: dict[str, Any]) -> float:
    return float((pair.get("liquidity") or {}).get("usd") or 0.0)


def recorded_pairs(dexscreener_dir: Path) -> list[dict[str, Any]]:
    """Every distinct pair object (by chain and pair address) of the recorded pair bodies."""
    manifest = json.loads((dexscreener_dir / "manifest.json").read_text())
    # the v1 recordings first (the endpoints the client calls), then the others in manifest order
    manifest.sort(key=lambda e: not e["path"].startswith((TOKEN_PAIRS_PREFIX, TOKENS_PREFIX)))
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in manifest:
        body = json.loads((dexscreener_dir / entry["body_file"]).read_text())
        if isinstance(body, dict):
            body = body.get("pairs")
        if not isinstance(body, list):
            continue
        for item in body:
            if isinstance(item, dict) and "pairAddress" in item and "baseToken" in item:
                seen.setdefault((item["chainId"], item["pairAddress"]), item)
    return list(seen.values())


@dataclass
class DexScreenerReplay:
    """Context manager running the replay on ``127.0.0.1`` (random port) in a background thread.

    ``dexscreener_dir`` is ``<shared fixtures>/dexscreener``. Point a client at :attr:`base_url`.
    """

    dexscreener_dir: Path
    requests: list[RecordedRequest] = field(default_factory=list)
    pairs: list[dict[str, Any]] = field(default_factory=list)
    _recordings: list[_Recording] = field(default_factory=list)
    _faults: deque[tuple[str | None, Fault]] = field(default_factory=deque)
    _persistent: dict[str | None, Fault] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _http: LoopbackHTTP | None = None

    def __post_init__(self) -> None:
        for entry in json.loads((self.dexscreener_dir / "manifest.json").read_text()):
            self._recordings.append(
                _Recording(
                    path=entry["path"],
                    query=tuple(sorted(entry["query"].items())),
                    status=int(entry["status"]),
                    body=(self.dexscreener_dir / entry["body_file"]).read_bytes(),
                )
            )
        self.pairs = recorded_pairs(self.dexscreener_dir)

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> DexScreenerReplay:
        self._http = LoopbackHTTP(_make_handler(self))
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._http is not None
        self._http.close()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``: the API root to give a client."""
        assert self._http is not None, "enter the context manager first"
        return self._http.url

    # -- configuration ------------------------------------------------------------------------
    def inject(self, *faults: Fault, path: str | None = None) -> None:
        """Queue ``faults`` for the next requests (on ``path`` only, when given), in order."""
        with self._lock:
            self._faults.extend((path, fault) for fault in faults)

    def fail_always(self, fault: Fault | None, *, path: str | None = None) -> None:
        """Apply ``fault`` to every request (on ``path``) once the queue is empty; None clears it."""
        with self._lock:
            if fault is None:
                self._persistent.pop(path, None)
            else:
                self._persistent[path] = fault

    def requests_to(self, prefix: str) -> list[RecordedRequest]:
        """The recorded requests whose path starts with ``prefix``, oldest first."""
        with self._lock:
            return [r for r in self.requests if r.path.startswith(prefix)]

    # -- serving (called from the handler threads) --------------------------------------------
    def _record(self, request: RecordedRequest) -> Fault | None:
        with self._lock:
            self.requests.append(request)
            for i, (path, fault) in enumerate(self._faults):
                if path is None or path == request.path:
                    del self._faults[i]
                    return fault
            return self._persistent.get(request.path, self._persistent.get(None))

    def _answer(self, path: str, query: dict[str, str]) -> tuple[int, bytes]:
        wanted = tuple(sorted(query.items()))
        for rec in self._recordings:
            if rec.path == path and rec.query == wanted:
                return rec.status, rec.body
        if path.startswith(TOKEN_PAIRS_PREFIX):
            chain, _, address = path[len(TOKEN_PAIRS_PREFIX) :].partition("/")
            found = [
                p
                for p in self.pairs
                if p["chainId"] == chain
                and (
                    _same(p["baseToken"]["address"], address)
                    or _same(p["quoteToken"]["address"], address)
                )
            ]
            return 200, json.dumps(found).encode()
        if path.startswith(TOKENS_PREFIX):
            chain, _, joined = path[len(TOKENS_PREFIX) :].partition("/")
            found = []
            for address in joined.split(","):
                based = [
                    p
                    for p in self.pairs
                    if p["chainId"] == chain and _same(p["baseToken"]["address"], address)
                ]
                if based:
                    found.append(max(based, key=_liquidity))
            return 200, json.dumps(found).encode()
        if path.startswith(PAIRS_PREFIX):  # synthetic envelope around the recorded pair object
            chain, _, address = path[len(PAIRS_PREFIX) :].partition("/")
            found = [p for p in self.pairs if p["chainId"] == chain and _same(p["pairAddress"], address)]
            return 200, json.dumps({"schemaVersion": "1.0.0", "pairs": found or None,
                                    "pair": found[0] if found else None}).encode()
        return 404, json.dumps({"error": f"replay: nothing recorded for {path} {query}"}).encode()


def _make_handler(replay: DexScreenerReplay) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            """Silence the default stderr access log."""

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            path = unquote(url.path)
            query = dict(parse_qsl(url.query, keep_blank_values=True))
            headers = {k.lower(): v for k, v in self.headers.items()}
            fault = replay._record(RecordedRequest("GET", path, query, headers))
            extra: tuple[tuple[str, str], ...] = ()
            if fault is not None and fault.kind == "respond":
                status, body, extra = fault.status, fault.body, fault.headers
            else:
                if fault is not None and fault.kind == "delay":
                    time.sleep(fault.delay_s)
                status, body = replay._answer(path, query)
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
