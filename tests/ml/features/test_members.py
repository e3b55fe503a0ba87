"""Segment members: the unlisted-symbol rule with liquidity ranks, the order and the cap; a config
that agrees without ranks; screening of unusable symbols."""

from __future__ import annotations

import polars as pl
import pytest

from ml.features.members import screen_candles, segment_members, with_members
from ml.features.segments import SegmentsConfig
from tests.support.builders import make_candles

SEGMENTS = SegmentsConfig()
STORED = ["BTC/USDT", "ETH/USDT", "XRP/USDT", "SOL/USDT", "ARB/USDT", "ATOM/USDT", "GLORP/USDT", "DOGE/USDT",
          "1000PEPE/USDT:USDT"]
RANKS = {"XRP/USDT": 4, "ATOM/USDT": 30, "SOL/USDT": 5, "ARB/USDT": 40, "GLORP/USDT": 400, "DOGE/USDT": 8}


@pytest.mark.parametrize(("segment", "max_symbols", "expected"), [
    ("majors", 8, ["BTC/USDT", "ETH/USDT"]),
    # listed bases first (by rank), then the unlisted that rank within the top 50
    ("alts", 8, ["SOL/USDT", "ARB/USDT", "XRP/USDT", "ATOM/USDT"]),
    ("alts", 3, ["SOL/USDT", "ARB/USDT", "XRP/USDT"]),
    # unknown rank sorts last among the listed; an unlisted symbol ranked below 50 is a meme
    ("memes", 8, ["DOGE/USDT", "1000PEPE/USDT:USDT", "GLORP/USDT"]),
])
def test_members_by_rule_order_and_cap(segment: str, max_symbols: int, expected: list[str]) -> None:
    assert segment_members(STORED, segment=segment, segments=SEGMENTS, liquidity_ranks=RANKS,
                           max_symbols=max_symbols) == expected


def test_without_ranks_every_unlisted_symbol_is_a_meme() -> None:
    assert segment_members(STORED, segment="alts", segments=SEGMENTS, max_symbols=8) == ["ARB/USDT", "SOL/USDT"]


def test_with_members_makes_rankless_classification_agree() -> None:
    members = segment_members(STORED, segment="alts", segments=SEGMENTS, liquidity_ranks=RANKS, max_symbols=8)
    widened = with_members(SEGMENTS, "alts", members)
    assert {s for s, name in widened.segments_of(STORED).items() if name == "alts"} == set(members)
    assert widened.segments["majors"] == SEGMENTS.segments["majors"]
    with pytest.raises(ValueError, match="BTC/USDT is listed in segment 'majors'"):
        with_members(SEGMENTS, "alts", ["BTC/USDT"])
    with pytest.raises(ValueError, match="unknown segment 'bonds'"):
        segment_members(STORED, segment="bonds", segments=SEGMENTS, max_symbols=1)


def test_screen_candles_names_short_and_broken_symbols() -> None:
    candles = make_candles(50, symbols=("BTC/USDT", "ETH/USDT", "NEW/USDT"), seed=1)
    candles = candles.filter((pl.col("symbol") != "NEW/USDT") | (pl.col("ts") < pl.col("ts").min() + pl.duration(hours=5)))
    candles = candles.with_columns(pl.when((pl.col("symbol") == "ETH/USDT") & (pl.col("ts") == pl.col("ts").max()))
                                   .then(0.0).otherwise(pl.col("low")).alias("low"))
    kept, problems = screen_candles(candles, min_candles=20)
    assert problems == {"ETH/USDT": "a price that is not a positive finite number",
                        "NEW/USDT": "5 candles in the window, fewer than the 20 needed"}
    assert kept.get_column("symbol").unique().to_list() == ["BTC/USDT"] and kept.height == 50
