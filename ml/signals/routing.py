"""Per-publisher routing rules and the age limit of market signals (pure).

A publisher receives a signal when its kind is one the publisher takes, the filters that concern
that kind pass, and its confidence reaches ``min_confidence``. A signal that misses
``min_confidence`` by at most ``review_margin`` goes to the publisher's manual-review chat, when it
has one.

Which filter concerns which kind:

* social calls (kind ``"social"``): ``chains`` and ``sources``;
* market signals (``"market"``) and funding-rate alerts (``"funding"``): ``strategies``,
  ``symbols``, ``muted_symbols`` and ``risk_levels`` (funding alerts carry no risk level, so
  ``risk_levels`` does not filter them; route them away with ``kinds``).

An empty filter admits everything, so rules written before market signals existed route social
calls exactly as before.

A symbol pattern with a ``/`` names one market (``BTC/USDT``, ``ETH/USDT:USDT``); one without
names a base asset and matches every market of it (``DOGE`` matches ``DOGE/USDT`` and
``DOGE/USDT:USDT``). Matching ignores case.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from ml.marketdata.timeframes import timeframe_ms

Action = Literal["send", "review", "skip"]

#: Signal kinds a MAX_SIGNAL_AGE applies to and whose filters are the market ones.
MARKET_KINDS: frozenset[str] = frozenset({"market", "funding"})
#: The seed value of MAX_SIGNAL_AGE, in seconds.
MAX_SIGNAL_AGE_S = 60.0



@dataclass(frozen=True)
class RoutingRules:
    min_confidence: float = 0.0
    chains: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    has_review_chat: bool = False
    review_margin: float = 0.1
    kinds: tuple[str, ...] = ()
    strategies: tuple[str, ...] = ()
    symbols: tuple[str, ...] = ()
    muted_symbols: tuple[str, ...] = ()
    risk_levels: tuple[str, ...] = ()


@dataclass(frozen=True)
class RouteDecision:
    action: Action
    reason: str | None = None


def symbol_matches(symbol: str | None, pattern: str) -> bool:
    """Whether ``symbol`` is the market ``pattern`` names (with a ``/``) or a market of the base
    asset ``pattern`` names (without one), ignoring case. No symbol matches nothing."""
    if not symbol:
        return False
    wanted, actual = pattern.strip().upper(), symbol.strip().upper()
    return actual == wanted if "/" in wanted else actual.split("/", 1)[0] == wanted


def route(*, confidence: float, chain: str | None, source: str | None, rules: RoutingRules,
          review_only: bool = False, kind: str = "social", strategy: str | None = None,
          symbol: str | None = None, risk_level: str | None = None) -> RouteDecision:
    """Where one signal goes for one publisher.

    Kind first, then the filters of that kind (see the module docstring), then the bar: at or
    above ``min_confidence`` -> send; within ``review_margin`` below it -> review (if the
    publisher has a review chat); otherwise skip. A ``review_only`` signal (it missed the
    validation threshold narrowly) can only go to a review chat. Every skip says why.
    """
    if rules.kinds and kind not in rules.kinds:
        return RouteDecision("skip", f"kind {kind} not in {','.join(rules.kinds)}")
    if kind in MARKET_KINDS:
        skip = _market_filters(rules, strategy=strategy, symbol=symbol, risk_level=risk_level)
        if skip is not None:
            return skip
    else:
        if rules.chains and (chain or "") not in rules.chains:
            return RouteDecision("skip", f"chain {chain} not in {','.join(rules.chains)}")
        if rules.sources and (source or "") not in rules.sources:
            return RouteDecision("skip", f"source {source} not in {','.join(rules.sources)}")
    if review_only:
        if rules.has_review_chat:
            return RouteDecision("review", "just under the validation threshold")
        return RouteDecision("skip", "under the validation threshold and no review chat")
    if confidence >= rules.min_confidence:
        return RouteDecision("send")
    if rules.has_review_chat and confidence >= rules.min_confidence - rules.review_margin:
        return RouteDecision("review", f"confidence {confidence:.2f} just under {rules.min_confidence:.2f}")
    return RouteDecision("skip", f"confidence {confidence:.2f} < {rules.min_confidence:.2f}")


def _market_filters(rules: RoutingRules, *, strategy: str | None, symbol: str | None,
                    risk_level: str | None) -> RouteDecision | None:
    if rules.strategies and (strategy or "") not in rules.strategies:
        return RouteDecision("skip", f"strategy {strategy} not in {','.join(rules.strategies)}")
    muted = next((p for p in rules.muted_symbols if symbol_matches(symbol, p)), None)
    if muted is not None:
        return RouteDecision("skip", f"symbol {symbol} is muted ({muted})")
    if rules.symbols and not any(symbol_matches(symbol, p) for p in rules.symbols):
        return RouteDecision("skip", f"symbol {symbol} not in {','.join(rules.symbols)}")
    if rules.risk_levels and risk_level is not None and risk_level not in rules.risk_levels:
        return RouteDecision("skip", f"risk level {risk_level} not in {','.join(rules.risk_levels)}")
    return None


def signal_time(kind: str, payload: Mapping[str, Any], created_at: datetime) -> datetime:
    """The moment a signal came to exist, from which its age counts (UTC).

    A market signal exists from its trigger candle's close (``trigger_ts`` is the candle's open,
    so ``trigger_ts`` + the timeframe); a funding alert from its snapshot time ``ts``. Any other
    signal, or one whose payload lacks those fields, from ``created_at`` (when it was enqueued).

    Raises
    ------
    ValueError
        A ``trigger_ts``/``ts`` that is not ISO 8601 with a timezone, or an unknown timeframe.
    """
    if kind == "market" and payload.get("trigger_ts"):
        length = timedelta(milliseconds=timeframe_ms(str(payload.get("timeframe") or "")))
        return _aware(payload["trigger_ts"], "trigger_ts") + length
    if kind == "funding" and payload.get("ts"):
        return _aware(payload["ts"], "ts")
    return created_at


def signal_age_s(kind: str, payload: Mapping[str, Any], created_at: datetime, now: datetime) -> float:
    """Seconds from :func:`signal_time` to ``now`` (negative when ``now`` is earlier)."""
    return (now - signal_time(kind, payload, created_at)).total_seconds()


def _aware(value: Any, name: str) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        raise ValueError(f"{name} {value!r} has no timezone; expected ISO 8601 in UTC")
    return moment


def by_priority(names_and_priorities: Sequence[tuple[str, int]]) -> list[str]:
    """Publisher names, highest priority first (ties keep configuration order)."""
    order = sorted(enumerate(names_and_priorities), key=lambda item: (-item[1][1], item[0]))
    return [name for _, (name, _) in order]
