"""publish_pending against a loopback Telegram Bot API stand-in and a signed-webhook receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from assets.publishing import publish_pending
from resources.publishers.outbox import Outbox
from resources.publishers.senders import build_publishers
from resources.social_config import PublisherConfig
from resources.warehouse.engine import make_engine
from tests.support.fixtures import shared_fixtures_dir
from tests.support.telegram_standin import TelegramStandIn

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)
SECRET = "webhook-shared-secret"


class Receiver:
    """A trading bot's webhook endpoint: verifies the HMAC like a real receiver would."""

    def __init__(self) -> None:
        self.accepted: list[dict] = []
        self.rejected = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return None

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                stamp = self.headers.get("x-signalworks-timestamp", "")
                expected = "sha256=" + hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
                ok = hmac.compare_digest(expected, self.headers.get("x-signalworks-signature", ""))
                if ok:
                    receiver.accepted.append(json.loads(body))
                else:
                    receiver.rejected += 1
                self.send_response(200 if ok else 401)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/signals"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def _signal(outbox: Outbox, i: int, token: str, chain: str, confidence: float, source: str = "telegram") -> None:
    outbox.enqueue(kind="social", origin=f"validation:{i}", base_token=f"{chain}:{token}", confidence=confidence,
                   chain=chain, address=token, source=source, channel="@alpha",
                   payload={"symbol": f"T{i}<&>", "chain": chain, "address": token, "price_usd": 0.01,
                            "liquidity_usd": 1e5, "window_s": 60, "reaction_pct": 5.0, "channels": 2,
                            "authors": 2, "channel": "@alpha", "source": source,
                            "chart_url": f"https://dexscreener.com/{chain}/{token}"}, now=T0)


def test_two_publishers_with_different_rules(tmp_path: Path, sqlite_url: str, receiver: Receiver,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    outbox = Outbox(make_engine(sqlite_url))
    _signal(outbox, 1, "tokA", "solana", 0.9)
    _signal(outbox, 2, "tokA", "solana", 0.85)  # same token again: blacklisted for every publisher
    _signal(outbox, 3, "tokB", "base", 0.8)
    _signal(outbox, 4, "tokC", "solana", 0.65)  # just under alpha's bar: alpha's review chat
    _signal(outbox, 5, "tokD", "bsc", 0.4, source="x")
    with TelegramStandIn(shared_fixtures_dir() / "telegram" / "bot_api") as standin:
        monkeypatch.setenv("BOT_TOKEN", standin.token)
        monkeypatch.setenv("HOOK_SECRET", SECRET)
        configs = (
            PublisherConfig(name="alpha", kind="telegram_bot", chat_id="-1001", token_env="BOT_TOKEN",
                            min_confidence=0.7, review_chat_id="-1009", priority=10),
            PublisherConfig(name="solana_only", kind="telegram_bot", chat_id="-1002", token_env="BOT_TOKEN",
                            min_confidence=0.6, chains=("solana",), sources=("telegram",)),
            PublisherConfig(name="bot", kind="webhook", url=receiver.url, secret_env="HOOK_SECRET",
                            min_confidence=0.5),
        )
        publishers = build_publishers(configs, home=tmp_path, telegram_base_url=standin.base_url)
        report = publish_pending(outbox, publishers, now=T0)
        again = publish_pending(outbox, publishers, now=T0)
        for publisher in publishers:
            publisher.close()
        alpha = [m.plain_text for m in standin.sent_to("-1001")]
        review = [m.plain_text for m in standin.sent_to("-1009")]
        solana = [m.plain_text for m in standin.sent_to("-1002")]
        assert not standin.violations
    assert [("T1<&>" in t, "T3<&>" in t) for t in alpha] == [(True, False), (False, True)]
    assert len(review) == 1 and "T4<&>" in review[0] and "manual review" in review[0]
    assert len(solana) == 2 and "T1<&>" in solana[0] and "T4<&>" in solana[1]
    assert sorted(m["address"] for m in receiver.accepted) == ["tokA", "tokB", "tokC"]
    assert receiver.rejected == 0
    assert report.outcomes["sent"] == 2 + 2 + 3 and report.outcomes["review"] == 1
    assert again.signals == 0  # everything delivered: nothing left pending, nothing sent again
    assert outbox.pending() == []


def test_a_publisher_failure_leaves_the_signal_pending_for_it(tmp_path: Path, sqlite_url: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    outbox = Outbox(make_engine(sqlite_url))
    _signal(outbox, 1, "tokA", "solana", 0.9)
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    configs = (PublisherConfig(name="console", kind="console"),
               PublisherConfig(name="bot", kind="webhook", url="http://127.0.0.1:9/unreachable",
                               secret_env="HOOK_SECRET"))
    publishers = build_publishers(configs, home=tmp_path)
    publishers[1].retry.sleep = lambda _s: None  # type: ignore[attr-defined]
    report = publish_pending(outbox, publishers, now=T0)
    assert report.outcomes["sent"] == 1 and report.outcomes["error"] == 1
    assert "unreachable" in next(iter(report.errors.values()))
    assert [s.signal_id for s in outbox.pending()] == [1]  # still pending for the webhook
    assert [json.loads(line)["publisher"] for line in (tmp_path / "publications.jsonl").read_text().splitlines()] == ["console"]
    report = publish_pending(outbox, publishers, now=T0)
    assert report.outcomes["already"] == 1 and report.outcomes["error"] == 1  # console not sent twice
