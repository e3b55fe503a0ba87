"""Indicator engine against a per-symbol TA-Lib loop and a per-symbol pandas-ta-classic loop.

The frame: 500 symbols x 2000 1h candles (1 M candles; seeded random walks priced from 1e-5 to
6e4, 10 % zero-volume candles), sorted by ``(exchange, symbol, ts)`` as the warehouse returns it.
Measured in the same run, interleaved, best and median of the repeats:

* **engine**: :func:`ml.indicators.engine.compute_indicators`, the full suite (every column of
  ``INDICATOR_COLUMNS``, Supertrend, structure and VWAP included), into a polars frame with nulls;
  also once with a 4h ``higher_timeframe_rsi`` (the multi-timeframe join).
* **TA-Lib loop -> frame**: a loop over the symbols' numpy slices calling TA-Lib for the
  indicators it has (EMA x5, SMA x2, MACD, ADX, RSI x2, BBANDS, ATR, OBV, volume SMA), writing
  into preallocated long arrays, then one polars frame with nulls: the same input and output
  contract as the engine, for a third of its columns.
* **TA-Lib loop, bare**: the same calls, results discarded (the pure compute floor).
* **pandas-ta-classic loop**: one pandas frame per symbol and pandas-ta-classic's functions for
  what it has (the TA-Lib set plus Supertrend, VWAP, TD Sequential), on a subset of the symbols
  (it runs at ~0.1 M candles/s); its rate is per candle, so it compares directly.

Fresh memory: the engine writes its output into buffers from Arrow's memory pool, which keeps
freed pages, so the timed repeats (like a process computing timeframe after timeframe) write into
warm memory. A separate process with the pool set to the system allocator
(``ARROW_DEFAULT_MEMORY_POOL=system``) times the engine and the TA-Lib loop -> frame with fresh
pages on every engine call, as the first call of a process pays them; printed with no target.

Peak memory: the growth of the resident set (VmHWM after resetting it) during the first run of
each method in a fresh process (input frame built, libraries imported, output kept).

Compile time: the engine's kernels are numba-compiled with ``cache=True``. The timed repeats follow
a warm-up call of every method (as before numba), so they exclude compilation; the report prints
the first call apart: in this process (kernels loaded from numba's cache in ``__pycache__``, or
compiled if there is none), and in a fresh process with an empty ``NUMBA_CACHE_DIR`` (compiling
every kernel: what the first run on a new machine pays once).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable

import numpy as np
import polars as pl

from benchmarks.memory import peak_growth_mb, peak_mb_in_child, start_peak
from benchmarks.report import Target

SYMBOLS, CANDLES = 500, 2000
QUICK_SYMBOLS, QUICK_CANDLES = 50, 500
TARGET_VS_TALIB = 1.0
TARGET_VS_PANDAS_TA = 70.0


def candles(symbols: int, n: int, seed: int = 11) -> pl.DataFrame:
    """Seeded 1h candles of ``symbols`` pairs, CANDLE_SCHEMA, sorted by the key."""
    from ml.marketdata.frames import CANDLE_SCHEMA

    rng = np.random.default_rng(seed)
    level = np.exp(rng.uniform(np.log(1e-5), np.log(6e4), symbols))
    close = level[:, None] * np.exp(np.cumsum(rng.normal(0, 0.01, (symbols, n)), axis=1))
    open_ = np.concatenate([close[:, :1], close[:, :-1]], axis=1)
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.004, (symbols, n)))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.004, (symbols, n)))
    volume = np.where(rng.random((symbols, n)) < 0.1, 0.0, rng.gamma(2.0, 50.0, (symbols, n)))
    start = 1_704_067_200_000  # 2024-01-01 UTC
    names = [f"S{i:04d}/USDT" for i in range(symbols)]
    frame = pl.DataFrame(
        {
            "exchange": np.full(symbols * n, "sim"),
            "symbol": np.repeat(names, n),
            "timeframe": np.full(symbols * n, "1h"),
            "ts": np.tile(start + np.arange(n, dtype=np.int64) * 3_600_000, symbols),
            "open": open_.ravel(),
            "high": high.ravel(),
            "low": low.ravel(),
            "close": close.ravel(),
            "volume": volume.ravel(),
        }
    )
    return frame.select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()])


def higher_rsi(frame: pl.DataFrame) -> pl.DataFrame:
    """The 4h RSI of ``frame``'s candles (as the multi-timeframe input)."""
    from ml.indicators import compute_indicators

    step = 4 * 3_600_000
    four = (
        frame.with_columns((pl.col("ts").dt.epoch("ms") // step * step).alias("_b"))
        .group_by("exchange", "symbol", "_b", maintain_order=True)
        .agg(pl.col("open").first(), pl.col("high").max(), pl.col("low").min(),
             pl.col("close").last(), pl.col("volume").sum())
        .select("exchange", "symbol", pl.lit("4h").alias("timeframe"),
                pl.col("_b").cast(pl.Datetime("ms", "UTC")).alias("ts"),
                "open", "high", "low", "close", "volume")
    )
    return compute_indicators(four).select("exchange", "symbol", "timeframe", "ts", "rsi_14")


def _segments(frame: pl.DataFrame) -> list[tuple[int, int]]:
    starts = frame.select((pl.col("symbol") != pl.col("symbol").shift(1)).fill_null(True).arg_true())
    a = starts.to_series().to_list()
    return list(zip(a, [*a[1:], frame.height], strict=True))


_TALIB_COLUMNS = ("ema_9", "ema_10", "ema_21", "ema_36", "ema_200", "sma_50", "sma_200", "macd",
                  "macd_signal", "macd_hist", "adx_14", "rsi_14", "rsi_7", "bb_upper", "bb_middle",
                  "bb_lower", "atr_14", "obv", "volume_sma_20")


def talib_loop(frame: pl.DataFrame, *, assemble: bool) -> pl.DataFrame | None:
    """Per-symbol TA-Lib over numpy slices; with ``assemble`` into a long polars frame."""
    import talib

    c, h, lo, v = (frame.get_column(k).to_numpy() for k in ("close", "high", "low", "volume"))
    out = {k: np.empty(frame.height) for k in _TALIB_COLUMNS} if assemble else None
    for a, b in _segments(frame):
        cs, hs, ls, vs = c[a:b], h[a:b], lo[a:b], v[a:b]
        r = {f"ema_{p}": talib.EMA(cs, p) for p in (9, 10, 21, 36, 200)}
        r["sma_50"], r["sma_200"] = talib.SMA(cs, 50), talib.SMA(cs, 200)
        r["macd"], r["macd_signal"], r["macd_hist"] = talib.MACD(cs, 12, 26, 9)
        r["adx_14"] = talib.ADX(hs, ls, cs, 14)
        r["rsi_14"], r["rsi_7"] = talib.RSI(cs, 14), talib.RSI(cs, 7)
        r["bb_upper"], r["bb_middle"], r["bb_lower"] = talib.BBANDS(cs, 20, 2.0, 2.0, 0)
        r["atr_14"] = talib.ATR(hs, ls, cs, 14)
        r["obv"] = talib.OBV(cs, vs)
        r["volume_sma_20"] = talib.SMA(vs, 20)
        if out is not None:
            for k, values in r.items():
                out[k][a:b] = values
    if out is None:
        return None
    keys = frame.select("exchange", "symbol", "timeframe", "ts")
    return keys.with_columns(pl.Series(k, values, nan_to_null=True) for k, values in out.items())


def pandas_ta_loop(frame: pl.DataFrame) -> list[object]:
    """Per-symbol pandas frames through pandas-ta-classic's functions."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pandas_ta_classic as pta

        results = []
        for (_,), rows in frame.group_by("symbol", maintain_order=True):
            df = rows.select("ts", "open", "high", "low", "close", "volume").to_pandas()
            df = df.set_index(df["ts"].dt.tz_convert(None)).drop(columns="ts")
            c, h, lo, v = df["close"], df["high"], df["low"], df["volume"]
            r = [pta.ema(c, p) for p in (9, 10, 21, 36, 200)]
            r += [pta.sma(c, 50), pta.sma(c, 200), pta.macd(c, 12, 26, 9), pta.adx(h, lo, c, 14),
                  pta.rsi(c, 14), pta.rsi(c, 7), pta.bbands(c, 20, 2.0), pta.atr(h, lo, c, 14),
                  pta.obv(c, v), pta.sma(v, 20), pta.supertrend(h, lo, c, 7, 3.0),
                  pta.vwap(h, lo, c, v, anchor="D"), pta.td_seq(c, asint=True)]
            results.append(r)
    return results


def _time(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _peak_child(method: str, symbols: int, n: int, conn: object) -> None:  # pragma: no cover
    frame = candles(symbols, n)
    higher = higher_rsi(frame) if method == "engine+htf" else None
    runs = _methods(frame, higher)  # imports the engine and TA-Lib
    start = start_peak()
    runs[method]()
    conn.send(peak_growth_mb(start))  # type: ignore[attr-defined]


def _methods(frame: pl.DataFrame, higher: pl.DataFrame | None) -> dict[str, Callable[[], object]]:
    from ml.indicators import compute_indicators

    return {
        "engine": lambda: compute_indicators(frame),
        "engine+htf": lambda: compute_indicators(frame, higher_timeframe_rsi=higher),
        "talib->frame": lambda: talib_loop(frame, assemble=True),
        "talib bare": lambda: talib_loop(frame, assemble=False),
    }


_COLD = (
    "import time; from benchmarks.indicators import candles; frame = candles(20, 300); "
    "t = time.perf_counter(); from ml.indicators import compute_indicators; "
    "compute_indicators(frame); print(time.perf_counter() - t)"
)


def _cold_compile_seconds() -> float | None:
    """Import + first call of the engine in a fresh process with an empty numba cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        done = subprocess.run([sys.executable, "-c", _COLD], env=env, capture_output=True,
                              text=True, timeout=600, check=False)
    try:
        return float(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def _fresh_memory_child(symbols: int, n: int, repeat: int) -> None:  # pragma: no cover
    """Print the best engine and TA-Lib -> frame seconds of this process (run by
    :func:`_fresh_memory_seconds` with the system allocator as Arrow's pool)."""
    runs = _methods(candles(symbols, n), None)
    names = ("engine", "talib->frame")
    for name in names:
        runs[name]()
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(repeat):
        for name in names:
            seconds[name].append(_time(runs[name]))
    print(min(seconds["engine"]), min(seconds["talib->frame"]))


def _fresh_memory_seconds(symbols: int, n: int, repeat: int) -> tuple[float, float] | None:
    """Best engine and TA-Lib -> frame seconds in a process whose Arrow pool is the system
    allocator, so every engine call writes into fresh pages (as the first call of a process)."""
    code = f"from benchmarks.indicators import _fresh_memory_child; _fresh_memory_child({symbols}, {n}, {repeat})"
    env = {**os.environ, "ARROW_DEFAULT_MEMORY_POOL": "system"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    try:
        engine, talib = (float(x) for x in done.stdout.strip().splitlines()[-1].split())
    except (ValueError, IndexError):
        return None
    return engine, talib


def run(quick: bool = False) -> list[Target]:
    """Print the indicator benchmark report; return its targets for the summary (never raises on a miss)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    symbols, n = (QUICK_SYMBOLS, QUICK_CANDLES) if quick else (SYMBOLS, CANDLES)
    repeat = 2 if quick else 5
    frame = candles(symbols, n)
    higher = higher_rsi(frame)
    rows = frame.height
    methods = _methods(frame, higher)
    first_call = _time(methods["engine"])  # numba kernels: loaded from the cache or compiled
    for method in methods.values():
        method()  # warm-up: imports, first allocations
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repeat):  # interleaved, so background load hits every method alike
        for name, method in methods.items():
            seconds[name].append(_time(method))
    subset = frame.filter(pl.col("symbol").is_in(frame.get_column("symbol").unique().sort().head(5 if quick else 25)))
    pandas_seconds = [_time(lambda: pandas_ta_loop(subset)) for _ in range(1 if quick else 2)]

    def rate(name: str, best: bool = True) -> float:
        values = seconds[name]
        return rows / (min(values) if best else statistics.median(values)) / 1e6

    pandas_rate = subset.height / min(pandas_seconds) / 1e6
    print(f"\nIndicators: {symbols} symbols x {n} 1h candles = {rows:,} candles; "
          f"{os.cpu_count()} CPUs; best (median) of {repeat} interleaved runs")
    labels = {
        "engine": "engine, full suite (48 columns)",
        "engine+htf": "engine, full suite + 4h RSI divergence join",
        "talib->frame": "TA-Lib loop -> long frame (19 columns)",
        "talib bare": "TA-Lib loop, results discarded",
    }
    for name, label in labels.items():
        print(f"  {label:<46} {rate(name):7.2f} M candles/s ({rate(name, best=False):.2f})"
              f"  {min(seconds[name]) * 1e3:8.1f} ms")
    print(f"  {'pandas-ta-classic loop (' + str(subset.get_column('symbol').n_unique()) + ' symbols)':<46} "
          f"{pandas_rate:7.3f} M candles/s")
    engine = rate("engine")
    # The target's reference is the loop that delivers what the engine delivers (a long frame
    # with nulls; the 5.8 M candles/s is this one). The bare loop keeps TA-Lib's output
    # arrays and drops them: a floor for a third of the columns, printed for orientation.
    targets = [
        Target("indicators: engine / TA-Lib loop -> frame", engine / rate("talib->frame"), TARGET_VS_TALIB),
        Target("indicators: engine / pandas-ta-classic loop", engine / pandas_rate, TARGET_VS_PANDAS_TA),
    ]
    for target in targets:
        label = target.name.removeprefix("indicators: ")
        print(f"  {label:<46} {target.value:7.2f}x  (target >= {target.threshold:g}x: {target.verdict})")
    print(f"  {'engine / TA-Lib loop, bare':<46} {engine / rate('talib bare'):7.2f}x  (no target: compute floor)")
    fresh = _fresh_memory_seconds(symbols, n, repeat)
    if fresh is not None:
        print(f"  {'engine on fresh memory every call':<46} {rows / fresh[0] / 1e6:7.2f} M candles/s"
              f"  {fresh[0] * 1e3:8.1f} ms; {fresh[1] / fresh[0]:.2f}x the TA-Lib loop -> frame there "
              "(no target: Arrow's pool set to the system allocator, as a process's first call)")
    cold = _cold_compile_seconds()
    print(f"  engine first call in this process (numba cache in __pycache__ or compile): "
          f"{first_call:.2f} s; in a fresh process with an empty numba cache: "
          f"{'n/a' if cold is None else f'{cold:.1f} s'} (not in the timed repeats)")
    peaks = {name: peak_mb_in_child(_peak_child, name, symbols, n) for name in ("engine", "talib->frame")}
    for name, peak in peaks.items():
        shown = "n/a" if peak is None else f"{peak:,.0f} MB"
        print(f"  peak memory growth, {labels[name]:<27} {shown}")
    print(f"  (input frame: {frame.estimated_size('mb'):,.0f} MB)")
    return targets
