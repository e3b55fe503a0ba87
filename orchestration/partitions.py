"""Partitions: candle assets are partitioned by UTC day x exchange; segment reports by segment."""

from __future__ import annotations

from pathlib import Path

from dagster import DailyPartitionsDefinition, MultiPartitionsDefinition, StaticPartitionsDefinition

from assets.models import DEFAULT_SEGMENTS_PATH, SEGMENT_PARTITIONS
from orchestration.settings import Settings

#: The segments file (the seed's lists by default).
SEGMENTS_PATH = Path(DEFAULT_SEGMENTS_PATH)


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


def segment_partitions() -> StaticPartitionsDefinition:
    """One partition per market segment (majors, alts, memes: every segments file names exactly
    these), shared by the models and the reports so their partitions line up."""
    return SEGMENT_PARTITIONS
