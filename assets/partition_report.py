"""Report a partitioned step's partitions one by one, and only those whose data is stored.

Candle-like assets run a whole range of (day x exchange) partitions in one step (single-run
backfills). Returned as one ``MaterializeResult``, Dagster 1.13 records every partition of the
range as materialised with the run's metadata, stored or not. Here:

* every partition of the step stored: one ``MaterializeResult`` whose events carry each
  partition's own metadata (``context.add_asset_metadata(..., partition_key=...)``). The output
  is what lets the downstream steps of the same run (multi-timeframe candles, indicators, checks)
  run; Dagster emits its events in the order of its partition set, which no public API orders.
* some partition without data: an ``AssetMaterialization`` per stored partition, in time order,
  then a :class:`dagster.Failure` naming the others. Dagster then shows the stored days as
  materialised and the others as failed (planned in a failed run, never materialised).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetMaterialization,
    Failure,
    MaterializeResult,
    MetadataValue,
    MultiPartitionKey,
)

#: Dagster's tag prefix naming each dimension of a multi-partition key on an asset event (the
#: events Dagster emits itself carry them; the UI filters partitions by them).
_DIMENSION_TAG = "dagster/partition/"
#: Failures shown in metadata per partition (the count is always complete).
MAX_LISTED_FAILURES = 50


@dataclass(frozen=True)
class PartitionOutcome:
    """One (day, exchange) partition: its own figures, and why it has no data (``None``: stored)."""

    day: str
    exchange: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    missing: str | None = None

    @property
    def key(self) -> MultiPartitionKey:
        return MultiPartitionKey({"date": self.day, "exchange": self.exchange})


def listed_failures(failures: Mapping[str, str]) -> MetadataValue:
    """The first :data:`MAX_LISTED_FAILURES` failures as JSON metadata (sorted by key)."""
    return MetadataValue.json(dict(sorted(failures.items())[:MAX_LISTED_FAILURES]))


def report_partitions(
    context: AssetExecutionContext,
    outcomes: Iterable[PartitionOutcome],
    *,
    problems: Sequence[str] = (),
) -> Iterator[AssetMaterialization | MaterializeResult]:
    """Yield the step's partition events; raise :class:`Failure` if any partition has no data.

    ``problems`` (e.g. "binance: unreachable since ...") lead the failure message.
    """
    ordered = sorted(outcomes, key=lambda o: (o.day, o.exchange))
    missing = [o for o in ordered if o.missing is not None]
    stored = [o for o in ordered if o.missing is None]
    if not missing:
        for outcome in stored:
            context.add_asset_metadata(dict(outcome.metadata), partition_key=outcome.key)
        yield MaterializeResult()
        return
    for outcome in stored:
        yield AssetMaterialization(
            asset_key=context.asset_key, partition=outcome.key, metadata=dict(outcome.metadata),
            tags={f"{_DIMENSION_TAG}{dim}": value for dim, value in outcome.key.keys_by_dimension.items()},
        )
    asset = context.asset_key.to_user_string()
    lines = [
        f"{asset}: no data stored for {len(missing)} of {len(ordered)} partitions"
        f" ({len(stored)} stored and reported materialised).",
        *problems,
        *(f"{o.key}: {o.missing}" for o in missing[:MAX_LISTED_FAILURES]),
    ]
    if len(missing) > MAX_LISTED_FAILURES:
        lines.append(f"... and {len(missing) - MAX_LISTED_FAILURES} more partitions")
    raise Failure(
        description="\n".join(lines),
        metadata={
            "missing_partitions": MetadataValue.json([str(o.key) for o in missing]),
            "stored_partitions": MetadataValue.json([str(o.key) for o in stored]),
        },
    )
