"""Render a signal's payload into Telegram HTML (values escaped, within 4096 UTF-16 units).

Three kinds, three templates: social calls (a validation's payload), market signals
(``MarketSignal.to_record()``: direction, entry, stop, targets, R:R, confidence, risk level, size,
strategy, exchange, symbol, timeframe, trigger candle and expiry) and funding-rate alerts
(``FundingAlert.to_record()``). A publisher may replace each template; its fields are the keys
of :func:`market_values` / :func:`funding_values` (and the social ones below).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from resources.publishers.render import Html, escape_html, fit_message, render_template

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
    "{arrow} <b>{direction} {symbol}</b> · {exchange} · {timeframe}\n"
    "Entry <code>{entry}</code>\n"
    "Stop <code>{stop}</code> ({stop_pct})\n"
    "Targets {targets}\n"
    "R:R <b>{rr}</b> · Confidence <b>{confidence}</b> · Risk <b>{risk_level}</b>\n"
    "Size {size} of the account · Strategy {strategy}\n"
    "Trigger candle {trigger} · valid until {expires}"
)

FUNDING_TEMPLATE = (
    "<b>{headline}</b>\n"
    "<b>{side}</b> on <b>{symbol}</b> · {exchange}\n"
    "Funding <b>{rate}</b> per interval ({annualised} a year) · threshold ±{threshold}\n"
    "Mark price <code>{mark_price}</code> · Open interest {open_interest}\n"
    "Snapshot {ts} · next funding {next_funding}"
)

_DIRECTIONS = {"long": ("🟢", "LONG"), "short": ("🔴", "SHORT")}
_SIDES = {"longs_pay": "Longs pay shorts (longs crowded)", "shorts_pay": "Shorts pay longs (shorts crowded)"}


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
    elif kind == "market":
        html = render_template(template or MARKET_TEMPLATE, market_values(payload, confidence=confidence, review=review))
    elif kind == "funding":
        html = render_template(template or FUNDING_TEMPLATE, funding_values(payload, review=review))
    else:
        raise ValueError(f"no template for signal kind {kind!r}; expected social, market or funding")
    return fit_message(html)


def price(value: Any) -> str:
    """A price with six significant digits, no exponent: 65,432.1 · 1.23457 · 0.0000123457."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"price {value!r} is not a finite number")
    if number == 0:
        return "0"
    decimals = max(0, 5 - math.floor(math.log10(abs(number))))
    text = f"{number:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _move(to: float, entry: float) -> str:
    return f"{(to / entry - 1) * 100:+.2f}%"


def _moment(value: Any) -> str:
    moment = datetime.fromisoformat(str(value)) if not isinstance(value, datetime) else value
    if moment.tzinfo is None:
        raise ValueError(f"time {value!r} has no timezone; expected ISO 8601 in UTC")
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _required(payload: Mapping[str, Any], kind: str, *names: str) -> None:
    missing = [name for name in names if payload.get(name) is None]
    if missing:
        raise ValueError(f"{kind} payload lacks {', '.join(missing)} (expected MarketSignal.to_record() "
                         "or FundingAlert.to_record())")


def market_values(payload: Mapping[str, Any], *, confidence: float, review: bool = False) -> dict[str, Any]:
    """The template values of a market signal (a ``MarketSignal.to_record()`` payload).

    Raises
    ------
    ValueError
        A field is missing, a price is not a positive number or the direction is unknown.
    """
    _required(payload, "market signal", "strategy", "exchange", "symbol", "timeframe", "direction", "entry",
              "stop", "targets", "risk_level", "size", "trigger_ts", "expires_at")
    direction = str(payload["direction"]).lower()
    if direction not in _DIRECTIONS:
        raise ValueError(f"market signal: direction must be long or short, got {payload['direction']!r}")
    entry, stop = float(payload["entry"]), float(payload["stop"])
    targets = [float(t) for t in payload["targets"]]
    if not targets or not all(math.isfinite(p) and p > 0 for p in (entry, stop, *targets)):
        raise ValueError(f"market signal: entry, stop and targets must be positive prices, got "
                         f"{entry}, {stop}, {targets}")
    rr = payload.get("risk_reward")
    rr = abs(targets[0] - entry) / abs(entry - stop) if rr is None else float(rr)
    arrow, shown = _DIRECTIONS[direction]
    return {
        "headline": "Market signal (manual review)" if review else "Market signal",
        "arrow": arrow, "direction": shown, "symbol": payload["symbol"], "exchange": payload["exchange"],
        "timeframe": payload["timeframe"], "entry": price(entry), "stop": price(stop),
        "stop_pct": _move(stop, entry),
        "targets": Html(" · ".join(f"T{i} <code>{escape_html(price(t))}</code> ({_move(t, entry)})"
                                   for i, t in enumerate(targets, 1))),
        "rr": f"{rr:.2f}", "confidence": f"{confidence:.0%}", "risk_level": str(payload["risk_level"]).upper(),
        "size": f"{float(payload['size']):.0%}", "strategy": payload["strategy"],
        "trigger": _moment(payload["trigger_ts"]), "expires": _moment(payload["expires_at"]),
    }


def funding_values(payload: Mapping[str, Any], *, review: bool = False) -> dict[str, Any]:
    """The template values of a funding-rate alert (a ``FundingAlert.to_record()`` payload)."""
    _required(payload, "funding alert", "exchange", "symbol", "ts", "side", "funding_rate", "threshold")
    side = str(payload["side"])
    if side not in _SIDES:
        raise ValueError(f"funding alert: side must be longs_pay or shorts_pay, got {side!r}")
    annualised = payload.get("annualised_pct")
    return {
        "headline": "Funding-rate alert (manual review)" if review else "Funding-rate alert",
        "side": _SIDES[side], "symbol": payload["symbol"], "exchange": payload["exchange"],
        "rate": f"{float(payload['funding_rate']) * 100:+.4f}%",
        "annualised": "n/a" if annualised is None else f"{float(annualised):+.1f}%",
        "threshold": f"{float(payload['threshold']) * 100:.4f}%",
        "mark_price": "n/a" if payload.get("mark_price") is None else price(payload["mark_price"]),
        "open_interest": usd(payload.get("open_interest_value")),
        "ts": _moment(payload["ts"]),
        "next_funding": "n/a" if payload.get("next_funding_ts") is None else _moment(payload["next_funding_ts"]),
    }
