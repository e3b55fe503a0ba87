"""The pure measurement code of the candle-to-chat latency benchmark (:mod:`benchmarks.latency`).

Matching what the loopback Telegram stand-in received to the signals the outbox stored, the feed's
per-minute store times read from its log, the run that enqueued each signal, and percentiles. No
I/O and no clock here: every time is an epoch second (UTC) measured elsewhere, at its point of
measurement (the stand-in's receive time, the feed's own "s after the close", the run records).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

#: BOS parameters of the benchmark's runs (seed: strength 1.006, volume 1.3x, body 0.6, BOS_UP only):
#: about 5.6 signals a minute over 500 simulated symbols instead of about 0.35.
LOOSE_BOS: dict[str, object] = {"bos_strength_threshold": 1.002, "min_volume_multiplier": 1.0,
                                "require_body_ratio": 0.5, "event_filter_type": "BOTH"}

TIMEFRAMES = {"1m": timedelta(minutes=1), "5m": timedelta(minutes=5), "15m": timedelta(minutes=15),
              "1h": timedelta(hours=1)}

#: The market template's lines that identify a signal (resources/publishers/messages.py):
#: "🟢 LONG BTC/USDT · sim · 1m", "... · Strategy bos", "Trigger candle 2026-03-02 09:28 UTC · ...".
_HEAD = re.compile(r"\b(LONG|SHORT) (\S+) · (\S+) · (\w+)")
_STRATEGY = re.compile(r"Strategy (\w+)")
_TRIGGER = re.compile(r"Trigger candle (\d{4}-\d\d-\d\d \d\d:\d\d) UTC")
#: The feed's line per closed minute (streaming/candles/exchange_feed.py, ExchangeFeed.cycle).
_FEED_MINUTE = re.compile(r"(\S+): minute (\d\d:\d\d) closed(?: \(repairing from [^)]*\))?: (\d+) candles stored "
                          r"for (\d+) of (\d+) symbols, ([\d.]+) s after the close")


@dataclass(frozen=True, order=True)
class SignalKey:
    """What identifies a market signal in a message and in the outbox (trigger = candle open, UTC)."""

    strategy: str
    exchange: str
    symbol: str
    direction: str
    timeframe: str
    trigger: datetime

    @property
    def close(self) -> datetime:
        """The trigger candle's close: its open plus its timeframe."""
        return self.trigger + TIMEFRAMES[self.timeframe]


@dataclass(frozen=True)
class StoredSignal:
    """An outbox row of kind ``market``: its key, when its run stamped it, and its outbox status."""

    key: SignalKey
    created_at: float
    status: str


@dataclass(frozen=True)
class RunTimes:
    """One ``market_signals_job`` run's record: created (requested by the sensor), started, ended."""

    run_id: str
    created: float
    started: float | None
    ended: float | None


@dataclass(frozen=True)
class Latency:
    """One received message, from its trigger candle's close to the stand-in's receipt (seconds).

    ``stored``, ``created`` and ``started`` are absolute epoch seconds (None when not known), so
    the parts are differences of measured times and add up to ``total``.
    """

    key: SignalKey
    received: float
    stored: float | None
    created: float | None
    started: float | None

    @property
    def total(self) -> float:
        return self.received - self.key.close.timestamp()


def message_key(text: str) -> SignalKey | None:
    """The key of a market-signal message (plain text as Telegram shows it); None for anything else."""
    head, strategy, trigger = _HEAD.search(text), _STRATEGY.search(text), _TRIGGER.search(text)
    if head is None or strategy is None or trigger is None or head.group(4) not in TIMEFRAMES:
        return None
    return SignalKey(strategy=strategy.group(1), exchange=head.group(3), symbol=head.group(2),
                     direction=head.group(1).lower(), timeframe=head.group(4),
                     trigger=datetime.strptime(trigger.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=UTC))


def origin_key(origin: str, timeframe: str) -> SignalKey:
    """The key of an outbox origin ``strategy|exchange|symbol|direction|trigger_iso`` (assets/market_signals.py).

    Raises ValueError for an origin of another shape.
    """
    parts = origin.split("|")
    if len(parts) != 5:
        raise ValueError(f"market origin {origin!r} is not strategy|exchange|symbol|direction|trigger")
    strategy, exchange, symbol, direction, trigger = parts
    moment = datetime.fromisoformat(trigger)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return SignalKey(strategy, exchange, symbol, direction, timeframe, moment)


def feed_store_lags(log_lines: Iterable[str]) -> dict[tuple[str, str], float]:
    """``(exchange, "HH:MM" of the candle's open)`` -> seconds from that minute's close to its candles stored.

    From the feed's own line per cycle (its wall clock after the write). A minute logged twice keeps
    its first (the one that stored it as it closed).
    """
    lags: dict[tuple[str, str], float] = {}
    for line in log_lines:
        match = _FEED_MINUTE.search(line)
        if match:
            lags.setdefault((match.group(1), match.group(2)), float(match.group(6)))
    return lags


def enqueuing_run(created_at: float, runs: Sequence[RunTimes]) -> RunTimes | None:
    """The run whose op stamped ``created_at``: the latest-started run with start <= it <= end."""
    candidates = [r for r in runs if r.started is not None and r.started <= created_at
                  and (r.ended is None or created_at <= r.ended)]
    return max(candidates, key=lambda r: r.started or 0.0, default=None)


@dataclass(frozen=True)
class Matched:
    latencies: list[Latency]
    duplicates: int  # messages for a key already received
    unknown: int  # market messages with no stored signal


def match_messages(messages: Iterable[tuple[str, float]], stored: Mapping[SignalKey, StoredSignal],
                   runs: Sequence[RunTimes], store_lags: Mapping[tuple[str, str], float]) -> Matched:
    """Pair each received ``(plain_text, receive_time)`` with its stored signal, its run and its candle's store time.

    Messages that are not market signals are ignored; the first message per key counts.
    """
    seen: set[SignalKey] = set()
    latencies, duplicates, unknown = [], 0, 0
    for text, received in messages:
        key = message_key(text)
        if key is None:
            continue
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        row = stored.get(key)
        if row is None:
            unknown += 1
            continue
        run = enqueuing_run(row.created_at, runs)
        lag = store_lags.get((key.exchange, f"{key.trigger:%H:%M}")) if key.timeframe == "1m" else None
        latencies.append(Latency(key=key, received=received,
                                 stored=None if lag is None else key.close.timestamp() + lag,
                                 created=None if run is None else run.created,
                                 started=None if run is None else run.started))
    return Matched(latencies, duplicates, unknown)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: the smallest value with at least ``q`` of the values at or below it.

    ``q`` in (0, 1]; raises ValueError on an empty sequence or q outside that range.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 < q <= 1:
        raise ValueError(f"q must be in (0, 1], got {q}")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def stages(latencies: Sequence[Latency]) -> dict[str, list[float]]:
    """Per stage, the seconds of each message where both ends are known.

    close -> stored (the feed), stored -> run created (the sensor's wait and tick), created ->
    started (the run's launch), started -> the first message its run delivered (scan, outbox,
    publish), then the wait behind that run's earlier messages (Telegram's one message a second
    per chat, which the publisher keeps and the stand-in enforces).
    """
    parts: dict[str, list[float]] = {"close -> stored": [], "stored -> run created": [],
                                      "run created -> started": [], "run started -> 1st message": [],
                                      "behind earlier messages": []}
    first: dict[float, float] = {}
    for item in latencies:
        if item.started is not None:
            first[item.started] = min(first.get(item.started, item.received), item.received)
    for item in latencies:
        close = item.key.close.timestamp()
        if item.stored is not None:
            parts["close -> stored"].append(item.stored - close)
            if item.created is not None:
                parts["stored -> run created"].append(item.created - item.stored)
        if item.created is not None and item.started is not None:
            parts["run created -> started"].append(item.started - item.created)
        if item.started is not None:
            parts["run started -> 1st message"].append(first[item.started] - item.started)
            parts["behind earlier messages"].append(item.received - first[item.started])
    return parts
