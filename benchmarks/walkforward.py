"""One segment's rolling walk-forward on the real Binance 1h candles of ``../shared/fixtures``.

The data: the 1h candles of ``../shared/fixtures/binance_2024`` (10 pairs, 2024-01-01 to
2024-09-06, ~5,980 candles each, read where the tests read them). The segment is **majors**
(BTC/USDT and ETH/USDT there; from ``config/segments.yaml``: depth-8 trees, learning rate 0.03,
movement threshold 0.5 %).

Measured, no target (the issue asks for the time):

* **segment runner**: :func:`ml.evaluation.segment.segment_walk_forward` (branch ``backtest``),
  rolling, 12 weeks of training, 4-week test windows, its defaults otherwise (24 h embargo,
  4-candle label horizon, 0.1 % fee per side and 5 bp slippage, seed 0): features of all 10 pairs
  (BTC feeds the cross-asset columns), labels, then per window one XGBoost on the pooled rows of
  the segment's symbols and one on permuted labels (the baseline), the equal-weight portfolio and
  its metrics. The time is the whole call; the time to each window's end comes from its
  ``progress`` callback.
* **reference, per-symbol loop** (different work, printed for scale): the single-symbol
  :func:`ml.evaluation.walkforward.walk_forward` run on each of the segment's symbols with the
  same windows, embargo, costs and XGBoost (one model per symbol per window, plus its permuted
  twin) on the runner's own rows (:func:`ml.evaluation.segment.segment_frame`, its build of
  features and labels not timed), missing features given as NaN (``walk_forward`` refuses nulls;
  XGBoost treats NaN as missing, as it treats the runner's nulls), so the windows are the same.

``--quick``: the first 13 weeks of candles, 4 weeks of training (two test windows).
Without ``../shared/fixtures`` the part prints a "skipped" line and returns nothing.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from benchmarks.report import table

if TYPE_CHECKING:
    from ml.evaluation.segment import SegmentWalkForwardConfig
    from ml.evaluation.walkforward import PredictProba

FIXTURES = Path(os.environ.get("SIGNALWORKS_SHARED_FIXTURES",
                               Path(__file__).resolve().parents[2] / "shared" / "fixtures"))
FOLDER = FIXTURES / "binance_2024"
PAIRS = ("BTC", "ETH", "SOL", "AVAX", "LINK", "NEAR", "ARB", "DOGE", "PEPE", "SHIB")
SEGMENT = "majors"
TRAIN, TEST = timedelta(weeks=12), timedelta(weeks=4)
QUICK_TRAIN, QUICK_SPAN = timedelta(weeks=4), timedelta(weeks=13)


def real_candles(folder: Path = FOLDER) -> pl.DataFrame:
    """The fixture pairs' 1h candles as CANDLE_SCHEMA rows (exchange ``binance``)."""
    from ml.marketdata.frames import CANDLE_SCHEMA

    frames = [
        pl.read_ipc(folder / f"{base}_USDT-1h.feather").select(
            pl.lit("binance").alias("exchange"), pl.lit(f"{base}/USDT").alias("symbol"),
            pl.lit("1h").alias("timeframe"), pl.col("date").alias("ts"), "open", "high", "low", "close", "volume")
        for base in PAIRS
    ]
    return pl.concat(frames).select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()])


def per_symbol_loop(candles: pl.DataFrame, config: SegmentWalkForwardConfig) -> tuple[float, list[list[object]]]:
    """(seconds, table rows): the single-symbol ``walk_forward`` over the segment's symbols."""
    from ml.evaluation.segment import DEFAULT_SEGMENTS, segment_frame
    from ml.evaluation.walkforward import WalkForwardConfig, walk_forward
    from ml.models.xgb import fit_segment_model, predict_proba

    frame, columns, _ = segment_frame(candles, segment=SEGMENT, config=config, segments=DEFAULT_SEGMENTS)
    params = DEFAULT_SEGMENTS.segments[SEGMENT].xgboost  # type: ignore[index]

    def fit(x: np.ndarray, y: np.ndarray) -> PredictProba:  # rows arrive in time order
        model = fit_segment_model(x, y, np.arange(len(y)), params=params, seed=config.seed, feature_names=columns)
        return lambda rows: predict_proba(model, rows)

    loop_config = WalkForwardConfig(train_length=config.train_length, test_length=config.test_length,
                                    mode=config.mode, embargo=config.embargo, rule=config.position_rule, costs=config.costs,
                                    seed=config.seed)
    total, rows = 0.0, []
    for symbol in sorted(frame.get_column("symbol").unique().to_list()):
        # walk_forward refuses null features; NaN is what XGBoost in the runner routes them as
        own = frame.filter(pl.col("symbol") == symbol).with_columns(pl.col(columns).fill_null(float("nan")))
        start = time.perf_counter()
        report = walk_forward(own, feature_columns=columns, fit=fit, config=loop_config)
        elapsed = time.perf_counter() - start
        total += elapsed
        rows.append([f"  loop: {symbol}", f"{report.predictions.height:,} test", report.windows.height, 2 * report.windows.height,
                     f"{elapsed:.1f}", f"{report.out_of_sample.sharpe:.2f}",
                     f"{report.baselines['buy_and_hold'].sharpe:.2f}",
                     f"{report.baselines['permuted_labels'].sharpe:.2f}"])
    return total, rows


def run(quick: bool = False) -> None:
    """Print the walk-forward timing (no target); a skip line when the fixtures are absent."""
    from ml.evaluation.segment import SegmentWalkForwardConfig, segment_walk_forward

    if not FOLDER.is_dir():
        print(f"  skipped: ../shared/fixtures absent ({FOLDER} not found; set SIGNALWORKS_SHARED_FIXTURES)")
        return
    candles = real_candles()
    if quick:
        candles = candles.filter(pl.col("ts") < pl.col("ts").min() + QUICK_SPAN)
    config = SegmentWalkForwardConfig(mode="rolling", train_length=QUICK_TRAIN if quick else TRAIN,
                                      test_length=TEST)
    import xgboost  # noqa: F401  (imported before the clock, as in a running process)

    marks: list[float] = []
    start = time.perf_counter()
    result = segment_walk_forward(candles, segment=SEGMENT, config=config,
                                  progress=lambda done, total: marks.append(time.perf_counter()))
    seconds = time.perf_counter() - start
    loop_seconds, loop_rows = per_symbol_loop(candles, config)

    oos, baselines = result.out_of_sample, result.baselines
    windows = result.windows.height
    span = result.portfolio.get_column("ts")
    print(f"\nWalk-forward: segment {SEGMENT} ({', '.join(result.symbols)}), real Binance 1h candles "
          f"of 10 pairs, tested {span.min():%Y-%m-%d} to {span.max():%Y-%m-%d}")
    print(f"  rolling, {config.train_length.days // 7} weeks train / {config.test_length.days // 7}-week test "
          f"windows, embargo {config.embargo / timedelta(hours=1):.0f} h, label horizon {config.horizon} candles, "
          f"{len(result.feature_columns)} features, fee 0.1 %/side + 5 bp slippage")
    rows: list[list[object]] = [
        ["segment_walk_forward (pooled)", f"{result.predictions.height:,} test", windows, 2 * windows,
         f"{seconds:.1f}", f"{oos.sharpe:.2f}", f"{baselines['buy_and_hold'].sharpe:.2f}",
         f"{baselines['permuted_labels'].sharpe:.2f}"],
        ["reference: walk_forward per symbol", "", "", "", f"{loop_seconds:.1f}", "", "", ""],
        *loop_rows,
    ]
    print("\n".join(table(("", "rows", "windows", "fits", "seconds", "OOS Sharpe", "buy & hold", "permuted"),
                          rows)))
    ends = ", ".join(f"{mark - start:.1f}" for mark in marks)
    print(f"  segment runner: {seconds:.1f} s in all (no target: time reported), "
          f"{seconds / windows:.1f} s per window; each window done at {ends} s (the first after features "
          "and labels); "
          f"{seconds / loop_seconds:.2f}x the time of the per-symbol loop")
    print(f"  verdict: {result.verdict.text}")


if __name__ == "__main__":
    run()
