"""A trained segment survives the trip to bytes: same predictions, same bytes twice, damage refused."""

from __future__ import annotations

import numpy as np
import pytest

from ml.models.artifacts import ArtifactFormatError
from ml.models.bundle import dump_trained_segment, load_trained_segment
from ml.models.training import TrainedSegment, predict_rows
from tests.ml.models.test_training import build, candles, trained  # noqa: F401  (module fixtures)


def test_round_trip_predicts_exactly_the_same(candles, trained: TrainedSegment) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    payload = dump_trained_segment(trained)
    assert dump_trained_segment(trained) == payload  # deterministic bytes
    loaded = load_trained_segment(payload)
    assert (loaded.version, loaded.feature_names, loaded.calibrator) == (trained.version, trained.feature_names,
                                                                         trained.calibrator)
    assert loaded.metrics == trained.metrics and loaded.split == trained.split
    assert loaded.reliability_calibrated.equals(trained.reliability_calibrated)
    features = build(candles)
    np.testing.assert_array_equal(predict_rows(loaded, features, candles).select("p_down", "p_flat", "p_up").to_numpy(),
                                  predict_rows(trained, features, candles).select("p_down", "p_flat", "p_up").to_numpy())


def test_damaged_bundle_is_refused(trained: TrainedSegment) -> None:  # noqa: F811
    payload = dump_trained_segment(trained)
    with pytest.raises(ArtifactFormatError):
        load_trained_segment(payload[: len(payload) // 2])
    with pytest.raises(ArtifactFormatError):
        load_trained_segment(b"not a zip")
