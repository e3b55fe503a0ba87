"""Which stored symbols a segment's report covers, and a segments config that agrees with it.

A segment's members are the symbols that :meth:`SegmentsConfig.segment_of` puts in it, given their
liquidity ranks (the unlisted-symbol rule needs them). Order: the bases the config lists first,
then by liquidity rank (unknown ranks last), then by symbol; at most ``max_symbols``. Bounding the
count bounds a report's run time on a universe of hundreds of symbols.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import polars as pl

from ml.features.segments import SegmentsConfig, base_asset


def segment_members(symbols: Iterable[str], *, segment: str, segments: SegmentsConfig,
                    liquidity_ranks: Mapping[str, int] | None = None, max_symbols: int) -> list[str]:
    """The members of ``segment`` among ``symbols`` (module docstring), at most ``max_symbols``.

    Raises ``ValueError`` for an unknown segment or ``max_symbols < 1``.
    """
    if segment not in segments.segments:
        raise ValueError(f"unknown segment {segment!r}; known: {sorted(segments.segments)}")
    if max_symbols < 1:
        raise ValueError(f"max_symbols must be at least 1, got {max_symbols}")
    ranks = dict(liquidity_ranks or {})
    listed = {base.upper() for base in segments.segments[segment].bases}  # type: ignore[index]
    members = [s for s in set(symbols) if segments.segment_of(s, ranks.get(s)) == segment]
    members.sort(key=lambda s: (base_asset(s) not in listed, ranks.get(s) is None, ranks.get(s, 0), s))
    return members[:max_symbols]


def with_members(segments: SegmentsConfig, segment: str, symbols: Iterable[str]) -> SegmentsConfig:
    """``segments`` with the bases of ``symbols`` that no segment lists added to ``segment``'s list,
    so that a function classifying without liquidity ranks agrees with :func:`segment_members`.

    Raises ``ValueError`` when one of ``symbols`` is listed in another segment.
    """
    spec = segments.segments[segment]  # type: ignore[index]
    added: list[str] = []
    for symbol in symbols:
        base = base_asset(symbol)
        owner = next((name for name, other in segments.segments.items()
                      if base in {b.upper() for b in other.bases}), None)
        if owner is None and base not in added:
            added.append(base)
        elif owner is not None and owner != segment:
            raise ValueError(f"{symbol} is listed in segment {owner!r}, not {segment!r}")
    if not added:
        return segments
    widened = spec.model_copy(update={"bases": (*spec.bases, *added)})
    return segments.model_copy(update={"segments": {**segments.segments, segment: widened}})


def screen_candles(candles: pl.DataFrame, *, min_candles: int) -> tuple[pl.DataFrame, dict[str, str]]:
    """(the candles of the usable symbols, unusable symbol -> why).

    A symbol is unusable with fewer than ``min_candles`` candles, or with a close, open, high or
    low that is not a positive finite number (a price series no return can be computed from).
    """
    prices = ("open", "high", "low", "close")
    per_symbol = candles.group_by("symbol").agg(
        pl.len().alias("rows"),
        pl.any_horizontal([~(pl.col(c).is_finite() & (pl.col(c) > 0)) for c in prices]).any().alias("bad_price"))
    problems: dict[str, str] = {}
    for symbol, rows, bad_price in per_symbol.sort("symbol").iter_rows():
        if bad_price:
            problems[symbol] = "a price that is not a positive finite number"
        elif rows < min_candles:
            problems[symbol] = f"{rows} candles in the window, fewer than the {min_candles} needed"
    return candles.filter(~pl.col("symbol").is_in(list(problems))), problems
