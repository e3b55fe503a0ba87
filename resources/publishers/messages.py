"""Render a signal's payload into Telegram HTML (values escaped, within 4096 UTF-16 units)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from resources.publishers.render import fit_message, render_template

SOCIAL_TEMPLATE = (
    "<b>{headline}</b>\n"
    "<b>{symbol}</b> on <b>{chain}</b>\n"
    "<code>{address}</code>\n"
    "Confidence <b>{confidence}</b>{review_note}\n"
    "Price {price} · Liquidity {liquidity} · MCap {market_cap} · Vol 24h {volume}\n"
    "Reaction over {window}: {reaction}\n"
    "Mentioned in {channels} channel(s) by {authors} author(s) · first in {channel} ({source})\n"
    '<a href="{chart_url}">Chart</a>'
)

MARKET_TEMPLATE = (
    "<b>{headline}</b>\n"
    "<b>{direction} {symbol}</b> on {exchange} ({timeframe})\n"
    "Entry {entry} · Stop {stop} · Targets {targets}\n"
    "R:R {rr} · Size {size} · Confidence <b>{confidence}</b>"
)


def usd(value: Any) -> str:
    """Compact USD: $1.23M, $45.6K, $0.000123."""
    if value is None:
        return "n/a"
    number = float(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(number) >= limit:
            return f"${number / limit:.2f}{suffix}"
    return f"${number:.4g}" if abs(number) < 1 else f"${number:,.2f}"


def pct(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):+.1f}%"


def render_signal(kind: str, payload: Mapping[str, Any], *, confidence: float, review: bool = False,
                  template: str | None = None) -> str:
    """The Telegram HTML for one signal; every value from the payload is escaped."""
    if kind == "social":
        values = {
            "headline": "Token call (manual review)" if review else "Validated token call",
            "symbol": payload.get("symbol") or "?", "chain": payload.get("chain") or "?",
            "address": payload.get("address") or "", "confidence": f"{confidence:.0%}",
            "review_note": " · just under the bar" if review else "",
            "price": usd(payload.get("price_usd")), "liquidity": usd(payload.get("liquidity_usd")),
            "market_cap": usd(payload.get("market_cap_usd")), "volume": usd(payload.get("volume_24h_usd")),
            "window": f"{float(payload.get('window_s') or 0):.0f}s", "reaction": pct(payload.get("reaction_pct")),
            "channels": payload.get("channels", 1), "authors": payload.get("authors", 1),
            "channel": payload.get("channel") or "?", "source": payload.get("source") or "?",
            "chart_url": payload.get("chart_url") or "https://dexscreener.com",
        }
        html = render_template(template or SOCIAL_TEMPLATE, values)
    else:
        values = {
            "headline": "Market signal (manual review)" if review else "Market signal",
            "direction": str(payload.get("direction", "")).upper(), "symbol": payload.get("symbol") or "?",
            "exchange": payload.get("exchange") or "?", "timeframe": payload.get("timeframe") or "?",
            "entry": payload.get("entry"), "stop": payload.get("stop"),
            "targets": ", ".join(str(t) for t in payload.get("targets", [])), "rr": payload.get("rr"),
            "size": payload.get("size"), "confidence": f"{confidence:.0%}",
        }
        html = render_template(template or MARKET_TEMPLATE, values)
    return fit_message(html)
