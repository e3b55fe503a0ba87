"""Calibration of out-of-sample walk-forward probabilities, before and after temperature scaling.

Walk-forward honest: the temperature applied to window ``k``'s predictions is fitted
(:func:`ml.models.calibration.fit_temperature`) on the predictions of window ``k - 1`` whose
labels were known when window ``k`` began (``label_end_ts <= `` its first ``ts``): held-out rows
the model was not trained on, all in the past. Window 0 has no earlier window and is left out of
both curves, so "before" and "after" describe the same rows.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import polars as pl

from ml.models.calibration import (
    apply_temperature,
    brier_score,
    expected_calibration_error,
    fit_temperature,
    reliability_table,
)

PROBABILITIES = ["p_down", "p_flat", "p_up"]


@dataclass(frozen=True)
class OutOfSampleCalibration:
    """Reliability tables and scores of the same rows before and after temperature scaling.

    ``temperatures``: window index -> fitted temperature (windows with too few earlier labelled
    rows keep temperature 1, i.e. are left uncalibrated, and are listed in ``uncalibrated``).
    """

    rows: int
    before: pl.DataFrame
    after: pl.DataFrame
    brier_before: float
    brier_after: float
    ece_before: float
    ece_after: float
    temperatures: dict[int, float]
    uncalibrated: tuple[int, ...]

    def to_dict(self) -> dict[str, object]:
        return {"rows": self.rows, "brier_before": self.brier_before, "brier_after": self.brier_after,
                "ece_before": self.ece_before, "ece_after": self.ece_after,
                "temperatures": {str(k): v for k, v in self.temperatures.items()},
                "uncalibrated_windows": list(self.uncalibrated)}


def out_of_sample_calibration(predictions: pl.DataFrame, *, n_bins: int = 10,
                              min_rows: int = 30) -> OutOfSampleCalibration | None:
    """Calibration of ``predictions`` (columns ``window``, ``ts``, ``label``, ``label_end_ts``,
    ``p_down``, ``p_flat``, ``p_up``; as :attr:`ml.evaluation.segment.SegmentWalkForward.predictions`).

    Returns None when no window after the first has a labelled row (nothing to assess).
    ``min_rows``: fewest earlier labelled rows to fit a temperature on.
    """
    labelled = predictions.filter(pl.col("label").is_not_null()).sort("window", "ts")
    windows = sorted(set(labelled.get_column("window").to_list()))
    before_parts, after_parts, labels = [], [], []
    temperatures: dict[int, float] = {}
    uncalibrated: list[int] = []
    for previous, window in itertools.pairwise(windows):
        rows = labelled.filter(pl.col("window") == window)
        start = predictions.filter(pl.col("window") == window).get_column("ts").min()
        history = labelled.filter((pl.col("window") == previous) & (pl.col("label_end_ts") <= start))
        proba = rows.select(PROBABILITIES).to_numpy()
        if history.height >= min_rows:
            scaler = fit_temperature(history.select(PROBABILITIES).to_numpy(),
                                     history.get_column("label").to_numpy().astype(np.int64))
            temperatures[window] = scaler.temperature
        else:
            temperatures[window] = 1.0
            uncalibrated.append(window)
        before_parts.append(proba)
        after_parts.append(apply_temperature(proba, temperatures[window]))
        labels.append(rows.get_column("label").to_numpy().astype(np.int64))
    if not labels or sum(part.size for part in labels) == 0:
        return None
    before, after, y = np.vstack(before_parts), np.vstack(after_parts), np.concatenate(labels)
    return OutOfSampleCalibration(
        rows=int(y.size), before=reliability_table(before, y, n_bins), after=reliability_table(after, y, n_bins),
        brier_before=brier_score(before, y), brier_after=brier_score(after, y),
        ece_before=expected_calibration_error(before, y, n_bins), ece_after=expected_calibration_error(after, y, n_bins),
        temperatures=temperatures, uncalibrated=tuple(uncalibrated))


__all__ = ["OutOfSampleCalibration", "out_of_sample_calibration"]
