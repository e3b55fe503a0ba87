"""One scan of the market strategies over a set of markets: the code the live path and backtests share.

:func:`scan_markets` runs break of structure on 1m candles, the EMA crossover on 15m candles with
1h confirmation, and the funding-rate alerts, and returns the signals that are *new*: those whose
trigger candle closed after the market's ``since`` (the close of the last candle an earlier scan
handled). The live path passes a recent buffer of candles and ``since`` per market; a backtest
passes the whole history and no ``since``, and gets the same signals (see "Look-back").

Cooldown across scans
    The strategies' own cooldown only sees the signals of one call. Here they run with a cooldown of
    zero and the cooldown is applied afterwards, per key (strategy, exchange, symbol, direction),
    seeded with the trigger time of the key's last signal *kept by earlier scans* (``kept``: what
    the outbox holds). A scan of ``(since, now]`` after scans of everything before ``since`` then
    keeps exactly the signals one scan of the whole history keeps (greedy cooldown in trigger order
    depends only on the previous kept signal), and re-scanning a window keeps the same ones.

Bad input
    The strategies raise ``ValueError`` for a whole batch when one market's candles are bad. The
    batch is tried first; when it raises, each market is scanned alone and a market that still
    raises is reported in ``errors`` (market -> message) while the others' signals are returned.
    Each market's signals are the ones it gets alone, so the fallback changes no result.

Look-back
    A signal depends only on its market's candles up to its trigger (no look-ahead). BOS reads a
    bounded history (the latest swings, the volume window), so a buffer of :data:`BOS_LOOKBACK`
    1m candles before ``since`` reproduces the full-history result exactly unless a market made no
    swing in that time. The EMA crossover's indicators are recursive filters seeded at the first
    candle given; :data:`EMA_LOOKBACK` 15m and :data:`EMA_LOOKBACK_1H` 1h candles before ``since``
    bring the seed's influence below 1e-12 relative for the default periods (Wilder smoothing 14
    chained in the 15m ADX is the slowest; the 1h checks use no ADX), so a decision can differ from
    the full history only at an exact tie.

No look-ahead: every step above reads candles up to the trigger and kept signals before it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

import polars as pl

from ml.marketdata.resample import resample
from ml.marketdata.timeframes import timeframe_ms
from ml.strategies.bos import BosConfig, detect_bos
from ml.strategies.ema_cross import EmaCrossConfig, detect_ema_cross
from ml.strategies.funding import FundingAlert, detect_funding_extremes
from ml.strategies.signal import MarketSignal, apply_cooldown

logger = logging.getLogger(__name__)
T = TypeVar("T")

Market = tuple[str, str]
SignalKey = tuple[str, str, str, str]
#: 1m candles before ``since`` a live BOS scan reads (4 h).
BOS_LOOKBACK = 240
#: 15m candles before ``since`` a live EMA-crossover scan reads (ADX: two chained Wilder filters).
EMA_LOOKBACK = 800
#: 1h candles before ``since`` it reads for the confirmation (EMA 21, RSI 14, volume SMA: no ADX).
EMA_LOOKBACK_1H = 400


@dataclass(frozen=True)
class ScanResult:
    """New signals (trigger order, after the cooldown), funding alerts, and markets that failed."""

    signals: list[MarketSignal] = field(default_factory=list)
    alerts: list[FundingAlert] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def market_name(market: Market) -> str:
    return f"{market[0]} {market[1]}"


def scan_markets(
    *,
    candles_1m: pl.DataFrame,
    candles_15m: pl.DataFrame,
    candles_1h: pl.DataFrame,
    derivatives: pl.DataFrame | None = None,
    since: Mapping[Market, datetime] | None = None,
    kept: Iterable[tuple[SignalKey, datetime]] = (),
    bos: BosConfig | None = None,
    ema_cross: EmaCrossConfig | None = None,
    funding_threshold: float | None = None,
) -> ScanResult:
    """Run the enabled strategies over the markets of the frames and return what is new.

    Parameters
    ----------
    candles_1m, candles_15m, candles_1h
        Closed candles (:data:`~ml.marketdata.frames.CANDLE_SCHEMA`, ``ts`` = open time, UTC) of
        the markets to scan; BOS reads the 1m frame, the EMA crossover the 15m and 1h frames.
    derivatives
        Derivatives snapshots for the funding alerts (``None``: no alerts).
    since
        Per (exchange, symbol): the close time (UTC) of the last candle earlier scans handled; only
        signals whose trigger candle closes after it are returned. A market not listed (or
        ``since=None``): every signal. Funding alerts are not filtered (their key makes them unique).
    kept
        ``((strategy, exchange, symbol, direction), trigger_ts)`` of signals kept by earlier scans;
        for each key the latest one whose trigger closed at or before the market's ``since``
        seeds the cooldown.
    bos, ema_cross, funding_threshold
        The strategies' parameters; ``None`` turns a strategy off.

    Returns
    -------
    ScanResult
        Signals of every strategy in trigger order (cooldown per key applied), the funding alerts,
        and ``errors``: one message per market whose input was rejected (the others are scanned).
    """
    since = since or {}
    errors: dict[str, str] = {}
    signals: list[MarketSignal] = []
    if bos is not None:
        raw = _per_market(lambda frames: detect_bos(frames[0], bos.model_copy(update={"min_event_interval_minutes": 0})),
                          [candles_1m], errors, "bos")
        signals += _cooled(_new(raw, since), kept, since, timedelta(minutes=bos.min_event_interval_minutes))
    if ema_cross is not None:
        config = ema_cross.model_copy(update={"cooldown_minutes": 0})
        raw = _per_market(lambda frames: detect_ema_cross(frames[0], frames[1], config),
                          [candles_15m, candles_1h], errors, "ema_cross")
        signals += _cooled(_new(raw, since), kept, since, timedelta(minutes=ema_cross.cooldown_minutes))
    alerts: list[FundingAlert] = []
    if funding_threshold is not None and derivatives is not None and derivatives.height:
        alerts = _per_market(lambda frames: detect_funding_extremes(frames[0], funding_threshold),
                             [derivatives], errors, "funding")
    signals.sort(key=lambda s: (s.trigger_ts, s.key))
    return ScanResult(signals=signals, alerts=sorted(alerts, key=lambda a: (a.ts, a.key)), errors=errors)


def closes_quarter(since: datetime | None, latest_close: datetime) -> bool:
    """Whether a 15m candle closes in ``(since, latest_close]`` (``since`` None: always), i.e.
    whether an EMA-crossover scan of a market can find anything new; the live path skips it otherwise."""
    if since is None:
        return True
    step = timedelta(minutes=15)
    epoch = datetime(1970, 1, 1, tzinfo=latest_close.tzinfo)
    boundary = latest_close - (latest_close - epoch) % step
    return boundary > since


def closes_at(signal: MarketSignal) -> datetime:
    """Close time of a signal's trigger candle."""
    return signal.trigger_ts + timedelta(milliseconds=timeframe_ms(signal.timeframe))


def _new(signals: Sequence[MarketSignal], since: Mapping[Market, datetime]) -> list[MarketSignal]:
    return [s for s in signals if (bound := since.get((s.exchange, s.symbol))) is None or closes_at(s) > bound]


def _cooled(signals: Sequence[MarketSignal], kept: Iterable[tuple[SignalKey, datetime]],
            since: Mapping[Market, datetime], cooldown: timedelta) -> list[MarketSignal]:
    """Greedy cooldown in trigger order, each key seeded with its last kept trigger before the window."""
    step = {s.key: timedelta(milliseconds=timeframe_ms(s.timeframe)) for s in signals}
    last: dict[SignalKey, datetime] = {}
    for key, trigger in kept:
        bound, length = since.get((key[1], key[2])), step.get(key)
        if length is None or bound is None or trigger + length > bound:
            continue
        if key not in last or trigger > last[key]:
            last[key] = trigger
    return apply_cooldown(signals, cooldown, last_kept=last)


def _per_market(run: Callable[[list[pl.DataFrame]], list[T]], frames: list[pl.DataFrame],
                   errors: dict[str, str], strategy: str) -> list[T]:
    """``run`` on all markets at once; on ``ValueError``, on each market alone, recording failures."""
    try:
        return run(frames)
    except ValueError as batch_error:
        logger.info("%s: batch rejected (%s); scanning each market alone", strategy, batch_error)
    markets = sorted(set().union(*(_markets(frame) for frame in frames)))
    results: list[T] = []
    for exchange, symbol in markets:
        alone = [frame.filter((pl.col("exchange") == exchange) & (pl.col("symbol") == symbol)) for frame in frames]
        try:
            results += run(alone)
        except ValueError as error:
            name = market_name((exchange, symbol))
            errors[name] = f"{strategy}: {error}" if name not in errors else f"{errors[name]}; {strategy}: {error}"
            logger.warning("%s %s: input rejected, market skipped: %s", strategy, name, error)
    return results


def _markets(frame: pl.DataFrame) -> set[Market]:
    if not {"exchange", "symbol"} <= set(frame.columns) or frame.is_empty():
        return set()
    return {(e, s) for e, s in frame.select("exchange", "symbol").unique().iter_rows()
            if e is not None and s is not None}


def complete_hours(candles_1h: pl.DataFrame, candles_1m: pl.DataFrame, *, now: datetime) -> pl.DataFrame:
    """Stored 1h candles, completed with the 1h buckets built from 1m candles where none is stored.

    The 1h schedule stores an hour a few minutes after it closes; a 15m trigger at the hour needs
    that hour's candle for its confirmation. A complete bucket of 60 stored 1m candles stands in
    for it until the exchange's own 1h candle is stored (on the simulated market they are equal;
    on an exchange the 1h candle aggregates the same trades). Sorted by (exchange, symbol, ts).
    """
    built, _ = resample(candles_1m.filter(pl.col("timeframe") == "1m"), "1h", now=now, source="1m")
    if built.is_empty():
        return candles_1h.sort("exchange", "symbol", "ts")
    missing = built.join(candles_1h.select("exchange", "symbol", "ts"), on=["exchange", "symbol", "ts"], how="anti")
    return pl.concat([candles_1h.select(built.columns).cast(dict(built.schema)), missing]).sort(
        "exchange", "symbol", "ts")
