"""Parameters (frozen, hashed), the output schema, warm-ups and the look-back."""

from __future__ import annotations

import math

import polars as pl
import pydantic
import pytest

from ml.indicators import (
    INDICATOR_COLUMNS,
    IndicatorParams,
    compute_indicators,
    indicator_columns,
    lookback_bars,
    warmup_bars,
)
from ml.indicators.schema import LOOKBACK_TOLERANCE, decay_bars
from tests.support.builders import make_candles


def test_defaults_are_the_seed_suites() -> None:
    p = IndicatorParams()
    assert p.ema_periods == (9, 10, 21, 36, 200)
    assert p.sma_periods == (50, 200)
    assert (p.ehma_period, p.ehma_half, p.ehma_root) == (180, 90, 13)
    assert (p.macd_fast, p.macd_slow, p.macd_signal) == (12, 26, 9)
    assert (p.adx_period, p.supertrend_period, p.supertrend_multiplier) == (14, 7, 3.0)
    assert p.rsi_periods == (14, 7)
    assert (p.bb_period, p.bb_stddev, p.atr_period, p.volume_sma_period) == (20, 2.0, 14, 20)
    assert p.td_lookback == 4


def test_params_are_frozen_and_strict() -> None:
    p = IndicatorParams()
    with pytest.raises(pydantic.ValidationError):
        p.bb_period = 30  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        IndicatorParams(unknown=1)  # type: ignore[call-arg]
    for bad in (
        {"ema_periods": (9, 9)},
        {"macd_fast": 30},
        {"trend_ema": 50},
        {"ema_crosses": ((21, 9),)},
        {"divergence_rsi": 21},
        {"bb_period": 1},
    ):
        with pytest.raises(pydantic.ValidationError):
            IndicatorParams(**bad)


def test_version_is_a_stable_hash_of_the_content() -> None:
    assert IndicatorParams().version == IndicatorParams().version
    assert IndicatorParams().version == "e681ac6df38e4ad6"  # pinned: changes only with the defaults or DEFINITIONS_REVISION
    assert IndicatorParams(bb_stddev=2.5).version != IndicatorParams().version
    assert hash(IndicatorParams()) == hash(IndicatorParams())


def test_output_schema_is_the_declared_one() -> None:
    out = compute_indicators(make_candles(300, symbols=("A/USDT", "B/USDT")))
    assert out.schema == pl.Schema(INDICATOR_COLUMNS)
    assert list(INDICATOR_COLUMNS)[:4] == ["exchange", "symbol", "timeframe", "ts"]
    assert set(INDICATOR_COLUMNS) - {"exchange", "symbol", "timeframe", "ts"} == set(warmup_bars(IndicatorParams()))


def test_schema_follows_the_parameters() -> None:
    params = IndicatorParams(ema_periods=(5, 50), trend_ema=50, ema_crosses=((5, 50),), rsi_periods=(10,), divergence_rsi=10)
    out = compute_indicators(make_candles(120), params=params)
    assert out.schema == pl.Schema(indicator_columns(params))
    assert {"ema_5", "ema_50", "diff_ema50_pct", "ema_5_50_cross_up", "rsi_10"} <= set(out.columns)


def test_lookback_bars_is_the_ema200_seed_decay() -> None:
    k = decay_bars(2 / 201)
    assert (1 - 2 / 201) ** k <= LOOKBACK_TOLERANCE < (1 - 2 / 201) ** (k - 1)
    assert lookback_bars(IndicatorParams()) == 199 + k == 2963
    assert lookback_bars(IndicatorParams(ema_periods=(9, 21), trend_ema=21, ema_crosses=((9, 21),))) < 2963
    assert math.isclose(math.log(LOOKBACK_TOLERANCE) / math.log(1 - 2 / 201), k, abs_tol=1)
