"""Liquidity ranking and the choice of tracked symbols."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from ml.marketdata.frames import MARKET_SCHEMA, TS
from ml.marketdata.universe import rank_by_liquidity, tracked_symbols


def _markets() -> pl.DataFrame:
    rows = [
        ("x", "BTC/USDT", "spot", True, 5e9),
        ("x", "ETH/USDT", "spot", True, 2e9),
        ("x", "DOGE/USDT", "spot", True, None),
        ("x", "OLD/USDT", "spot", False, 9e9),
        ("x", "BTC/USDT:USDT", "swap", True, 9e9),
        ("y", "SOL/USDT", "spot", True, 1e6),
    ]
    return pl.DataFrame(
        [
            {"exchange": e, "symbol": s, "base": s.split("/")[0], "quote": "USDT", "settle": None,
             "market_type": t, "is_spot": t == "spot", "contract": t == "swap", "active": a,
             "quote_volume_24h": v}
            for e, s, t, a, v in rows
        ],
        schema=MARKET_SCHEMA,
    )


def test_rank_orders_active_markets_by_volume_nulls_last() -> None:
    ranked = rank_by_liquidity(_markets())
    ranks = dict(zip(ranked.get_column("symbol"), ranked.get_column("liquidity_rank"), strict=True))
    assert ranks == {"BTC/USDT:USDT": 1, "BTC/USDT": 2, "ETH/USDT": 3, "DOGE/USDT": 4, "OLD/USDT": None,
                     "SOL/USDT": 1}


def test_tracked_symbols_top_n_and_declarations() -> None:
    ranked = rank_by_liquidity(_markets())
    declarations = pl.DataFrame(
        {"exchange": ["x", "x"], "symbol": ["OLD/USDT", "BTC/USDT:USDT"], "timeframes": ["1m", "*"],
         "reason": [None, None], "created_at": [datetime(2024, 1, 1, tzinfo=UTC)] * 2},
    ).with_columns(pl.col("created_at").cast(TS))
    assert tracked_symbols(ranked, declarations, exchange="x", timeframe="1h", top_n=1) == [
        "BTC/USDT", "BTC/USDT:USDT"]
    assert tracked_symbols(ranked, declarations, exchange="x", timeframe="1m", top_n=2) == [
        "BTC/USDT", "BTC/USDT:USDT", "ETH/USDT", "OLD/USDT"]
    assert tracked_symbols(ranked, declarations.clear(), exchange="x", timeframe="1h", top_n=0) == [
        "BTC/USDT", "DOGE/USDT", "ETH/USDT"]
    assert tracked_symbols(ranked, declarations.clear(), exchange="x", timeframe="1h", top_n=0,
                           market_types=("spot", "swap")) == ["BTC/USDT", "BTC/USDT:USDT", "DOGE/USDT", "ETH/USDT"]
