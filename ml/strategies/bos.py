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
it, and on whether ``min_candles`` candles precede it; the volume mean is summed element-wise, so
it is bit-identical however much more history or how many other markets the frame holds. A scan
over a recent buffer reaching that far back finds the events a backtest over the full history
finds (the cooldown then also needs the market's last kept signal).

No look-ahead: every figure at candle ``i`` reads candles ``<= i`` only (swing flags look ``L``
candles ahead of the swing candle but are shifted ``L`` candles later before use), and the cooldown
keeps a signal depending only on earlier signals, so changing candles after ``t`` changes no
signal triggered at or before ``t``.
"""

from __future__ import annotations

import operator
from datetime import timedelta
from functools import reduce
from typing import Literal, Self

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
    lookback: PositiveInt = 3
    min_candles: PositiveInt = 5
    bos_strength_threshold: float = Field(default=1.006, gt=1.0)
    min_volume_multiplier: float = Field(default=1.3, gt=0.0)
    #: Candles before the trigger whose mean volume is the volume baseline.
    volume_window: PositiveInt = 20
    require_body_ratio: float = Field(default=0.6, ge=0.0, lt=1.0)
    min_event_interval_minutes: float = Field(default=2, ge=0)
    event_filter_type: EventFilter = "BOS_UP"
    confidence_min: float = Field(default=0.45, ge=0.0, le=1.0)
    confidence_max: float = Field(default=0.80, ge=0.0, le=1.0)
    allocation_pct: float = Field(default=0.50, gt=0.0, le=1.0)
    stoploss_pct: float = Field(default=0.08, gt=0.0, lt=1.0)
    leverage: PositiveInt = 1
    #: Target distances in multiples of the stop distance R, nearest first.
    target_r_multiples: tuple[float, ...] = (1.0, 2.0)
    #: Minutes from the trigger candle's close to the signal's expiry (its maximum holding time).
    trade_time: PositiveInt = 90
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
    frame = _validated(candles, config)
    if frame.is_empty():
        return []
    events = _events(frame, config)
    step = timedelta(milliseconds=timeframe_ms(config.interval))
    signals = [_signal(row, config, step) for row in events.iter_rows(named=True)]
    return apply_cooldown(signals, timedelta(minutes=config.min_event_interval_minutes))


def _validated(candles: pl.DataFrame, config: BosConfig) -> pl.DataFrame:
    missing = [c for c in CANDLE_SCHEMA if c not in candles.columns]
    if missing:
        raise ValueError(f"candles lack the columns {missing}; expected {list(CANDLE_SCHEMA)}")
    if not isinstance(candles.schema["ts"], pl.Datetime) or candles.schema["ts"].time_zone is None:  # type: ignore[union-attr]
        raise ValueError(f"candles.ts must be a timezone-aware (UTC) datetime, got {candles.schema['ts']}")
    frame = candles.select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()])
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
    invalid = pl.any_horizontal([(pl.col(c) > 0).not_().fill_null(True) | pl.col(c).is_nan() for c in PRICES])
    bad_volume = (pl.col("volume") < 0).fill_null(True) | pl.col("volume").is_nan()
    broken = rows.filter(invalid | bad_volume)
    if broken.height:
        bad = broken.row(0, named=True)
        raise ValueError(f"{bad['exchange']} {bad['symbol']} row {bad['row']} ({bad['ts']}): prices must be "
                         f"positive and volume non-negative, got {[bad[c] for c in (*PRICES, 'volume')]}")
    return frame.sort(*MARKET, "ts")


def _confirmed_swing(price: str, lookback: int, *, high: bool) -> pl.Expr:
    """At the candle confirming a swing (``lookback`` candles after it), that swing's level;
    null elsewhere. Reads candles up to the current one only."""
    neighbours = [pl.col(price).shift(k) for k in range(-lookback, lookback + 1) if k]
    extreme = pl.all_horizontal([pl.col(price) >= n if high else pl.col(price) <= n for n in neighbours])
    position, count = pl.int_range(pl.len()), pl.len()
    complete = (position >= lookback) & (position < count - lookback)
    swing = pl.when(complete & extreme).then(pl.col(price))
    return swing.shift(lookback)


def _events(frame: pl.DataFrame, config: BosConfig) -> pl.DataFrame:
    """One row per trigger candle passing every filter (before the cooldown), with its factors."""
    lookback = config.lookback
    # A left fold of element-wise additions, not a rolling or horizontal sum (whose rounding varies
    # with the frame's layout): a candle's baseline is then bit-identical whatever else the frame
    # holds, so a live buffer, a backtest and one market alone agree.
    earlier = [pl.col("volume").shift(k) for k in range(1, config.volume_window + 1)]
    total = reduce(operator.add, [v.fill_null(0.0) for v in earlier])
    count = reduce(operator.add, [v.is_not_null().cast(pl.Int64) for v in earlier])
    baseline = total / count
    enriched = frame.with_columns(
        _confirmed_swing("high", lookback, high=True).over(MARKET).alias("new_swing_high"),
        _confirmed_swing("low", lookback, high=False).over(MARKET).alias("new_swing_low"),
        (pl.int_range(pl.len()) + 1).over(MARKET).alias("history"),
        pl.when(baseline.over(MARKET) > 0).then(pl.col("volume") / baseline.over(MARKET)).alias("volume_multiple"),
        pl.when(pl.col("high") > pl.col("low"))
        .then((pl.col("close") - pl.col("open")) / (pl.col("high") - pl.col("low"))).alias("signed_body"),
    )
    # Each confirmed swing starts a segment; within it only the first close beyond its level breaks it.
    enriched = enriched.with_columns(
        pl.col(f"new_{level}").forward_fill().over(MARKET).alias(level) for level in ("swing_high", "swing_low")
    ).with_columns(
        pl.col(f"new_{level}").is_not_null().cum_sum().over(MARKET).alias(segment)
        for level, segment in (("swing_high", "up_segment"), ("swing_low", "down_segment"))
    ).with_columns(
        (pl.col("close") > pl.col("swing_high")).fill_null(False).alias("above"),
        (pl.col("close") < pl.col("swing_low")).fill_null(False).alias("below"),
    )
    directions = {"BOS_UP": ("long",), "BOS_DOWN": ("short",), "BOTH": ("long", "short")}[config.event_filter_type]
    parts = []
    for direction in directions:
        long = direction == "long"
        level, beyond, segment = ("swing_high", "above", "up_segment") if long else ("swing_low", "below",
                                                                                       "down_segment")
        first_beyond = pl.col(beyond) & (pl.col(beyond).cast(pl.Int64).cum_sum().over(*MARKET, segment) == 1)
        strength = pl.col("close") / pl.col(level) if long else pl.col(level) / pl.col("close")
        body = pl.col("signed_body") if long else -pl.col("signed_body")
        parts.append(
            enriched.with_columns(
                pl.lit(direction).alias("direction"), pl.col(level).alias("swing_level"),
                strength.alias("strength"), body.alias("body_ratio"),
            ).filter(
                first_beyond,
                pl.col("strength") >= config.bos_strength_threshold,
                (pl.col("volume_multiple") >= config.min_volume_multiplier).fill_null(False),
                (pl.col("body_ratio") >= config.require_body_ratio).fill_null(False),
                pl.col("body_ratio") > 0,
                pl.col("history") >= config.min_candles,
            )
        )
    events = pl.concat(parts).select(*MARKET, "timeframe", "ts", "close", "direction", "swing_level",
                                     "strength", "volume_multiple", "body_ratio")
    return events.sort("ts", *MARKET, "direction")


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


def _signal(row: dict[str, object], config: BosConfig, step: timedelta) -> MarketSignal:
    direction: Direction = row["direction"]  # type: ignore[assignment]
    sign = 1.0 if direction == "long" else -1.0
    entry = float(row["close"])  # type: ignore[arg-type]
    risk = entry * config.stoploss_pct
    strength, volume_multiple, body_ratio = (float(row[c]) for c in ("strength", "volume_multiple", "body_ratio"))  # type: ignore[arg-type]
    score = confidence_score(strength, volume_multiple, body_ratio, config)
    trigger_ts = row["ts"]
    return MarketSignal(
        strategy=STRATEGY, exchange=str(row["exchange"]), symbol=str(row["symbol"]), timeframe=config.interval,
        direction=direction, trigger_ts=trigger_ts,  # type: ignore[arg-type]
        entry=entry, stop=entry - sign * risk,
        targets=tuple(entry + sign * r * risk for r in config.target_r_multiples),
        confidence=config.confidence_min + score * (config.confidence_max - config.confidence_min),
        risk_level=risk_level(score, config.leverage),
        size=config.allocation_pct * config.leverage,
        expires_at=trigger_ts + step + timedelta(minutes=config.trade_time),  # type: ignore[operator]
        factors={"event": "BOS_UP" if direction == "long" else "BOS_DOWN",
                 "swing_level": float(row["swing_level"]),  # type: ignore[arg-type]
                 "strength": strength, "volume_multiple": volume_multiple, "body_ratio": body_ratio, "score": score},
    )

