"""EMA-crossover scalper: a 15m EMA cross confirmed on 15m and on the last closed 1h candle.

Rules, for a 15m candle ``t`` of one ``(exchange, symbol)`` (the *trigger*; long side, short mirrors):

1. **Cross**: EMA ``fast_ema`` closes above EMA ``slow_ema`` at ``t`` and was at or below it at
   ``t - 1`` (the engine's ``ema_{f}_{s}_cross_up``; TA-Lib EMAs seeded from the symbol's first
   candle given).
2. **Volume**: ``volume_t >= volume_multiplier * SMA(volume, volume_window)_t`` (the average
   includes ``t``, as the engine's ``volume_sma_ratio``); default 1.10 x the 20-candle mean.
3. **RSI confluence**: ``RSI(rsi_period)_t > rsi_long_min`` (55); short: ``< rsi_short_max`` (45).
4. **Trend strength**: ``ADX(adx_period)_t >= adx_min`` (20).
5. **1h confirmation** on the latest 1h candle that has *closed* at or before ``t``'s close
   (``open_1h + 1h <= open_t + 15m``), at least ``min_htf_confirmations`` (2) of 4 checks:

   * trend alignment: 1h EMA ``fast_ema`` above 1h EMA ``slow_ema``;
   * volume: 1h ``volume / SMA(volume, volume_window) >= htf_volume_ratio_min`` (1.0);
   * momentum: 1h ``RSI(rsi_period) > 50``;
   * price structure: the 1h close lies above the midpoint of the 1h swing range (highest high and
     lowest low of the last ``htf_structure_candles`` (12) 1h candles, the used one included).

   Only that latest 1h candle counts: when it is missing (a gap in the 1h data, none closed
   yet) no older one stands in, and every check fails; a check whose value is missing (1h
   warm-up) does not pass.
6. **Levels and room**: resistance = highest high, support = lowest low of the
   ``sr_lookback`` (48, i.e. 12 h) 15m candles *before* ``t``. Entry = close of ``t``;
   ``R = stop_atr_multiple * ATR(atr_period)_t`` (1.5 ATR); stop = entry - R; targets =
   entry + ``target_r_multiples`` x R (1R, 2R). When the resistance lies above the entry it
   limits the targets: a resistance closer than ``min_room_r`` x R (1R) suppresses the signal (no
   room to the first target); one inside the target ladder replaces the targets beyond it (the
   targets below it are kept, the level becomes the last target). The short side uses the support.

Risk level (``atr_pct = 100 * ATR_t / entry``, the 15m ATR in percent of the price): one point
for ``atr_pct >= risk_atr_pct_medium`` (0.5), one more for ``atr_pct >= risk_atr_pct_high`` (1.0),
one for having only the minimum number of 1h confirmations; 0 points = low, 1 = medium,
2 or more = high.

Confidence: ``0.30 + 0.10 * confirmations (of 4) + 0.15 * clip((ADX - adx_min) / 25, 0, 1)
+ 0.10 * clip(volume_ratio / volume_multiplier - 1, 0, 1)``: 0.30 to 0.95, from 0.50 with the
default minimum of 2 confirmations.

Size = ``allocation * leverage``. The signal expires ``expiry_minutes`` after the trigger
candle's close. Signals of one key within ``cooldown_minutes`` of the last kept one are dropped
(:func:`~ml.strategies.signal.apply_cooldown`).

No look-ahead: every figure at ``t`` comes from 15m candles up to ``t`` and 1h candles closed by
``t``'s close; the indicators are the engine's (each value from the candles up to it).
"""

from __future__ import annotations

import math
from datetime import UTC, timedelta
from typing import Annotated, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, model_validator

from ml.indicators.params import IndicatorParams
from ml.marketdata.frames import CANDLE_SCHEMA
from ml.marketdata.timeframes import timeframe_ms
from ml.strategies.signal import Direction, MarketSignal, RiskLevel, apply_cooldown

STRATEGY = "ema_cross"
Period = Annotated[int, Field(ge=2, le=1000)]
_KEY = ("exchange", "symbol")


class EmaCrossConfig(BaseModel):
    """Parameters of the EMA-crossover scalper (see the module docstring for what each does).

    From the seed bot's description (issue 11): the 15m timeframe with 1h confirmation, volume at
    least 110 % of its average, RSI above 55 for longs and below 45 for shorts, 2 of 4 1h checks.
    The seed names the other rules but not their values; the defaults chosen here are common
    scalper settings: EMA 9/21, 20-candle volume average, RSI / ADX / ATR 14, ADX at least 20,
    stop 1.5 ATR, targets 1R and 2R, levels over the last 48 candles (12 h) with at least 1R of
    room, 12 1h candles of swing range, 10 % allocation at 5x leverage (size 0.5), a 60-minute
    cooldown and 45 minutes of validity (three 15m candles) after the trigger's close.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeframe: Literal["15m"] = "15m"
    confirm_timeframe: Literal["1h"] = "1h"
    fast_ema: Period = 9
    slow_ema: Period = 21
    volume_window: Period = 20
    volume_multiplier: PositiveFloat = Field(default=1.10, description="15m volume / its average")
    rsi_period: Period = 14
    rsi_long_min: Annotated[float, Field(ge=0, le=100)] = 55.0
    rsi_short_max: Annotated[float, Field(ge=0, le=100)] = 45.0
    adx_period: Period = 14
    adx_min: Annotated[float, Field(ge=0, le=100)] = 20.0
    atr_period: Period = 14
    stop_atr_multiple: PositiveFloat = 1.5
    target_r_multiples: tuple[PositiveFloat, ...] = (1.0, 2.0)
    sr_lookback: Annotated[int, Field(ge=1, le=10_000)] = 48
    min_room_r: Annotated[float, Field(ge=0)] = 1.0
    min_htf_confirmations: Annotated[int, Field(ge=0, le=4, description="of the 4 1h checks")] = 2
    htf_volume_ratio_min: Annotated[float, Field(ge=0)] = 1.0
    htf_structure_candles: Annotated[int, Field(ge=1, le=1000)] = 12
    risk_atr_pct_medium: PositiveFloat = 0.5
    risk_atr_pct_high: PositiveFloat = 1.0
    allocation: Annotated[float, Field(gt=0, le=1)] = 0.10
    leverage: Annotated[float, Field(ge=1, le=100)] = 5.0
    cooldown_minutes: Annotated[int, Field(ge=0)] = 60
    expiry_minutes: Annotated[int, Field(ge=1)] = 45

    @model_validator(mode="after")
    def _consistent(self) -> EmaCrossConfig:
        if self.fast_ema >= self.slow_ema:
            raise ValueError(f"fast_ema ({self.fast_ema}) must be below slow_ema ({self.slow_ema})")
        if list(self.target_r_multiples) != sorted(set(self.target_r_multiples)) or not self.target_r_multiples:
            raise ValueError(f"target_r_multiples must be increasing and non-empty: {self.target_r_multiples}")
        if self.risk_atr_pct_medium >= self.risk_atr_pct_high:
            raise ValueError("risk_atr_pct_medium must be below risk_atr_pct_high")
        if not 0 < self.allocation * self.leverage <= 10:
            raise ValueError("allocation x leverage must lie in (0, 10]")
        return self

    def indicator_params(self) -> IndicatorParams:
        """The engine parameters giving this strategy's columns (on both timeframes)."""
        return IndicatorParams(
            ema_periods=(self.fast_ema, self.slow_ema), trend_ema=self.slow_ema,
            ema_crosses=((self.fast_ema, self.slow_ema),), rsi_periods=(self.rsi_period,),
            divergence_rsi=self.rsi_period, adx_period=self.adx_period, atr_period=self.atr_period,
            volume_sma_period=self.volume_window,
        )


def validate_candles(candles: pl.DataFrame, timeframe: str, name: str) -> pl.DataFrame:
    """CANDLE_SCHEMA rows of ``timeframe``, cast, sorted by (exchange, symbol, ts).

    Raises ``ValueError`` naming the first bad row's symbol and time: missing columns, another
    timeframe, nulls, non-finite or non-positive prices, negative volume, high below low,
    duplicate keys.
    """
    missing = [c for c in CANDLE_SCHEMA if c not in candles.columns]
    if missing:
        raise ValueError(f"{name} lack columns {missing}; expected CANDLE_SCHEMA")
    frame = candles.select(pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()).sort(*_KEY, "ts")
    prices = ("open", "high", "low", "close")
    problems = [
        (pl.any_horizontal(pl.all().is_null()), "has a null"),
        (pl.col("timeframe") != timeframe, f"is not a {timeframe} candle"),
        (~pl.all_horizontal(pl.col(*prices, "volume").is_finite()), "has a non-finite price or volume"),
        (pl.any_horizontal(pl.col(*prices) <= 0), "has a non-positive price"),
        (pl.col("volume") < 0, "has a negative volume"),
        ((pl.col("high") < pl.max_horizontal("open", "close", "low"))
         | (pl.col("low") > pl.min_horizontal("open", "close")), "has high/low inconsistent with open/close"),
        (pl.struct(*_KEY, "ts").is_duplicated(), "is duplicated"),
    ]
    for condition, what in problems:
        bad = frame.filter(condition.fill_null(True))
        if bad.height:
            row = bad.row(0, named=True)
            raise ValueError(f"{name}: {row['exchange']} {row['symbol']} candle at {row['ts']} {what}"
                             f" ({bad.height} such rows)")
    return frame


def _indicators(candles: pl.DataFrame, config: EmaCrossConfig) -> pl.DataFrame:
    from ml.indicators.engine import compute_indicators

    if candles.height == 0:
        return candles.with_columns(
            *(pl.lit(None, pl.Float64).alias(c) for c in ("ema_fast", "ema_slow", "rsi", "adx", "atr", "volume_ratio")),
            *(pl.lit(None, pl.Boolean).alias(c) for c in ("cross_up", "cross_down")),
        )
    f, s = config.fast_ema, config.slow_ema
    values = compute_indicators(candles, params=config.indicator_params()).select(
        *_KEY, "ts",
        pl.col(f"ema_{f}").alias("ema_fast"), pl.col(f"ema_{s}").alias("ema_slow"),
        pl.col(f"ema_{f}_{s}_cross_up").alias("cross_up"), pl.col(f"ema_{f}_{s}_cross_down").alias("cross_down"),
        pl.col(f"rsi_{config.rsi_period}").alias("rsi"), pl.col(f"adx_{config.adx_period}").alias("adx"),
        pl.col(f"atr_{config.atr_period}").alias("atr"), pl.col("volume_sma_ratio").alias("volume_ratio"),
    )
    return candles.join(values, on=[*_KEY, "ts"], how="left")


def _confirmations_1h(candles_1h: pl.DataFrame, config: EmaCrossConfig) -> pl.DataFrame:
    """Per 1h candle: its close time and whether each long / short check passes."""
    n = config.htf_structure_candles
    frame = _indicators(candles_1h, config).with_columns(
        (pl.col("ts") + timedelta(milliseconds=timeframe_ms(config.confirm_timeframe))).alias("usable_from"),
        ((pl.col("high").rolling_max(n, min_samples=n) + pl.col("low").rolling_min(n, min_samples=n)) / 2)
        .over(_KEY).alias("swing_mid"),
    )
    checks = {
        "trend": (pl.col("ema_fast") > pl.col("ema_slow"), pl.col("ema_fast") < pl.col("ema_slow")),
        "volume": (pl.col("volume_ratio") >= config.htf_volume_ratio_min,) * 2,
        "momentum": (pl.col("rsi") > 50, pl.col("rsi") < 50),
        "structure": (pl.col("close") > pl.col("swing_mid"), pl.col("close") < pl.col("swing_mid")),
    }
    return frame.select(
        *_KEY, "usable_from",
        *(long.fill_null(False).alias(f"htf_{name}_long") for name, (long, _) in checks.items()),
        *(short.fill_null(False).alias(f"htf_{name}_short") for name, (_, short) in checks.items()),
    ).sort("usable_from")


def _candidates(candles_15m: pl.DataFrame, candles_1h: pl.DataFrame, config: EmaCrossConfig) -> pl.DataFrame:
    """Every 15m candle passing the 15m rules of one side, with its 1h checks and levels."""
    step = timedelta(milliseconds=timeframe_ms(config.timeframe))
    n = config.sr_lookback
    frame = _indicators(candles_15m, config).with_columns(
        pl.col("high").shift(1).rolling_max(n, min_samples=n).over(_KEY).alias("resistance"),
        pl.col("low").shift(1).rolling_min(n, min_samples=n).over(_KEY).alias("support"),
        (pl.col("ts") + step).alias("closes_at"),
    )
    confirmations = _confirmations_1h(candles_1h, config)
    # only the latest 1h candle due by the trigger's close counts (closed at most 1h - 15m
    # before it): with that candle missing, a stale older one does not stand in for it
    due = timedelta(milliseconds=timeframe_ms(config.confirm_timeframe)) - step
    frame = frame.sort("closes_at").join_asof(
        confirmations, left_on="closes_at", right_on="usable_from", by=list(_KEY), strategy="backward",
        tolerance=due, check_sortedness=False)  # sorted by the as-of key across all groups, so within each
    volume_ok = pl.col("volume_ratio") >= config.volume_multiplier
    adx_ok = pl.col("adx") >= config.adx_min
    long = pl.col("cross_up") & (pl.col("rsi") > config.rsi_long_min)
    short = pl.col("cross_down") & (pl.col("rsi") < config.rsi_short_max)
    names = ("trend", "volume", "momentum", "structure")
    count = {side: pl.sum_horizontal(pl.col(f"htf_{c}_{side}").fill_null(False).cast(pl.Int64) for c in names)
             for side in ("long", "short")}
    gated = (volume_ok & adx_ok & pl.col("atr").is_not_null() & (pl.col("atr") > 0)).fill_null(False)
    sides = [
        frame.filter(gated & cond.fill_null(False)).with_columns(
            pl.lit(side).alias("direction"), count[side].alias("htf_confirmations"),
            *(pl.col(f"htf_{c}_{side}").fill_null(False).alias(f"htf_{c}") for c in names),
        )
        for side, cond in (("long", long), ("short", short))
    ]
    keep = [*_KEY, "ts", "close", "direction", "rsi", "adx", "atr", "volume_ratio", "resistance", "support",
            "htf_confirmations", *(f"htf_{c}" for c in names)]
    return pl.concat([s.select(keep) for s in sides]).filter(
        pl.col("htf_confirmations") >= config.min_htf_confirmations).sort(*_KEY, "ts")


def risk_level(atr_pct: float, confirmations: int, config: EmaCrossConfig) -> RiskLevel:
    """Low / medium / high by the module's points rule (ATR % bands, minimum 1h confirmations)."""
    points = int(atr_pct >= config.risk_atr_pct_medium) + int(atr_pct >= config.risk_atr_pct_high)
    points += int(confirmations <= config.min_htf_confirmations)
    return ("low", "medium", "high")[min(points, 2)]


def limit_targets(entry: float, r: float, sign: float, level: float | None, config: EmaCrossConfig) -> tuple[float, ...] | None:
    """R-multiple targets limited by the opposing level; None when it leaves less than ``min_room_r``."""
    ladder = [entry + sign * r * m for m in config.target_r_multiples]
    if level is None or sign * (level - entry) <= 0:
        return tuple(ladder)
    room = sign * (level - entry)
    if room < config.min_room_r * r:
        return None
    kept = [t for t in ladder if sign * (level - t) > 0]
    if len(kept) < len(ladder):
        kept.append(level)
    return tuple(kept)


def _signal(row: dict, config: EmaCrossConfig) -> MarketSignal | None:
    direction: Direction = row["direction"]
    sign = 1.0 if direction == "long" else -1.0
    entry, atr = float(row["close"]), float(row["atr"])
    r = config.stop_atr_multiple * atr
    level = row["resistance"] if direction == "long" else row["support"]
    targets = limit_targets(entry, r, sign, level, config)
    stop = entry - sign * r
    if targets is None or stop <= 0 or any(t <= 0 for t in targets):
        return None
    confirmations = int(row["htf_confirmations"])
    atr_pct = 100.0 * atr / entry
    confidence = (0.30 + 0.10 * confirmations
                  + 0.15 * min(max((row["adx"] - config.adx_min) / 25.0, 0.0), 1.0)
                  + 0.10 * min(max(row["volume_ratio"] / config.volume_multiplier - 1.0, 0.0), 1.0))
    trigger = row["ts"].astimezone(UTC)
    closes = trigger + timedelta(milliseconds=timeframe_ms(config.timeframe))
    factors = {
        "rsi": row["rsi"], "adx": row["adx"], "atr": atr, "atr_pct": atr_pct, "volume_ratio": row["volume_ratio"],
        "resistance": row["resistance"], "support": row["support"], "htf_confirmations": confirmations,
        **{f"htf_{c}": bool(row[f"htf_{c}"]) for c in ("trend", "volume", "momentum", "structure")},
    }
    factors = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in factors.items()}
    return MarketSignal(
        strategy=STRATEGY, exchange=row["exchange"], symbol=row["symbol"], timeframe=config.timeframe,
        direction=direction, trigger_ts=trigger, entry=entry, stop=stop, targets=targets,
        confidence=round(min(confidence, 1.0), 6), risk_level=risk_level(atr_pct, confirmations, config),
        size=config.allocation * config.leverage, expires_at=closes + timedelta(minutes=config.expiry_minutes),
        factors=factors,
    )


def detect_ema_cross(
    candles_15m: pl.DataFrame,
    candles_1h: pl.DataFrame,
    config: EmaCrossConfig = EmaCrossConfig(),  # noqa: B008 - frozen, immutable default
) -> list[MarketSignal]:
    """EMA-crossover signals for every ``(exchange, symbol)`` of ``candles_15m``.

    Parameters
    ----------
    candles_15m, candles_1h : polars.DataFrame
        :data:`~ml.marketdata.frames.CANDLE_SCHEMA` rows (``ts`` = open time, UTC; prices in the
        quote currency, volume in base units) of ``config.timeframe`` and
        ``config.confirm_timeframe``, any exchanges and symbols, in any order. Closed candles
        only. Indicators warm up from each symbol's first candle given.
    config : EmaCrossConfig
        Parameters (defaults: the seed bot's).

    Returns
    -------
    list of MarketSignal
        In trigger order, after the per-key cooldown. A signal at ``t`` depends only on the 15m
        candles up to ``t`` and the 1h candles closed at or before ``t``'s close. Each symbol's
        signals are those it gets alone.

    Raises
    ------
    ValueError
        On bad candles, naming the symbol and candle time (see :func:`validate_candles`).
    """
    m15 = validate_candles(candles_15m, config.timeframe, "15m candles")
    h1 = validate_candles(candles_1h, config.confirm_timeframe, "1h candles")
    if m15.height == 0:
        return []
    signals = (_signal(row, config) for row in _candidates(m15, h1, config).iter_rows(named=True))
    return apply_cooldown((s for s in signals if s is not None), timedelta(minutes=config.cooldown_minutes))
