"""Plots: a valid PNG of the fixed size, equal bytes for equal input, different bytes for different
input, and a clear error on empty or mismatched input."""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from ml.models.calibration import reliability_table
from ml.reporting.plots import (
    DPI,
    FIGURE_SIZE,
    distribution_png,
    drawdown_png,
    equity_curves_png,
    regime_timeline_png,
    reliability_png,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
N = 300
TS = [datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=i) for i in range(N)]


def returns(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 0.01, N)


def tables(seed: int) -> dict[str, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(3), size=500)
    y = rng.integers(0, 3, size=500)
    sharper = proba**2 / (proba**2).sum(axis=1, keepdims=True)
    return {"before calibration": reliability_table(sharper, y), "after calibration": reliability_table(proba, y)}


def regimes(seed: int) -> list[str]:
    states = ["Bull trend", "Bear trend", "Sideways", "High volatility"]
    rng = np.random.default_rng(seed)
    return [states[i] for i in np.repeat(rng.integers(0, 4, N // 30), 30)]


PLOTS: dict[str, Callable[[int], bytes]] = {
    "equity": lambda s: equity_curves_png(TS, {"strategy": returns(s), "buy_and_hold": returns(s + 1),
                                               "always_flat": np.zeros(N), "permuted_labels": returns(s + 2)}),
    "drawdown": lambda s: drawdown_png(pl.Series("ts", TS), returns(s)),
    "reliability": lambda s: reliability_png(tables(s)),
    "regimes": lambda s: regime_timeline_png(TS, 100 * np.exp(np.cumsum(returns(s))), regimes(s)),
    "distribution": lambda s: distribution_png(np.random.default_rng(s).normal(size=2000), xlabel="drawdown"),
}


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("name", sorted(PLOTS))
def test_plot_is_a_deterministic_png_of_the_fixed_size(name: str) -> None:
    first = PLOTS[name](1)
    assert png_size(first) == (int(FIGURE_SIZE[0] * DPI), int(FIGURE_SIZE[1] * DPI))
    assert first.endswith(b"IEND\xaeB`\x82")
    assert PLOTS[name](1) == first
    assert PLOTS[name](2) != first


@pytest.mark.parametrize(("call", "message"), [
    (lambda: equity_curves_png([], {"strategy": []}), "ts is empty"),
    (lambda: equity_curves_png(TS, {}), "net_returns is empty"),
    (lambda: equity_curves_png(TS, {"strategy": returns(1)[:-1]}), "299 values for 300 timestamps"),
    (lambda: drawdown_png(TS, np.full(N, np.nan)), "non-finite value at index 0"),
    (lambda: reliability_png({}), "tables is empty"),
    (lambda: reliability_png({"x": reliability_table(np.eye(3), np.arange(3)).head(0)}), "no non-empty bin"),
    (lambda: regime_timeline_png(TS, np.ones(N), ["Bull"] * 3), "3 labels for 300 timestamps"),
    (lambda: distribution_png([]), "non-empty"),
    (lambda: distribution_png([1.0, 2.0], quantiles=(1.5,)), "quantiles must lie in"),
])
def test_plot_refuses_empty_or_mismatched_input(call: Callable[[], bytes], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_naive_and_aware_timestamps_mean_the_same_utc_instant() -> None:
    kolkata = timezone(timedelta(hours=5, minutes=30))  # a fixed offset: the same on any machine and date
    aware_elsewhere = [t.astimezone(kolkata) for t in TS]
    naive_utc = np.array([t.replace(tzinfo=None) for t in TS], dtype="datetime64[ms]")
    assert drawdown_png(aware_elsewhere, returns(3)) == drawdown_png(naive_utc, returns(3))
