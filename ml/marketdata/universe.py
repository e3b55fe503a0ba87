"""Rank an exchange's universe by liquidity and choose which symbols a candle asset tracks."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl


def rank_by_liquidity(markets: pl.DataFrame) -> pl.DataFrame:
    """Add ``liquidity_rank`` (1 = most liquid) per exchange.

    Active markets are ranked by 24h quote volume, descending; markets without a reported volume
    rank after every market with one, then by symbol so ties are deterministic. Inactive markets
    get a null rank: they are listed but never tracked by rank.
    """
    ordered = markets.sort(
        ["exchange", "quote_volume_24h", "symbol"],
        descending=[False, True, False],
        nulls_last=True,
    )
    ranked = ordered.with_columns(
        pl.when(pl.col("active"))
        .then(pl.col("active").cast(pl.Int64).cum_sum().over("exchange"))
        .otherwise(None)
        .alias("liquidity_rank")
    )
    return ranked.sort(["exchange", "symbol"])


def tracked_symbols(
    markets: pl.DataFrame,
    declarations: pl.DataFrame,
    *,
    exchange: str,
    timeframe: str,
    top_n: int,
    market_types: Sequence[str] = ("spot",),
) -> list[str]:
    """The symbols a candle asset of ``timeframe`` tracks on ``exchange``, sorted.

    The ``top_n`` most liquid active markets of ``market_types`` (``top_n == 0`` means all of
    them), plus every symbol declared for this exchange whose ``timeframes`` list contains
    ``timeframe`` (or ``*``), whatever its rank or type.
    """
    universe = markets.filter(
        (pl.col("exchange") == exchange)
        & pl.col("active")
        & pl.col("market_type").is_in(list(market_types))
        & pl.col("liquidity_rank").is_not_null()
    ).sort("liquidity_rank")
    if top_n > 0:
        universe = universe.head(top_n)
    chosen = set(universe.get_column("symbol").to_list())
    declared = declarations.filter(pl.col("exchange") == exchange)
    for symbol, timeframes in declared.select("symbol", "timeframes").iter_rows():
        wanted = {part.strip() for part in (timeframes or "").split(",")}
        if timeframe in wanted or "*" in wanted:
            chosen.add(symbol)
    return sorted(chosen)
