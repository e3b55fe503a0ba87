"""Features, labels and walk-forward splits for the models: pure polars, all symbols at once."""

from ml.features.build import build_features
from ml.features.config import FeatureConfig
from ml.features.labels import LABEL_DOWN, LABEL_FLAT, LABEL_NAMES, LABEL_UP, make_labels
from ml.features.segments import SEGMENT_IDS, SegmentsConfig, load_segments
from ml.features.splits import (
    Interval,
    WalkForwardWindow,
    training_mask,
    walk_forward_split,
    walk_forward_windows,
)

__all__ = [
    "LABEL_DOWN", "LABEL_FLAT", "LABEL_NAMES", "LABEL_UP", "SEGMENT_IDS", "FeatureConfig", "Interval",
    "SegmentsConfig", "WalkForwardWindow", "build_features", "load_segments", "make_labels",
    "training_mask", "walk_forward_split", "walk_forward_windows",
]
