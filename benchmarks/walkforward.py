"""One segment's rolling walk-forward on the real Binance 1h candles of ``../shared/fixtures``.

The data: the 1h candles of ``../shared/fixtures/binance_2024`` (10 pairs, 2024-01-01 to
2024-09-06, ~5,980 candles each); the segment is **majors** (BTC/USDT and ETH/USDT there; depth-8
trees, learning rate 0.03, movement threshold 0.5 %, from ``config/segments.yaml``). Features are
:func:`ml.features.build.build_features` (default config, all 10 pairs at once, for BTC's
cross-asset columns), labels :func:`ml.features.labels.make_labels` with a 4-candle horizon, the
asset return the next candle's (:func:`ml.evaluation.costs.forward_returns`); rows with a missing
feature (the warm-up) are dropped.

The walk-forward: :func:`ml.evaluation.walkforward.walk_forward`, rolling, 12 weeks of training,
4-week test windows, an embargo of the label horizon (5 candles), default costs (0.1 % fee per
side, 5 bp slippage). Each window trains the segment's XGBoost (:func:`ml.models.xgb.fit_segment_model`,
seed 0, default early stopping) twice: on the labels and on permuted labels (the baseline).
``walk_forward`` evaluates one symbol per run, so the segment is the loop over its symbols (the
segment runner that pools a segment's symbols, ``ml.evaluation.segment``, is on branch
``backtest``, not merged here). Reported: the time of each symbol's walk-forward and the total,
the time to build features and labels, and the out-of-sample figures (no target).

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
    from ml.evaluation.walkforward import PredictProba, WalkForwardReport

FIXTURES = Path(os.environ.get("SIGNALWORKS_SHARED_FIXTURES",
                               Path(__file__).resolve().parents[2] / "shared" / "fixtures"))
FOLDER = FIXTURES / "binance_2024"
PAIRS = ("BTC", "ETH", "SOL", "AVAX", "LINK", "NEAR", "ARB", "DOGE", "PEPE", "SHIB")
SEGMENT = "majors"
HORIZON = 4
TRAIN, TEST = timedelta(weeks=12), timedelta(weeks=4)
QUICK_TRAIN = timedelta(weeks=4)
QUICK_END = timedelta(weeks=12)
SEGMENTS_YAML = Path(__file__).resolve().parents[1] / "config" / "segments.yaml"


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


def segment_frames(candles: pl.DataFrame, segment: str) -> tuple[dict[str, pl.DataFrame], list[str]]:
    """Per symbol of ``segment``: the walk-forward frame (``ts``, ``label_end_ts``, ``label``,
    ``asset_return`` and the features, warm-up rows dropped); and the feature column names."""
    from ml.evaluation.costs import forward_returns
    from ml.features.build import DEFAULT_SEGMENTS, build_features
    from ml.features.labels import make_labels

    features = build_features(candles)
    labels = make_labels(candles, horizon=HORIZON).select(
        "exchange", "symbol", "timeframe", "ts", "label", "label_end_ts")
    names = [c for c in features.columns if c not in ("exchange", "symbol", "timeframe", "ts")]
    segment_of = DEFAULT_SEGMENTS.segments_of(candles.get_column("symbol").unique().sort().to_list())
    frames: dict[str, pl.DataFrame] = {}
    for symbol in sorted(s for s, name in segment_of.items() if name == segment):
        rows = candles.filter(pl.col("symbol") == symbol).sort("ts")
        moves = np.append(forward_returns(rows.get_column("close").to_numpy()), np.nan)
        frame = (
            features.filter(pl.col("symbol") == symbol)
            .join(labels, on=["exchange", "symbol", "timeframe", "ts"], how="left")
            .sort("ts")
            .with_columns(pl.Series("asset_return", moves, nan_to_null=True))
        )
        frames[symbol] = frame.drop_nulls(names)
    return frames, names


def segment_fit(segment: str, names: list[str], seed: int = 0):  # type: ignore[no-untyped-def]
    """``fit(X, y) -> predict_proba`` with the segment's XGBoost (rows arrive in time order, so
    their position orders the early-stopping split)."""
    from ml.features.segments import load_segments
    from ml.models.xgb import fit_segment_model, predict_proba

    params = load_segments(SEGMENTS_YAML).segments[segment].xgboost  # type: ignore[index]

    def fit(x: np.ndarray, y: np.ndarray) -> PredictProba:
        model = fit_segment_model(x, y, np.arange(len(y)), params=params, seed=seed, feature_names=names)
        return lambda rows: predict_proba(model, rows)

    return fit


def run(quick: bool = False) -> None:
    """Print the walk-forward timing (no target); a skip line when the fixtures are absent."""
    from ml.evaluation.walkforward import WalkForwardConfig, walk_forward

    if not FOLDER.is_dir():
        print(f"  skipped: ../shared/fixtures absent ({FOLDER} not found; set SIGNALWORKS_SHARED_FIXTURES)")
        return
    started = time.perf_counter()
    candles = real_candles()
    if quick:
        candles = candles.filter(pl.col("ts") < pl.col("ts").min() + QUICK_END)
    frames, names = segment_frames(candles, SEGMENT)
    prepared = time.perf_counter() - started
    config = WalkForwardConfig(train_length=QUICK_TRAIN if quick else TRAIN, test_length=TEST, mode="rolling",
                               embargo=timedelta(hours=HORIZON + 1))
    fit = segment_fit(SEGMENT, names)
    warm = next(iter(frames.values())).head(200)
    fit(warm.select(names).to_numpy(), warm.get_column("label").fill_null(1).to_numpy().astype(np.int64))  # import
    rows: list[list[object]] = []
    total = 0.0
    reports: dict[str, WalkForwardReport] = {}
    for symbol, frame in frames.items():
        start = time.perf_counter()
        report = walk_forward(frame, feature_columns=names, fit=fit, config=config)
        elapsed = time.perf_counter() - start
        total += elapsed
        reports[symbol] = report
        oos, hold = report.out_of_sample, report.baselines["buy_and_hold"]
        rows.append([symbol, f"{frame.height:,}", report.windows.height, 2 * report.windows.height,
                     f"{elapsed:.1f}", f"{oos.sharpe:.2f}", f"{hold.sharpe:.2f}",
                     f"{report.baselines['permuted_labels'].sharpe:.2f}", f"{oos.total_return:+.1%}"])
    first = next(iter(frames.values()))
    print(f"\nWalk-forward: segment {SEGMENT} ({', '.join(frames)}), real Binance 1h "
          f"{first.get_column('ts').min():%Y-%m-%d} to {first.get_column('ts').max():%Y-%m-%d}")
    print(f"  rolling, {config.train_length.days // 7} weeks train / 4-week test windows, embargo "
          f"{HORIZON + 1} h, {len(names)} features, label horizon {HORIZON} h; the existing single-symbol "
          "walk_forward looped over the segment's symbols (ml.evaluation.segment not merged)")
    print("\n".join(table(("symbol", "rows", "windows", "fits", "seconds", "OOS Sharpe", "buy & hold",
                           "permuted", "OOS return"), rows)))
    print(f"  walk-forward time for the segment: {total:.1f} s "
          f"({total / sum(2 * r.windows.height for r in reports.values()):.2f} s per fit incl. prediction); "
          f"features + labels for the 10 pairs: {prepared:.1f} s (no target: time reported)")


if __name__ == "__main__":
    run()
