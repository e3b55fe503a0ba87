"""Partitions: candle assets are partitioned by UTC day x exchange."""

from __future__ import annotations

from dagster import DailyPartitionsDefinition, MultiPartitionsDefinition, StaticPartitionsDefinition

from orchestration.settings import Settings


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
