"""Strategy backtest throughput, and the time to scan the 1m universe after one new candle.

* **backtest throughput** (target >= 50x the reference): candles per second of the BOS rules over
  the real 2024 Binance 5m candles of ``../shared/fixtures/binance_2024`` (BTC, ETH, SOL; ~216k
  candles), seed parameters on 5m. Measured: :func:`ml.strategies.bos.detect_bos` (what live and
  ``signalworks backtest --strategy bos`` call: validation, one compiled pass per market in
  :mod:`ml.strategies.bos_kernel`, the signals and the cooldown), and the whole signal-to-outcome
  step of the backtest (:func:`ml.strategies.backtest.signal_outcomes` + :func:`taken_trades`).
  Reference, measured in the same run: :func:`bos_per_row`, a per-row Python loop of the same
  rules (swings, first close through the level, strength, volume, body, history, cooldown), which
  a test proves gives the identical signals on this data
  (``tests/ml/strategies/test_backtest_reference.py``); the run checks it again. The reference
  runs ``REFERENCE_ROUNDS`` times, each followed by ``REPEATS`` runs of the measured paths, and
  the best of each counts: on a shared machine both sample the same stretch of load (the
  compiled kernel is loaded before the first run).
* **scan after one new 1m candle** (target <= 50 ms): 150 simulated symbols; the time to find the
  signals of the newest candle with :func:`ml.strategies.scan.scan_markets` (the function the live
  op calls) over the op's buffer, ``BOS_LOOKBACK + 1`` minutes per symbol, with the cooldown
  seeded from the signals kept before (what the outbox holds), beside the full recomputation
  (the same function over the whole history, 1,440 minutes, no ``since``). The part checks that
  the live scan finds exactly the full recomputation's signals of that candle
  (:func:`live_scan_signals`, :func:`full_scan_signals`; ``tests/ml/strategies/test_bos_scan.py``
  checks it candle by candle on simulated and real candles). Simulated data (seeded random
  walks): the fixtures hold no 150 markets at 1m.

``--quick``: the first 20,000 candles of each pair. Without ``../shared/fixtures`` the throughput
part prints a "skipped" line.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from benchmarks.report import Section, Target, table

FIXTURES = Path(os.environ.get("SIGNALWORKS_SHARED_FIXTURES",
                               Path(__file__).resolve().parents[2] / "shared" / "fixtures"))
FOLDER = FIXTURES / "binance_2024"
PAIRS_5M = ("BTC", "ETH", "SOL")
#: Runs of each measurement (the best counts); the per-row reference takes seconds, so fewer.
REPEATS, REFERENCE_ROUNDS = 10, 3


def real_5m_candles(folder: Path = FOLDER, rows: int | None = None) -> pl.DataFrame:
    """The fixture's 5m candles as CANDLE_SCHEMA rows (exchange ``binance``), ``rows`` per pair."""
    from ml.marketdata.frames import CANDLE_SCHEMA

    frames = [
        pl.read_ipc(folder / f"{base}_USDT-5m.feather").slice(0, rows).select(
            pl.lit("binance").alias("exchange"), pl.lit(f"{base}/USDT").alias("symbol"),
            pl.lit("5m").alias("timeframe"), pl.col("date").alias("ts"), "open", "high", "low", "close", "volume")
        for base in PAIRS_5M
    ]
    return pl.concat(frames).select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()])


def bos_per_row(candles: pl.DataFrame, config: Any) -> list[tuple[Any, ...]]:
    """The BOS rules of :mod:`ml.strategies.bos`, candle by candle in plain Python.

    Returns ``(exchange, symbol, trigger_ts, direction, entry, swing_level, strength,
    volume_multiple, body_ratio)`` per signal after the cooldown, in trigger order. State per
    market: the latest confirmed swing high / low, whether it was broken, and the last kept signal
    per direction. The volume baseline adds the earlier volumes one by one, newest first, as the
    vectorised version does, so the floats agree to the bit.
    """
    lookback, window = config.lookback, config.volume_window
    sides = {"BOS_UP": ("long",), "BOS_DOWN": ("short",), "BOTH": ("long", "short")}[config.event_filter_type]
    cooldown = timedelta(minutes=config.min_event_interval_minutes)
    events: list[tuple[Any, ...]] = []
    ordered = candles.sort("exchange", "symbol", "ts")
    for (exchange, symbol), market in ordered.group_by("exchange", "symbol", maintain_order=True):
        ts = market["ts"].to_list()
        o, h, lo, c, v = (market[col].to_list() for col in ("open", "high", "low", "close", "volume"))
        swing_high = swing_low = None
        up_used = down_used = False
        for i in range(len(ts)):
            j = i - lookback
            if j >= lookback:
                if all(h[j] >= h[k] for k in range(j - lookback, j + lookback + 1) if k != j):
                    swing_high, up_used = h[j], False
                if all(lo[j] <= lo[k] for k in range(j - lookback, j + lookback + 1) if k != j):
                    swing_low, down_used = lo[j], False
            total, count = 0.0, 0
            for k in range(1, window + 1):
                if i - k >= 0:
                    total += v[i - k]
                    count += 1
            baseline = total / count if count else float("nan")
            multiple = v[i] / baseline if baseline > 0 else None
            body = (c[i] - o[i]) / (h[i] - lo[i]) if h[i] > lo[i] else None
            for side in ("long", "short"):
                level = swing_high if side == "long" else swing_low
                if level is None:
                    continue
                beyond = c[i] > level if side == "long" else c[i] < level
                used = up_used if side == "long" else down_used
                if not beyond or used:
                    continue
                if side == "long":
                    up_used = True
                else:
                    down_used = True
                if side not in sides:
                    continue
                strength = c[i] / level if side == "long" else level / c[i]
                ratio = None if body is None else (body if side == "long" else -body)
                if (strength >= config.bos_strength_threshold and multiple is not None
                        and multiple >= config.min_volume_multiplier and ratio is not None
                        and ratio >= config.require_body_ratio and ratio > 0 and i + 1 >= config.min_candles):
                    events.append((exchange, symbol, ts[i], side, c[i], level, strength, multiple, ratio))
    kept, last = [], {}
    for event in sorted(events, key=lambda e: (e[2], "bos", e[0], e[1], e[3])):
        key = (event[0], event[1], event[3])
        if key not in last or event[2] - last[key] >= cooldown:
            kept.append(event)
            last[key] = event[2]
    return kept


def vectorised_events(candles: pl.DataFrame, config: Any) -> list[tuple[Any, ...]]:
    """:func:`ml.strategies.bos.detect_bos`'s signals in :func:`bos_per_row`'s tuple layout."""
    from ml.strategies.bos import detect_bos

    return [(s.exchange, s.symbol, s.trigger_ts, s.direction, s.entry, s.factors["swing_level"],
             s.factors["strength"], s.factors["volume_multiple"], s.factors["body_ratio"])
            for s in detect_bos(candles, config)]


def _best(function: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - started)
    return best, result


def _throughput(quick: bool) -> Section:
    from ml.strategies.backtest import signal_outcomes, strategy_config, taken_trades
    from ml.strategies.bos import detect_bos

    candles = real_5m_candles(rows=20_000 if quick else None)
    config = strategy_config("bos", {"event_filter_type": "BOTH"}, timeframe="5m")
    detect_bos(candles.head(100), config)  # loads the compiled kernel (numba's cache) before timing
    signals = detect_bos(candles, config)
    vector_s = outcome_s = loop_s = float("inf")
    for _ in range(REFERENCE_ROUNDS):
        seconds, events = _best(lambda: bos_per_row(candles, config), 1)
        loop_s = min(loop_s, seconds)
        seconds, again = _best(lambda: detect_bos(candles, config), REPEATS)
        vector_s = min(vector_s, seconds)
        assert again == signals
        seconds, _ = _best(lambda: taken_trades(signal_outcomes(signals, candles)[0]), REPEATS)
        outcome_s = min(outcome_s, seconds)
    same = events == vectorised_events(candles, config)
    rows = candles.height
    ratio = loop_s / vector_s
    lines = table(["path", "seconds", "candles/s", "signals"], [
        ["detect_bos (compiled, live + backtest)", f"{vector_s:.3f}", f"{rows / vector_s:,.0f}", len(signals)],
        ["  + outcomes and taken trades", f"{vector_s + outcome_s:.3f}", f"{rows / (vector_s + outcome_s):,.0f}", ""],
        ["per-row Python loop (reference)", f"{loop_s:.3f}", f"{rows / loop_s:,.0f}", len(events)],
    ])
    note = (f"{rows:,} real 5m candles (BTC, ETH, SOL 2024), BOS seed parameters on 5m, both directions; "
            f"identical signals: {same}")
    target = Target("BOS backtest: detect_bos / per-row loop (identical signals)", ratio if same else 0.0, 50.0)
    return Section("Strategy backtest throughput", [f"  {note}", *lines], [target])


def simulated_minutes(symbols: int, minutes: int, *, seed: int = 0) -> pl.DataFrame:
    """1m candles of ``symbols`` seeded random walks (0.15 % per minute, occasional 1 % jumps on
    4x volume: breaks of structure happen), ending at 2024-03-01 00:00 UTC."""
    import numpy as np

    from ml.marketdata.frames import CANDLE_SCHEMA

    rng = np.random.default_rng(seed)
    end = datetime(2024, 3, 1, tzinfo=UTC)
    ts = [end - timedelta(minutes=minutes - i) for i in range(minutes)]
    frames = []
    for index in range(symbols):
        steps = rng.normal(0, 0.0015, minutes) + np.where(rng.random(minutes) < 0.01, 0.01, 0.0)
        close = 100 * np.exp(np.cumsum(steps))
        open_ = np.r_[100.0, close[:-1]]
        frames.append(pl.DataFrame({
            "exchange": "sim", "symbol": f"S{index:03d}/USDT", "timeframe": "1m", "ts": ts, "open": open_,
            "high": np.maximum(open_, close) * (1 + rng.uniform(0, 5e-4, minutes)),
            "low": np.minimum(open_, close) * (1 - rng.uniform(0, 5e-4, minutes)),
            "close": close, "volume": rng.uniform(1, 2, minutes) * np.where(steps > 0.005, 4.0, 1.0)}))
    return pl.concat(frames).select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()])


def planted_breaks(candles: pl.DataFrame, *, every: int) -> pl.DataFrame:
    """Every ``every``-th symbol's newest candle made a break of structure (a strong close 2 % above
    its last 4 hours' high on 10x volume), so the scan of that candle has signals to find."""
    newest = candles["ts"].max()
    high = candles.group_by("symbol").agg(pl.col("high").max().alias("top"))
    planted = pl.col("symbol").str.slice(1, 3).cast(pl.Int64) % every == 0
    close = pl.col("top") * 1.02
    return candles.join(high, on="symbol").with_columns(
        pl.when(planted & (pl.col("ts") == newest)).then(close / 1.015).otherwise(pl.col("open")).alias("open"),
        pl.when(planted & (pl.col("ts") == newest)).then(close * 1.0005).otherwise(pl.col("high")).alias("high"),
        pl.when(planted & (pl.col("ts") == newest)).then(close / 1.015 * 0.9995).otherwise(pl.col("low")).alias("low"),
        pl.when(planted & (pl.col("ts") == newest)).then(close).otherwise(pl.col("close")).alias("close"),
        pl.when(planted & (pl.col("ts") == newest)).then(20.0).otherwise(pl.col("volume")).alias("volume"),
    ).drop("top")


def full_scan_signals(candles: pl.DataFrame, config: Any) -> list[Any]:
    """The full recomputation: :func:`~ml.strategies.scan.scan_markets` (BOS only) over the whole
    history, no ``since``: every signal kept, in trigger order."""
    from ml.strategies.scan import scan_markets

    empty = candles.clear()
    return scan_markets(candles_1m=candles, candles_15m=empty, candles_1h=empty, bos=config).signals


def live_scan_signals(candles: pl.DataFrame, newest: datetime, config: Any, kept: Sequence[Any]) -> list[Any]:
    """What the live op finds when the candle opening at ``newest`` arrives: scan_markets over its
    buffer (:data:`~ml.strategies.scan.BOS_LOOKBACK` + 1 candles per market up to that candle),
    ``since`` = that candle's open (the previous one's close) for every market, the cooldown seeded
    with ``kept`` (the outbox's earlier signals)."""
    from ml.marketdata.timeframes import timeframe_ms
    from ml.strategies.scan import BOS_LOOKBACK, scan_markets

    step = timedelta(milliseconds=timeframe_ms(config.interval))
    buffer = candles.filter((pl.col("ts") > newest - step * (BOS_LOOKBACK + 1)) & (pl.col("ts") <= newest))
    since = {market: newest for market in buffer.select("exchange", "symbol").unique().iter_rows()}
    empty = buffer.clear()
    return scan_markets(candles_1m=buffer, candles_15m=empty, candles_1h=empty, since=since,
                        kept=[(s.key, s.trigger_ts) for s in kept], bos=config).signals


def _scan(quick: bool) -> Section:
    """One new 1m candle for each of 150 symbols: the live scan of its buffer vs the full recomputation."""
    from ml.strategies.bos import SEED_CONFIG
    from ml.strategies.scan import BOS_LOOKBACK

    symbols, history = 150, 480 if quick else 1440
    candles = planted_breaks(simulated_minutes(symbols, history), every=10)
    newest = candles["ts"].max()
    full_scan_signals(candles.head(100), SEED_CONFIG)  # loads the compiled kernel before timing
    full_s, full = _best(lambda: full_scan_signals(candles, SEED_CONFIG), REPEATS)
    kept = [s for s in full if s.trigger_ts < newest]  # in the outbox before the new candle
    expected = [s for s in full if s.trigger_ts == newest]
    scan_s, new = _best(lambda: live_scan_signals(candles, newest, SEED_CONFIG, kept), REPEATS)
    read = candles.filter(pl.col("ts") > newest - timedelta(minutes=BOS_LOOKBACK + 1)).height
    lines = table(["scan of the newest candle", "candles read", "ms", "new signals"], [
        [f"live: last {BOS_LOOKBACK + 1} min per symbol (scan_markets)", read, f"{scan_s * 1e3:.1f}", len(new)],
        [f"full recomputation: {history} min per symbol", candles.height, f"{full_s * 1e3:.1f}", len(expected)],
    ])
    same = new == expected and len(new) > 0
    note = (f"{symbols} simulated symbols (seeded random walks, every 10th with a break on its newest candle), "
            f"BOS seed parameters on 1m; the live scan finds the full recomputation's signals of the newest "
            f"candle: {same}; speed-up {full_s / scan_s:.1f}x")
    target = Target("scan of 150 symbols after one new 1m candle (same signals as the full recomputation)",
                    scan_s * 1e3 if same else float("inf"), 50.0, unit="ms", at_least=False, inclusive=True)
    return Section("Scan after one new 1m candle", [f"  {note}", *lines], [target])


def run(quick: bool = False) -> list[Section] | None:
    sections = [_scan(quick)]
    if not FOLDER.is_dir():
        print(f"  throughput skipped: {FOLDER} is absent (set SIGNALWORKS_SHARED_FIXTURES)")
        return sections
    return [_throughput(quick), *sections]


__all__: Sequence[str] = ("bos_per_row", "full_scan_signals", "live_scan_signals", "planted_breaks",
                          "real_5m_candles", "run", "simulated_minutes", "vectorised_events")
