"""Partitions: candle assets are partitioned by UTC day x exchange; segment reports by segment."""

from __future__ import annotations

from pathlib import Path

from dagster import DailyPartitionsDefinition, MultiPartitionsDefinition, StaticPartitionsDefinition

from ml.features.segments import load_segments
from orchestration.settings import Settings

#: The segments file (the seed's lists): its segment names are the segment partitions.
SEGMENTS_PATH = Path(__file__).resolve().parents[1] / "config" / "segments.yaml"


def candle_partitions(settings: Settings) -> MultiPartitionsDefinition:
    """``date`` (UTC days from the start date, today included) x ``exchange``.

    ``end_offset=1`` makes today's partition exist, so the hourly schedule can fill it with the
    candles that have closed so far; re-materialising later completes it.
    """
    return MultiPartitionsDefinition(
        {
            "date": DailyPartitionsDefinition(
                start_date=settings.start_date.isoformat(), end_offset=1, timezone="UTC"
            ),
            "exchange": StaticPartitionsDefinition(list(settings.exchanges)),
        }
    )


def segment_partitions(path: Path = SEGMENTS_PATH) -> StaticPartitionsDefinition:
    """One partition per market segment of ``path`` (majors, alts, memes by default)."""
    return StaticPartitionsDefinition(list(load_segments(path).segments))
