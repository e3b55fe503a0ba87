"""Out-of-sample calibration: each window's temperature comes from the previous window's labels
known before it starts, and it corrects a planted overconfidence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from ml.evaluation.oos_calibration import out_of_sample_calibration

START = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def predictions(seed: int, *, windows: int = 3, rows: int = 400, sharpen: float = 3.0) -> pl.DataFrame:
    """Labels drawn from true probabilities; the model reports them sharpened (overconfident)."""
    rng = np.random.default_rng(seed)
    n = windows * rows
    true = rng.dirichlet(np.ones(3) * 2, size=n)
    labels = np.array([rng.choice(3, p=p) for p in true])
    sharp = true**sharpen / (true**sharpen).sum(axis=1, keepdims=True)
    ts = [START + i * HOUR for i in range(n)]
    return pl.DataFrame({
        "window": np.repeat(np.arange(windows), rows), "ts": ts, "label": labels,
        "label_end_ts": [t + 5 * HOUR for t in ts],
        "p_down": sharp[:, 0], "p_flat": sharp[:, 1], "p_up": sharp[:, 2],
    })


def test_temperature_softens_an_overconfident_model_out_of_sample() -> None:
    result = out_of_sample_calibration(predictions(1))
    assert result is not None and result.rows == 800  # window 0 only calibrates window 1
    assert set(result.temperatures) == {1, 2} and all(t > 1.5 for t in result.temperatures.values())
    assert result.ece_after < result.ece_before / 2
    assert result.brier_after < result.brier_before
    assert result.before["count"].sum() == result.after["count"].sum() == 800


def test_labels_not_yet_known_when_a_window_starts_do_not_calibrate_it() -> None:
    frame = predictions(2)
    base = out_of_sample_calibration(frame)
    # the last 4 rows of window 0 end their label after window 1 starts (horizon 5 h): flip them
    window_start = frame.filter(pl.col("window") == 1)["ts"].min()
    unknown = (pl.col("window") == 0) & (pl.col("label_end_ts") > window_start)
    assert frame.filter(unknown).height == 4
    flipped = frame.with_columns(pl.when(unknown).then((pl.col("label") + 1) % 3).otherwise(pl.col("label"))
                                 .alias("label"))
    again = out_of_sample_calibration(flipped)
    assert again is not None and base is not None
    assert again.temperatures[1] == base.temperatures[1]
    known = (pl.col("window") == 0) & (pl.col("ts") < START + 10 * HOUR)
    changed = frame.with_columns(pl.when(known).then((pl.col("label") + 1) % 3).otherwise(pl.col("label"))
                                 .alias("label"))
    assert out_of_sample_calibration(changed).temperatures[1] != base.temperatures[1]  # type: ignore[union-attr]


def test_nothing_to_assess_with_one_window() -> None:
    assert out_of_sample_calibration(predictions(3, windows=1)) is None
