"""The feature frame: one row per candle (exchange, symbol, timeframe, ts), all symbols at once.

Time convention: a row's ``ts`` is its candle's *open* time (UTC) and every feature of the row is
known at that candle's *close* (``ts + step``). Nothing else is used: rolling windows and shifts
look backwards only, a higher-timeframe candle joins a row only once it has closed (its end at or
before the row's close, and every one of its base candles present), derivatives observations only
when observed at or before the row's close. So changing any candle after ``t`` changes no feature
at or before ``t`` (``tests/ml/features/test_lookahead.py`` proves it on random frames).

Windows count candles (rows of a symbol), not wall time: a gap in the data shortens no window.
"""

from __future__ import annotations

import logging

import polars as pl

from ml.features.config import FeatureConfig
from ml.features.segments import SEGMENT_IDS, SegmentsConfig, base_asset
from ml.marketdata.frames import CANDLE_KEY, CANDLE_SCHEMA, TS
from ml.marketdata.timeframes import timeframe_ms

logger = logging.getLogger(__name__)

GROUP = ["exchange", "symbol", "timeframe"]
#: Integer id of each (exchange, symbol) run of the key-sorted frame; windows are computed over it.
SERIES = "_series"
#: Working columns dropped from the result.
_HELPERS = ("close_ms", SERIES, "_exchange_id")
KEY = list(CANDLE_KEY)
DEFAULT_FEATURES = FeatureConfig()
DEFAULT_SEGMENTS = SegmentsConfig()


def build_features(
    candles: pl.DataFrame,
    *,
    config: FeatureConfig = DEFAULT_FEATURES,
    segments: SegmentsConfig = DEFAULT_SEGMENTS,
    indicators: pl.DataFrame | None = None,
    derivatives: pl.DataFrame | None = None,
    liquidity_ranks: dict[str, int] | None = None,
) -> pl.DataFrame:
    """Features of every candle of ``candles`` (one timeframe, any exchanges and symbols).

    Parameters
    ----------
    candles
        CANDLE_SCHEMA rows, unique on (exchange, symbol, timeframe, ts), closes > 0.
    indicators
        Optional rows of :func:`ml.indicators.engine.compute_indicators` (same key); the columns
        ``config.indicator_columns`` (default: all) are joined on the key.
    derivatives
        Optional DERIVATIVES_SCHEMA rows (perpetuals ``BASE/QUOTE:QUOTE``); a candle of
        ``BASE/QUOTE`` (spot or perpetual) takes ``funding_rate`` and the open-interest changes
        ``oi_change_<p>`` (fraction over ``p`` candles) as of its close, observations at most
        ``config.derivatives_max_age_hours`` old.
    liquidity_ranks
        Rank per symbol for the segment of symbols in no segment list.

    Returns
    -------
    pl.DataFrame
        The key, then Float64 features (returns and volatilities as fractions, RSI 0-100), and
        ``segment_id`` (Int8, :data:`ml.features.segments.SEGMENT_IDS`); sorted by the key,
        exactly one row per input candle. Warm-up rows hold nulls.

    Raises
    ------
    ValueError
        For missing columns, several timeframes, duplicate keys or non-positive prices; the
        message names the offending symbol and time.
    """
    step = _validate(candles)
    frame = _sorted_unique(candles)
    frame = frame.with_columns(
        (pl.col("ts").dt.epoch("ms") + step).alias("close_ms"),
        # rows are sorted by the key and hold one timeframe, so each (exchange, symbol) is one run
        # of rows: windows go over this integer id instead of three text columns
        pl.struct("exchange", "symbol").rle_id().alias(SERIES),
        pl.col("exchange").rle_id().alias("_exchange_id"),
    )
    out = _candle_features(frame, config)
    candle_names = [c for c in out.columns if c not in (*KEY, *_HELPERS)]
    out = _higher_timeframes(out, frame, config, step)
    out = _cross_asset(out, config)
    out = _correlated(out, candle_names, config)
    if derivatives is not None:
        out = _derivatives(out, derivatives, config)
    if indicators is not None:
        out = _indicators(out, indicators, config)
    features = [c for c in out.columns if c not in (*KEY, *_HELPERS)]
    if config.shifts:
        out = out.with_columns(pl.col(c).shift(k).over(SERIES).alias(f"{c}_lag{k}")
                               for k in config.shifts for c in features)
    symbols = out.get_column("symbol").unique().to_list()
    segment_ids = {s: SEGMENT_IDS[name] for s, name in segments.segments_of(symbols, liquidity_ranks).items()}
    # every step keeps the rows in key order (joins maintain the left order), so no final sort
    return out.with_columns(
        pl.col("symbol").replace_strict(segment_ids, return_dtype=pl.Int8).alias("segment_id")
    ).drop(*_HELPERS)


def _validate(candles: pl.DataFrame) -> int:
    missing = [c for c in CANDLE_SCHEMA if c not in candles.columns]
    if missing:
        raise ValueError(f"candles lack columns {missing}")
    timeframes = candles.get_column("timeframe").unique().to_list()
    if len(timeframes) != 1:
        raise ValueError(f"build_features takes one timeframe per call, got {sorted(map(str, timeframes))}")
    return timeframe_ms(str(timeframes[0]))


def _sorted_unique(candles: pl.DataFrame) -> pl.DataFrame:
    """``candles`` cast to CANDLE_SCHEMA and sorted by the key; raises on duplicate keys and bad prices.

    Candles usually arrive sorted by the key (the warehouse reads them so): a frame whose keys
    strictly increase row by row is sorted and free of duplicates, which one pass over it proves;
    only other frames pay for the duplicate search and the sort.
    """
    frame = candles.select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()])
    if not _strictly_increasing_key(frame):
        duplicated = candles.filter(candles.select(KEY).is_duplicated())
        if duplicated.height:
            row = duplicated.row(0, named=True)
            raise ValueError(f"duplicate candle key {row['exchange']} {row['symbol']} {row['ts']}")
        frame = frame.sort(KEY)
    bad = candles.filter(~(pl.col("close") > 0) | ~(pl.col("open") > 0))
    if bad.height:
        row = bad.row(0, named=True)
        raise ValueError(f"non-positive or missing price in {row['exchange']} {row['symbol']} at {row['ts']}")
    return frame


def _strictly_increasing_key(frame: pl.DataFrame) -> bool:
    """True when every row's (exchange, symbol, ts) is above the previous row's (one timeframe;
    a missing key value counts as not increasing)."""
    if frame.height < 2:
        return True
    exchange, symbol, ts = pl.col("exchange"), pl.col("symbol"), pl.col("ts")
    before = [c.shift() for c in (exchange, symbol, ts)]
    above = (exchange > before[0]) | ((exchange == before[0]) & (
        (symbol > before[1]) | ((symbol == before[1]) & (ts > before[2]))))
    return bool(frame.select(above.fill_null(False).slice(1).all()).item())


def _within_series(column: pl.Expr, periods: int) -> pl.Expr:
    """``column.shift(periods).over(SERIES)`` of the frame sorted by series: the shift of the
    whole column, null where it reaches into another series (same values, no grouping)."""
    return pl.when(pl.col(SERIES).shift(periods) == pl.col(SERIES)).then(column.shift(periods))


def _candle_features(frame: pl.DataFrame, config: FeatureConfig) -> pl.DataFrame:
    """Returns, log return, rolling volatility, volume ratio and bar range per symbol."""
    logret = pl.col("close").log() - _within_series(pl.col("close").log(), 1)
    mean_volume = pl.col("volume").rolling_mean(config.volume_window).over(SERIES)
    out = frame.with_columns(
        logret.alias("logret_1"),
        *[(pl.col("close") / _within_series(pl.col("close"), p) - 1).alias(f"ret_{p}")
          for p in config.return_periods],
        pl.when(mean_volume > 0).then(pl.col("volume") / mean_volume).alias(f"volume_ratio_{config.volume_window}"),
        ((pl.col("high") - pl.col("low")) / pl.col("close")).alias("bar_range"),
    )
    out = out.with_columns(pl.col("logret_1").rolling_std(w).over(SERIES).alias(f"volatility_{w}")
                           for w in config.volatility_windows)
    return out.drop("open", "high", "low", "close", "volume")


def _higher_timeframes(out: pl.DataFrame, frame: pl.DataFrame, config: FeatureConfig, step: int) -> pl.DataFrame:
    """The last *closed, complete* higher-timeframe candle's return and RSI, as of each row's close."""
    for timeframe in config.higher_timeframes:
        higher = _higher_by_series(frame, timeframe, step, config.higher_rsi_period)
        names = {"ret": f"htf_{timeframe}_ret", "rsi": f"htf_{timeframe}_rsi_{config.higher_rsi_period}"}
        # both sides are sorted by time within each series (the frame by the key, the higher
        # candles by bucket), which is all join_asof needs with `by`; it keeps the left order
        out = out.join_asof(higher.rename(names), left_on="close_ms", right_on="available_ms", by=SERIES,
                            strategy="backward", check_sortedness=False).drop("available_ms")
    return out


def higher_candles(frame: pl.DataFrame, timeframe: str, step: int, rsi_period: int) -> pl.DataFrame:
    """Complete ``timeframe`` candles aggregated from ``frame`` (one base timeframe of ``step`` ms).

    Returns (exchange, symbol, available_ms, ret, rsi): ``available_ms`` is the bucket's close
    (epoch-aligned buckets, as :mod:`ml.marketdata.resample`); only buckets holding every base
    candle count. ``ret`` is close over the previous bucket's close minus 1 (null when that bucket
    is not complete), ``rsi`` Wilder's RSI of the complete buckets' closes.
    """
    by = ["exchange", "symbol"]
    keyed = frame.sort([*by, "ts"]).with_columns(pl.struct(*by).rle_id().alias(SERIES))
    higher = _higher_by_series(keyed, timeframe, step, rsi_period)
    names = keyed.group_by(SERIES).agg(pl.col(by).first())
    return higher.join(names, on=SERIES, how="left", maintain_order="left").select(
        *by, "available_ms", "ret", "rsi")


def _higher_by_series(frame: pl.DataFrame, timeframe: str, step: int, rsi_period: int) -> pl.DataFrame:
    """:func:`higher_candles` of a frame sorted by (exchange, symbol, ts) with its :data:`SERIES`
    id; keyed by that id instead of the names, sorted by (id, bucket)."""
    length = timeframe_ms(timeframe)
    if length <= step or length % step:
        raise ValueError(f"higher timeframe {timeframe} is not a multiple of the candles' {step} ms")
    ms = pl.col("ts").dt.epoch("ms")
    bucket, series = pl.col("bucket"), pl.col(SERIES)
    # a bucket is a run of rows of the sorted frame: its last row holds its close, and the
    # distance between consecutive run ends is its candle count
    last = (series != series.shift(-1)) | (bucket != bucket.shift(-1))
    buckets = (
        frame.select(SERIES, (ms - ms % length).alias("bucket"), "close", pl.int_range(pl.len()).alias("_row"))
        .filter(last.fill_null(True))
        .with_columns((pl.col("_row") - pl.col("_row").shift(1, fill_value=-1)).alias("n"))
        .filter(pl.col("n") == length // step)
    )
    by = SERIES
    previous_close = _within_series(pl.col("close"), 1)
    change = pl.col("close") - previous_close
    alpha = 1.0 / rsi_period
    gain = change.clip(lower_bound=0).ewm_mean(alpha=alpha, adjust=False, min_samples=rsi_period).over(by)
    loss = (-change).clip(lower_bound=0).ewm_mean(alpha=alpha, adjust=False, min_samples=rsi_period).over(by)
    consecutive = (pl.col("bucket") - _within_series(pl.col("bucket"), 1)) == length
    return buckets.select(
        by,
        (pl.col("bucket") + length).alias("available_ms"),
        pl.when(consecutive).then(pl.col("close") / previous_close - 1).alias("ret"),
        pl.when(gain + loss > 0).then(100 * gain / (gain + loss)).alias("rsi"),
    )


def _cross_asset(out: pl.DataFrame, config: FeatureConfig) -> pl.DataFrame:
    """The reference symbol's returns at the same candle, rolling beta and correlation to it."""
    ref = base_asset(config.reference_symbol).lower()
    returns = ["logret_1", *[f"ret_{p}" for p in config.return_periods]]
    reference = out.filter(pl.col("symbol") == config.reference_symbol).select(
        "_exchange_id", "ts", *[pl.col(c).alias(f"{ref}_{c}") for c in returns])
    if reference.is_empty():
        logger.warning("reference symbol %s is not among the candles: cross-asset features are null",
                       config.reference_symbol)
    # one timeframe per frame, so (exchange, ts) is the candle's moment
    out = out.join(reference, on=["_exchange_id", "ts"], how="left", maintain_order="left")
    x_raw, y_raw = pl.col("logret_1"), pl.col(f"{ref}_logret_1")
    both = x_raw.is_not_null() & y_raw.is_not_null()
    x, y = pl.when(both).then(x_raw), pl.when(both).then(y_raw)
    w = config.beta_window
    means = out.select(*[e.rolling_mean(w).over(SERIES).alias(name) for name, e in
                         (("x", x), ("y", y), ("xy", x * y), ("xx", x * x), ("yy", y * y))])
    mx, my = pl.col("x"), pl.col("y")
    cov = pl.col("xy") - mx * my
    var_x = pl.col("xx") - mx**2
    var_y = pl.col("yy") - my**2
    return out.with_columns(means.select(
        pl.when(var_y > 0).then(cov / var_y).alias(f"beta_{ref}_{w}"),
        pl.when((var_x > 0) & (var_y > 0)).then(cov / (var_x * var_y).sqrt()).clip(-1.0, 1.0).alias(f"corr_{ref}_{w}"),
    ))


def _correlated(out: pl.DataFrame, candle_names: list[str], config: FeatureConfig) -> pl.DataFrame:
    """Each correlated symbol's candle features at the same candle, prefixed by its base."""
    prefixes = [base_asset(s).lower() for s in config.correlated_symbols]
    if len(set(prefixes)) != len(prefixes) or base_asset(config.reference_symbol).lower() in prefixes:
        raise ValueError(f"correlated symbols {config.correlated_symbols} share a base asset (with each other or the reference symbol)")
    for symbol, prefix in zip(config.correlated_symbols, prefixes, strict=True):
        pair = out.filter(pl.col("symbol") == symbol).select(
            "_exchange_id", "ts", *[pl.col(c).alias(f"{prefix}_{c}") for c in candle_names])
        if pair.is_empty():
            logger.warning("correlated symbol %s is not among the candles: its features are null", symbol)
        out = out.join(pair, on=["_exchange_id", "ts"], how="left", maintain_order="left")
    return out


def _pair(symbol: pl.Expr) -> pl.Expr:
    return symbol.str.split(":").list.first()


def _derivatives(out: pl.DataFrame, derivatives: pl.DataFrame, config: FeatureConfig) -> pl.DataFrame:
    """Funding rate and open-interest change of the pair's perpetual, as of each row's close."""
    missing = [c for c in ("exchange", "symbol", "ts", "funding_rate", "open_interest") if c not in derivatives.columns]
    if missing:
        raise ValueError(f"derivatives lack columns {missing}")
    settle = pl.col("symbol").str.split(":").list.get(1, null_on_oob=True)
    quote = _pair(pl.col("symbol")).str.split("/").list.get(1, null_on_oob=True)
    table = (
        derivatives.filter(settle.is_null() | (settle == quote))
        .select(pl.col("exchange").cast(pl.String), _pair(pl.col("symbol").cast(pl.String)).alias("_pair"),
                pl.col("ts").cast(TS).dt.epoch("ms").alias("observed_ms"),
                pl.col("funding_rate").cast(pl.Float64), pl.col("open_interest").cast(pl.Float64).alias("_oi"))
        .unique(["exchange", "_pair", "observed_ms"], keep="last", maintain_order=True)
        .sort("observed_ms")
    )
    joined = (
        out.with_columns(_pair(pl.col("symbol")).alias("_pair")).sort("close_ms")
        .join_asof(table, left_on="close_ms", right_on="observed_ms", by=["exchange", "_pair"],
                   strategy="backward", tolerance=config.derivatives_max_age_hours * 3_600_000,
                   check_sortedness=False)
        .drop("_pair", "observed_ms").sort(KEY)
    )
    oi = pl.col("_oi")
    return joined.with_columns(
        pl.when(oi.shift(p).over(SERIES) > 0).then(oi / oi.shift(p).over(SERIES) - 1).alias(f"oi_change_{p}")
        for p in config.open_interest_periods
    ).drop("_oi")


def _indicators(out: pl.DataFrame, indicators: pl.DataFrame, config: FeatureConfig) -> pl.DataFrame:
    columns = list(config.indicator_columns) if config.indicator_columns is not None else [
        c for c in indicators.columns if c not in KEY]
    missing = [c for c in [*KEY, *columns] if c not in indicators.columns]
    if missing:
        raise ValueError(f"indicators lack columns {missing}")
    clash = sorted(set(columns) & set(out.columns))
    if clash:
        raise ValueError(f"indicator columns {clash} clash with feature names")
    table = indicators.select(pl.col("exchange").cast(pl.String), pl.col("symbol").cast(pl.String),
                              pl.col("timeframe").cast(pl.String), pl.col("ts").cast(TS),
                              *[pl.col(c).cast(pl.Int8) if indicators.schema[c] == pl.Boolean else pl.col(c)
                                for c in columns])
    if table.select(KEY).is_duplicated().any():
        raise ValueError("indicators hold duplicate keys")
    return out.join(table, on=KEY, how="left", maintain_order="left")
