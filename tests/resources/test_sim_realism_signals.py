"""The simulated market carries the structures the strategies trade, on any date.

For 12 fixed dates spread over two years, a day of 1m candles of the 60 most liquid ``sim``
symbols (spot and perps, ranked by 24h quote volume as the 1m universe is) gives at least one
break-of-structure signal with the seed configuration (:data:`ml.strategies.bos.SEED_CONFIG`),
and the same symbols' 15m + 1h candles give at least one EMA-crossover signal with the default
configuration. The strategies are used as they are: the market is what makes this pass.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from ml.strategies.bos import SEED_CONFIG, detect_bos
from ml.strategies.ema_cross import EmaCrossConfig, detect_ema_cross
from resources.exchanges.sim import SimExchange

DATES = [datetime(2024, 1, 9, tzinfo=UTC) + timedelta(days=61 * i) for i in range(12)]
TOP = 60


def candles(exchange: SimExchange, symbols: list[str], timeframe: str, start: datetime, end: datetime) -> pl.DataFrame:
    return pl.concat(
        exchange.fetch_ohlcv(symbol, timeframe, start, end).with_columns(
            exchange=pl.lit(exchange.name), symbol=pl.lit(symbol), timeframe=pl.lit(timeframe)
        )
        for symbol in symbols
    )


@pytest.mark.parametrize("day", DATES, ids=[d.date().isoformat() for d in DATES])
def test_every_date_has_bos_and_ema_cross_signals(day: datetime) -> None:
    end = day + timedelta(days=1)
    exchange = SimExchange("sim", seed=42, clock=lambda: end)
    markets = exchange.load_markets().sort("quote_volume_24h", descending=True)
    symbols = markets["symbol"].head(TOP).to_list()
    assert len(symbols) == TOP

    minutes = candles(exchange, symbols, "1m", day - timedelta(minutes=30), end)
    bos = [s for s in detect_bos(minutes, SEED_CONFIG) if s.trigger_ts >= day]
    warm_up = day - timedelta(days=3)
    ema = [
        s
        for s in detect_ema_cross(
            candles(exchange, symbols, "15m", warm_up, end), candles(exchange, symbols, "1h", warm_up, end), EmaCrossConfig()
        )
        if s.trigger_ts >= day
    ]
    assert len(bos) >= 1, f"{day.date()}: no BOS signal over {TOP} symbols"
    assert len(ema) >= 1, f"{day.date()}: no EMA-cross signal over {TOP} symbols"
    assert all(s.trigger_ts < end for s in bos + ema)
