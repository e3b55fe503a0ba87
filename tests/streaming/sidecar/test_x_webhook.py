"""X webhook receiver over loopback: CRC, signed POSTs, forged and missing signatures, proxy."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from resources.social_config import ChannelConfig, XSourceConfig
from streaming.events import Event
from streaming.sources.base import SourceFatalError
from streaming.sources.x_webhook import XClient, XWebhookSource

SECRET = "test-consumer-secret-7f3a"
MINT = "7GCihgDB8fe6KNjn2MYtkzZcRjQy3t9GHdC8uHYmW2hr"
EVM = "0xaF2E4F3E10B8d06ecEcABBB7F8A7022c6EAb7B07"


def independent_signature(secret: str, payload: bytes) -> str:
    """What X computes, written out here rather than imported from the code under test."""
    return "sha256=" + base64.b64encode(hmac.new(secret.encode(), payload, hashlib.sha256).digest()).decode()


def tweet(tweet_id: str, handle: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"id_str": tweet_id, "text": text, "timestamp_ms": "1748779200000", "lang": "en",
            "user": {"id_str": "42", "screen_name": handle}, **extra}


ACTIVITY = {
    "for_user_id": "42",
    "tweet_create_events": [
        tweet("1900000000000000001", "alphacaller", "new gem on sol https://t.co/AbC123",
              entities={"urls": [{"url": "https://t.co/AbC123",
                                  "expanded_url": f"https://dexscreener.com/solana/{MINT}"}]}),
        tweet("1900000000000000002", "AlphaCaller", "long one… https://t.co/trunc", truncated=True,
              extended_tweet={"full_text": f"Base CA: {EVM} this is the full, long text of the call https://t.co/pic",
                              "entities": {"urls": []},
                              "extended_entities": {"media": [{"url": "https://t.co/pic",
                                                               "media_url_https": "https://pbs.twimg.com/media/x.jpg"}]}}),
        tweet("1900000000000000003", "randomuser", f"not followed {MINT}"),
    ],
}


@asynccontextmanager
async def running(source: XWebhookSource, emit: Callable[[Event], Awaitable[None]]) -> AsyncIterator[str]:
    task = asyncio.create_task(source.run(emit))
    ready = asyncio.create_task(source.ready.wait())
    done, _ = await asyncio.wait({task, ready}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        ready.cancel()
        task.result()
    assert ready in done, "the receiver did not start"
    try:
        yield f"http://127.0.0.1:{source.port}{source.config.path}"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _source(**config: Any) -> XWebhookSource:
    settings = XSourceConfig(enabled=True, port=0, accounts=(ChannelConfig(id="@AlphaCaller"),), **config)
    return XWebhookSource(settings, consumer_secret=SECRET)


def test_crc_signed_posts_forged_and_missing_signatures() -> None:
    events: list[Event] = []

    async def emit(event: Event) -> None:
        events.append(event)

    source = _source()

    async def scenario() -> None:
        async with running(source, emit) as url, httpx.AsyncClient(trust_env=False, timeout=5) as client:
            crc = await client.get(url, params={"crc_token": "challenge-123"})
            assert crc.status_code == 200
            assert crc.json() == {"response_token": independent_signature(SECRET, b"challenge-123")}
            assert (await client.get(url)).status_code == 400

            body = json.dumps(ACTIVITY).encode()
            ok = await client.post(url, content=body, headers={
                "x-twitter-webhooks-signature": independent_signature(SECRET, body),
                "content-type": "application/json"})
            assert ok.status_code == 200 and ok.json() == {"accepted": 2}
            accepted = len(events)

            forged = await client.post(url, content=body, headers={
                "x-twitter-webhooks-signature": independent_signature("not-the-secret", body)})
            tampered_body = body.replace(b"alphacaller", b"AlphaCaller")
            tampered = await client.post(url, content=tampered_body, headers={
                "x-twitter-webhooks-signature": independent_signature(SECRET, body)})
            missing = await client.post(url, content=body)
            garbage = await client.post(url, content=body, headers={"x-twitter-webhooks-signature": "sha256=%%%"})
            assert [r.status_code for r in (forged, tampered, missing, garbage)] == [403, 403, 403, 403]
            assert len(events) == accepted == 2, "nothing emitted for a rejected request"
            not_an_object = await client.post(url, content=b"[1]", headers={
                "x-twitter-webhooks-signature": independent_signature(SECRET, b"[1]")})
            assert not_an_object.status_code == 400

    asyncio.run(scenario())
    assert source.rejected == 4 and source.health.errors == 4
    first, second = events
    assert (first.source, first.channel, first.message_id, first.author) == ("x", "@AlphaCaller", "1900000000000000001", "alphacaller")
    assert first.text == f"new gem on sol https://dexscreener.com/solana/{MINT}", "t.co expanded from the entities"
    assert [(t.chain, t.address) for t in first.tokens] == [("solana", MINT)]
    assert first.ts.isoformat() == "2025-06-01T12:00:00+00:00"
    assert second.text == f"Base CA: {EVM} this is the full, long text of the call"
    assert [(t.chain, t.address) for t in second.tokens] == [("base", EVM)]
    assert second.attachments == ("https://pbs.twimg.com/media/x.jpg",)
    assert second.raw["for_user_id"] == "42"
    assert not source.health.connected, "cleaned up on cancel"


def test_created_at_and_retweets() -> None:
    from streaming.sources.x_webhook import tweet_to_event

    retweet = tweet("5", "alphacaller", "RT @other: trunc…", timestamp_ms=None,
                    created_at="Sun Jun 01 12:00:00 +0000 2025",
                    retweeted_status=tweet("4", "other", f"original call {MINT}"))
    event = tweet_to_event(retweet, channel="@AlphaCaller")
    assert event.text == f"RT @other: original call {MINT}"
    assert event.ts.isoformat() == "2025-06-01T12:00:00+00:00" and event.raw["is_retweet"] is True


def test_a_missing_secret_is_a_fatal_error_naming_the_variable() -> None:
    source = XWebhookSource(XSourceConfig(enabled=True, port=0), environ={})

    async def emit(event: Event) -> None:  # pragma: no cover - never called
        raise AssertionError

    with pytest.raises(SourceFatalError, match="SIGNALWORKS_X_CONSUMER_SECRET"):
        asyncio.run(source.run(emit))
    assert SECRET not in repr(_source())


async def _recording_proxy(seen: list[str]) -> asyncio.AbstractServer:
    """A minimal forward HTTP proxy on loopback: records request lines, answers a redirect."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        seen.append(head.decode("latin-1"))
        writer.write(b"HTTP/1.1 301 Moved Permanently\r\nLocation: https://dexscreener.com/solana/" + MINT.encode()
                     + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def test_outbound_calls_go_through_the_configured_proxy() -> None:
    seen: list[str] = []

    async def scenario() -> None:
        proxy = await _recording_proxy(seen)
        port = proxy.sockets[0].getsockname()[1]
        proxy_url = f"http://127.0.0.1:{port}"
        source = _source(proxy=proxy_url)

        async def emit(event: Event) -> None:  # pragma: no cover - no POST here
            raise AssertionError

        try:
            async with running(source, emit):
                assert source.client is not None and source.client.proxy == proxy_url
                resolved = await source.client.resolve_link("http://t.co/AbC123")
                assert resolved == f"https://dexscreener.com/solana/{MINT}"
        finally:
            proxy.close()
            await proxy.wait_closed()

    asyncio.run(scenario())
    assert len(seen) == 1
    request_line, *headers = seen[0].split("\r\n")
    assert request_line == "HEAD http://t.co/AbC123 HTTP/1.1", "absolute-form request line: sent to the proxy"
    assert "Host: t.co" in headers


def test_without_a_proxy_calls_go_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    seen: list[str] = []

    async def scenario() -> None:
        server = await _recording_proxy(seen)  # here it plays the destination itself
        port = server.sockets[0].getsockname()[1]
        client = XClient(proxy=None)
        try:
            await client.resolve_link(f"http://127.0.0.1:{port}/AbC123")
        finally:
            await client.aclose()
            server.close()
            await server.wait_closed()

    asyncio.run(scenario())
    assert seen[0].split("\r\n")[0] == "HEAD /AbC123 HTTP/1.1", "origin-form request line: no proxy"
