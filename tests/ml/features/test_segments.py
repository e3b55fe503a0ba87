"""Segments: the YAML file equals the seed defaults; the rule for unlisted symbols."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from ml.features import SEGMENT_IDS, SegmentsConfig, load_segments
from ml.features.segments import SegmentSpec, base_asset

CONFIG = Path(__file__).resolve().parents[3] / "config" / "segments.yaml"


def test_the_config_file_is_the_seed_specification() -> None:
    config = load_segments(CONFIG)
    assert config == SegmentsConfig()
    got = {name: (spec.threshold, spec.xgboost.n_estimators, spec.xgboost.learning_rate,
                  spec.xgboost.max_depth, spec.xgboost.subsample) for name, spec in config.segments.items()}
    assert got == {"majors": (0.005, 200, 0.03, 8, 0.8), "alts": (0.008, 200, 0.05, 7, 0.8),
                   "memes": (0.015, 200, 0.08, 6, 0.5)}
    assert set(config.segments["alts"].bases) == {"SOL", "AVAX", "LINK", "DOT", "MATIC", "NEAR", "ARB", "OP"}


@pytest.mark.parametrize(("symbol", "rank", "segment"), [
    ("BTC/USDT", None, "majors"),
    ("eth/usdt", None, "majors"),
    ("BNB/USDT:USDT", 900, "majors"),
    ("ARB/USDC", None, "alts"),
    ("1000PEPE/USDT:USDT", None, "memes"),
    ("WIF/USDT", 3, "memes"),
    ("TON/USDT", 12, "alts"),  # unlisted, liquid
    ("TON/USDT", 50, "alts"),
    ("TON/USDT", 51, "memes"),  # unlisted, beyond the rank limit
    ("TON/USDT", None, "memes"),  # unlisted, rank unknown
])
def test_segment_of(symbol: str, rank: int | None, segment: str) -> None:
    assert SegmentsConfig().segment_of(symbol, rank) == segment


def test_base_asset_strips_quote_settle_and_multiplier() -> None:
    assert [base_asset(s) for s in ("BTC/USDT", "1000SHIB/USDT:USDT", "1000000MOG/USDT", "1INCH/USDT")] == [
        "BTC", "SHIB", "MOG", "1INCH"]


def test_configs_are_frozen_and_checked(tmp_path: Path) -> None:
    config = SegmentsConfig()
    with pytest.raises(ValidationError):
        config.unlisted_alt_max_rank = 3  # type: ignore[misc]
    spec = SegmentSpec(bases=("BTC",), threshold=0.01)
    with pytest.raises(ValidationError, match="both"):
        SegmentsConfig(segments={"majors": spec, "alts": spec, "memes": SegmentSpec(bases=(), threshold=0.02)})
    with pytest.raises(ValidationError, match="lacks"):
        SegmentsConfig(segments={"majors": spec})
    bad = tmp_path / "segments.yaml"
    bad.write_text("segments:\n  majors: {bases: [BTC], threshold: 2.0}\n")
    with pytest.raises(ValueError, match=r"segments\.yaml"):
        load_segments(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ValueError, match="expected a mapping"):
        load_segments(bad)
    assert sorted(SEGMENT_IDS.values()) == [0, 1, 2]
