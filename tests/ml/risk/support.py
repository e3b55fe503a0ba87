"""Real Binance 1h closes (../shared/fixtures/binance_2024, freqtrade feather files)."""

from __future__ import annotations

import numpy as np
import polars as pl

from tests.support.fixtures import shared_fixtures_dir


def binance_frame(pair: str) -> pl.DataFrame:
    """``date`` and ``close`` of ``<pair>-1h.feather`` (e.g. ``BTC_USDT``), sorted by date."""
    path = shared_fixtures_dir() / "binance_2024" / f"{pair}-1h.feather"
    return pl.read_ipc(path).select("date", "close").sort("date")


def binance_closes(pair: str) -> np.ndarray:
    return binance_frame(pair).get_column("close").to_numpy().astype(float)
