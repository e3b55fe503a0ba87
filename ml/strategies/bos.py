"""Break of structure (BOS): a close through the latest confirmed swing high (or low).

Definitions, per market (exchange, symbol), over its candles in ``ts`` order; ``i`` is a candle's
position among them and ``L`` is ``lookback``. A candle's figures are known at its close.

Swing high / low
    Candle ``j`` is a swing high when ``high[j]`` is the maximum of ``high[j-L .. j+L]`` (ties count:
    it is at least every other high of the window), with all ``2L + 1`` candles present; a swing
    low likewise with ``low`` and the minimum. A swing needs the ``L`` candles after it, so it is
    *confirmed* at the close of candle ``j + L`` and used only from that candle on: the swing level
    ``S[i]`` at candle ``i`` is the high (low) of the latest swing ``j`` with ``j + L <= i``.
Break
    BOS_UP at candle ``i``: ``close[i] > S_high[i]`` and no candle since the swing candle closed
    above that level, i.e. the first close through it (a level is broken once; a new swing must
    be confirmed before the next up-break). BOS_DOWN mirrors it with ``close[i] < S_low[i]``.
    Candles between a swing and its confirmation cannot close beyond it (their high is at most the
    swing high), so "first since confirmation" is "first since the swing".
Strength
    ``close / S_high`` for an up-break, ``S_low / close`` for a down-break; the break counts only
    when the strength is at least ``bos_strength_threshold`` (seed 1.006: 0.6 % beyond the level).
    A first close through the level that is too weak uses up that level.
Volume test
    ``volume_multiple = volume[i] / mean(volume[i-N .. i-1])``, the mean of the ``N =
    volume_window`` (default 20) candles before the trigger, or of all earlier candles when fewer
    exist (at least ``2L + 1`` do before any break). It must be at least ``min_volume_multiplier``;
    a zero baseline fails the test.
Body ratio
    ``|close - open| / (high - low)`` of the trigger candle, at least ``require_body_ratio`` and in
    the break's direction (``close > open`` up, ``close < open`` down); ``high == low`` fails.
History
    At least ``min_candles`` candles of the market up to and including the trigger. The swing
    definition alone needs ``2L + 2`` (8 with the seed lookback 3), so the seed ``min_candles`` of
    5 only binds for a larger value.
Confidence
    Each factor's excess over its threshold, scaled to ``[0, 1]`` and capped:
    ``u_strength = (strength - t) / (t - 1)`` (1 at twice the required distance beyond the level),
    ``u_volume = (multiple - m) / m`` (1 at twice the required volume) and
    ``u_body = (ratio - r) / (1 - r)`` (1 for a candle without wicks). The score is their mean,
    and ``confidence = confidence_min + score * (confidence_max - confidence_min)``: non-decreasing
    in each factor, ``confidence_min`` at the thresholds and ``confidence_max`` when all saturate.
Trade
    ``entry`` = the trigger close; ``stop = entry * (1 - stoploss_pct)`` long,
    ``entry * (1 + stoploss_pct)`` short; ``R = entry * stoploss_pct`` and one target at each of
    ``target_r_multiples`` R beyond the entry (default 1R and 2R); ``size = allocation_pct *
    leverage``; ``expires_at`` = the trigger candle's close + ``trade_time`` minutes.
Risk level
    ``high`` when the score is below 1/3 or ``leverage >= 3``; ``low`` when the score is at least
    2/3 and ``leverage == 1``; ``medium`` otherwise.
Cooldown
    :func:`ml.strategies.signal.apply_cooldown` with ``min_event_interval_minutes`` per (strategy,
    exchange, symbol, direction).

History a live scan needs: a candle's event depends only on its market's candles from ``L``
before the latest swing of each side confirmed before it, on the ``volume_window`` candles before
it, and on whether ``min_candles`` candles precede it; the volume mean adds the earlier volumes
one by one, newest first, so it is bit-identical however much more history or how many other
markets the frame holds. A scan over a recent buffer reaching that far back finds the events a
backtest over the full history finds (the cooldown then also needs the market's last kept signal).

No look-ahead: every figure at candle ``i`` reads candles ``<= i`` only (a swing at ``j`` is tested
on ``j - L .. j + L`` at candle ``i = j + L``, when that window has closed), and the cooldown
keeps a signal depending only on earlier signals, so changing candles after ``t`` changes no
signal triggered at or before ``t``.

Implementation: one compiled pass per market (:mod:`ml.strategies.bos_kernel`, numba, loaded on
first use); polars only frames the input and the output.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal, NoReturn, Self

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator, model_validator

from ml.marketdata.frames import CANDLE_SCHEMA
from ml.marketdata.timeframes import timeframe_ms
from ml.strategies.signal import Direction, MarketSignal, RiskLevel, apply_cooldown

STRATEGY = "bos"
MARKET = ("exchange", "symbol")
PRICES = ("open", "high", "low", "close")
EventFilter = Literal["BOS_UP", "BOS_DOWN", "BOTH"]


class BosConfig(BaseModel):
    """Parameters of :func:`detect_bos`, seed values as defaults (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Timeframe of the candles the strategy reads; the frame must hold exactly this one.
    interval: str = "1m"
    lookback: PositiveInt = Field(default=3, description="LOOKBACK: candles each side of a swing")
    min_candles: PositiveInt = Field(default=5, description="MIN_CANDLES of history")
    bos_strength_threshold: float = Field(default=1.006, gt=1.0,
                                          description="close / swing level needed (1.006 = 0.6 % beyond)")
    min_volume_multiplier: float = Field(default=1.3, gt=0.0,
                                         description="trigger volume / mean of the volume_window before it")
    #: Candles before the trigger whose mean volume is the volume baseline.
    volume_window: PositiveInt = Field(default=20, description="candles of the volume baseline")
    require_body_ratio: float = Field(default=0.6, ge=0.0, lt=1.0, description="|close-open|/(high-low)")
    min_event_interval_minutes: float = Field(default=2, ge=0, description="cooldown per (strategy, symbol, direction)")
    event_filter_type: EventFilter = Field(default="BOS_UP", description="BOS_UP, BOS_DOWN or BOTH")
    confidence_min: float = Field(default=0.45, ge=0.0, le=1.0)
    confidence_max: float = Field(default=0.80, ge=0.0, le=1.0)
    allocation_pct: float = Field(default=0.50, gt=0.0, le=1.0)
    stoploss_pct: float = Field(default=0.08, gt=0.0, lt=1.0)
    leverage: PositiveInt = 1
    #: Target distances in multiples of the stop distance R, nearest first.
    target_r_multiples: tuple[float, ...] = (1.0, 2.0)
    #: Minutes from the trigger candle's close to the signal's expiry (its maximum holding time).
    trade_time: PositiveInt = Field(default=90, description="TRADE_TIME: minutes to expiry")
    #: Seconds a signal may wait to be sent; enforced by the publisher, not here.
    max_signal_age: PositiveInt = 60

    @field_validator("interval")
    @classmethod
    def _known_interval(cls, value: str) -> str:
        timeframe_ms(value)
        return value

    @field_validator("target_r_multiples")
    @classmethod
    def _increasing_targets(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or any(r <= 0 for r in value) or list(value) != sorted(set(value)):
            raise ValueError(f"target_r_multiples must be positive and strictly increasing, got {value}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.confidence_min > self.confidence_max:
            raise ValueError("confidence_min must not exceed confidence_max")
        if self.allocation_pct * self.leverage > 10:
            raise ValueError("allocation_pct * leverage (the suggested size) must be at most 10")
        if self.target_r_multiples[-1] * self.stoploss_pct >= 1 and self.event_filter_type != "BOS_UP":
            raise ValueError("a short's farthest target would be at or below zero: lower stoploss_pct")
        return self


#: The seed system's parameters.
SEED_CONFIG = BosConfig()


def detect_bos(candles: pl.DataFrame, config: BosConfig = SEED_CONFIG) -> list[MarketSignal]:
    """Break-of-structure signals over a long frame of closed candles of many markets.

    Parameters
    ----------
    candles
        Columns of :data:`ml.marketdata.frames.CANDLE_SCHEMA` (``ts`` = candle open time, UTC), one
        timeframe equal to ``config.interval``, any row order, any number of (exchange, symbol).
        Candles of a market are taken as consecutive in ``ts`` order (gaps are not filled).
    config
        Strategy parameters.

    Returns
    -------
    list[MarketSignal]
        Signals after the cooldown, in trigger order; ``trigger_ts`` is the trigger candle's open
        time. Each depends only on candles up to and including its trigger candle.

    Raises
    ------
    ValueError
        For missing columns or a naive ``ts``; naming the market and row for a timeframe other than
        ``config.interval``, duplicate candles, or non-positive / missing prices or negative volume.
    """
    frame, starts, prices = _validated(candles, config)
    if frame.is_empty():
        return []
    events = _events(frame, starts, prices, config)
    step = timedelta(milliseconds=timeframe_ms(config.interval))
    signals = _signals(events, config, step)
    return apply_cooldown(signals, timedelta(minutes=config.min_event_interval_minutes))


def _validated(candles: pl.DataFrame, config: BosConfig) -> tuple[pl.DataFrame, np.ndarray, list[np.ndarray]]:
    """The candles in CANDLE_SCHEMA types sorted by (exchange, symbol, ts), the row offsets of its
    markets (``markets + 1`` entries, the last = the row count) and its open, high, low, close and
    volume as arrays; or ``ValueError``.

    Cheap checks decide whether the frame is valid: null counts are kept by the columns, the
    prices are checked in one compiled pass, and a frame in which each (exchange, symbol) is one
    run of rows with strictly increasing ``ts`` is neither sorted again nor searched for
    duplicates. Only a rejected frame runs :func:`_rejection`, which finds the first offending row
    to name it.
    """
    from ml.strategies.bos_kernel import strictly_increasing, valid_prices

    missing = [c for c in CANDLE_SCHEMA if c not in candles.columns]
    if missing:
        raise ValueError(f"candles lack the columns {missing}; expected {list(CANDLE_SCHEMA)}")
    if not isinstance(candles.schema["ts"], pl.Datetime) or candles.schema["ts"].time_zone is None:  # type: ignore[union-attr]
        raise ValueError(f"candles.ts must be a timezone-aware (UTC) datetime, got {candles.schema['ts']}")
    frame = candles.select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()])
    if frame.is_empty():
        return frame, np.zeros(1, np.int64), []
    prices = _arrays(frame)  # views of one-chunk columns, else one copy each
    foreign = frame.select((pl.col("timeframe") != config.interval).fill_null(True).any()).item()
    if foreign or any(frame.null_count().row(0)) or not valid_prices(*prices):
        _rejection(frame, config)
    markets, starts = _runs(frame)
    if len(set(markets)) == len(markets) and strictly_increasing(_epoch(frame), starts):
        return frame, starts, prices
    ordered = frame.sort(*MARKET, "ts")
    _, starts = _runs(ordered)
    if not strictly_increasing(_epoch(ordered), starts):  # sorted: only a duplicate candle is not increasing
        _rejection(frame, config)
    return ordered, starts, _arrays(ordered)


def _runs(frame: pl.DataFrame) -> tuple[list[tuple[str, str]], np.ndarray]:
    """The (exchange, symbol) of each run of equal markets, and the runs' row offsets plus the end."""
    runs = frame.select(pl.struct(*MARKET).rle()).unnest(pl.all()).unnest("value")
    starts = np.zeros(runs.height + 1, np.int64)
    np.cumsum(runs.get_column("len").to_numpy(), out=starts[1:])
    return list(runs.select(*MARKET).iter_rows()), starts


def _epoch(frame: pl.DataFrame) -> np.ndarray:
    return frame.get_column("ts").to_physical().to_numpy()


def _arrays(frame: pl.DataFrame) -> list[np.ndarray]:
    """open, high, low, close, volume as contiguous float64 arrays (views where possible)."""
    return [np.ascontiguousarray(frame.get_column(c).to_numpy(), dtype=np.float64) for c in (*PRICES, "volume")]


def _bad_prices() -> pl.Expr:
    return pl.any_horizontal([(pl.col(c) > 0).not_().fill_null(True) | pl.col(c).is_nan() for c in PRICES])


def _bad_volume() -> pl.Expr:
    return (pl.col("volume") < 0).fill_null(True) | pl.col("volume").is_nan()


def _rejection(frame: pl.DataFrame, config: BosConfig) -> NoReturn:
    """Raise ``ValueError`` naming the first offending market and row of an invalid ``frame``."""
    rows = frame.with_row_index("row")
    foreign = rows.filter((pl.col("timeframe") != config.interval).fill_null(True))
    if foreign.height:
        bad = foreign.row(0, named=True)
        raise ValueError(f"{bad['symbol']} row {bad['row']}: timeframe {bad['timeframe']!r}, but the strategy "
                         f"runs on {config.interval!r} and takes one timeframe at a time")
    keys = [pl.col(c).is_null() for c in ("exchange", "symbol", "ts")]
    unnamed = rows.filter(pl.any_horizontal(keys))
    if unnamed.height:
        raise ValueError(f"row {unnamed.item(0, 'row')}: exchange, symbol and ts must not be missing")
    duplicated = rows.filter(pl.struct("exchange", "symbol", "ts").is_duplicated())
    if duplicated.height:
        bad = duplicated.row(0, named=True)
        raise ValueError(f"{bad['exchange']} {bad['symbol']} row {bad['row']}: duplicate candle at {bad['ts']}")
    broken = rows.filter(_bad_prices() | _bad_volume())
    if broken.height:
        bad = broken.row(0, named=True)
        raise ValueError(f"{bad['exchange']} {bad['symbol']} row {bad['row']} ({bad['ts']}): prices must be "
                         f"positive and volume non-negative, got {[bad[c] for c in (*PRICES, 'volume')]}")
    raise AssertionError("_rejection called on a valid frame")  # pragma: no cover


#: An event before the cooldown: exchange, symbol, trigger ts, close, direction, swing level,
#: strength, volume multiple, body ratio.
Event = tuple[str, str, datetime, float, Direction, float, float, float, float]


def _events(frame: pl.DataFrame, starts: np.ndarray, prices: list[np.ndarray], config: BosConfig) -> list[Event]:
    """One event per trigger candle passing every filter (before the cooldown), with its factors.

    ``frame`` is valid and sorted by (exchange, symbol, ts), its markets start at ``starts``,
    ``prices`` are its open, high, low, close and volume; the rules run in :func:`ml.strategies.bos_kernel.bos_events` (numba, imported here: loading the
    code location must not import it).
    """
    from ml.strategies.bos_kernel import LONG, bos_events

    directions = {"BOS_UP": ("long",), "BOS_DOWN": ("short",), "BOTH": ("long", "short")}[config.event_filter_type]
    rows, sides, levels, strengths, multiples, bodies = bos_events(
        starts, *prices,
        config.lookback, config.volume_window, config.min_candles, config.bos_strength_threshold,
        config.min_volume_multiplier, config.require_body_ratio, "long" in directions, "short" in directions)
    triggers = frame.select(*MARKET, "ts").gather(rows).rows()
    return [
        (exchange, symbol, ts, close, "long" if side == LONG else "short", level, strength, multiple, body)
        for (exchange, symbol, ts), close, side, level, strength, multiple, body in zip(
            triggers, prices[3][rows].tolist(), sides.tolist(), levels.tolist(), strengths.tolist(),
            multiples.tolist(), bodies.tolist(), strict=True)
    ]


def confidence_score(strength: float, volume_multiple: float, body_ratio: float, config: BosConfig) -> float:
    """Mean of the three capped, scaled excesses over their thresholds, in [0, 1] (per row in
    Python: a vectorised mean may round differently with the frame's length)."""
    threshold, multiplier, body = config.bos_strength_threshold, config.min_volume_multiplier, config.require_body_ratio
    units = (
        (strength - threshold) / (threshold - 1),
        (volume_multiple - multiplier) / multiplier,
        (body_ratio - body) / (1 - body),
    )
    return sum(min(1.0, max(0.0, u)) for u in units) / len(units)


def risk_level(score: float, leverage: int) -> RiskLevel:
    """``high`` below a third of the score range or at leverage 3+, ``low`` from two thirds at
    leverage 1, ``medium`` otherwise."""
    if score < 1 / 3 or leverage >= 3:
        return "high"
    if score >= 2 / 3 and leverage == 1:
        return "low"
    return "medium"


def _signals(events: list[Event], config: BosConfig, step: timedelta) -> list[MarketSignal]:
    size = config.allocation_pct * config.leverage
    expiry = timedelta(minutes=config.trade_time)
    signals = []
    for exchange, symbol, trigger_ts, close, direction, level, strength, volume_multiple, body_ratio in events:
        sign = 1.0 if direction == "long" else -1.0
        entry = close
        risk = entry * config.stoploss_pct
        score = confidence_score(strength, volume_multiple, body_ratio, config)
        signals.append(MarketSignal(
            strategy=STRATEGY, exchange=exchange, symbol=symbol, timeframe=config.interval,
            direction=direction, trigger_ts=trigger_ts,
            entry=entry, stop=entry - sign * risk,
            targets=tuple(entry + sign * r * risk for r in config.target_r_multiples),
            confidence=config.confidence_min + score * (config.confidence_max - config.confidence_min),
            risk_level=risk_level(score, config.leverage),
            size=size,
            expires_at=trigger_ts + step + expiry,
            factors={"event": "BOS_UP" if direction == "long" else "BOS_DOWN", "swing_level": level,
                     "strength": strength, "volume_multiple": volume_multiple, "body_ratio": body_ratio,
                     "score": score},
        ))
    return signals
