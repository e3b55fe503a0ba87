"""The market-signal run config is generated from the strategies' pydantic configs: every tunable
parameter with its default and description, nothing fixed, and the model's bounds enforced."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, Field, PositiveInt, ValidationError

from assets.market_signals import BosStrategyConfig, EmaCrossStrategyConfig, MarketSignalsConfig
from assets.strategy_config import strategy_run_config
from ml.strategies.bos import BosConfig
from ml.strategies.ema_cross import EmaCrossConfig


@pytest.mark.parametrize(("run_config", "model", "fixed"), [
    (BosStrategyConfig, BosConfig, {"interval"}),
    (EmaCrossStrategyConfig, EmaCrossConfig, {"timeframe", "confirm_timeframe"}),
])
def test_every_tunable_parameter_is_offered_with_the_model_default(run_config: type, model: type[BaseModel],
                                                                   fixed: set[str]) -> None:
    offered = set(run_config.model_fields) - {"enabled"}
    assert offered == set(model.model_fields) - fixed
    defaults = model()
    for name in offered:
        value = run_config.model_fields[name].get_default(call_default_factory=True)
        expected = getattr(defaults, name)
        assert value == (list(expected) if isinstance(expected, tuple) else expected), name
        assert run_config.model_fields[name].description == model.model_fields[name].description, name
    assert run_config().strategy() == defaults


def test_the_market_signals_config_builds_the_default_strategies() -> None:
    config = MarketSignalsConfig()
    assert config.bos.strategy() == BosConfig() and config.ema_cross.strategy() == EmaCrossConfig()
    assert MarketSignalsConfig(bos={"enabled": False}).bos.strategy() is None


def test_a_value_outside_the_model_bounds_fails_with_the_model_message() -> None:
    with pytest.raises(ValidationError, match="event_filter_type"):
        BosStrategyConfig(event_filter_type="SIDEWAYS").strategy()
    with pytest.raises(ValidationError, match="fast_ema"):
        EmaCrossStrategyConfig(fast_ema=30, slow_ema=21).strategy()


class _Toy(BaseModel):
    timeframe: Literal["5m"] = "5m"
    side: Literal["long", "short"] = "long"
    period: PositiveInt = Field(default=14, description="candles")
    targets: tuple[float, ...] = (1.0, 2.0)


def test_a_parameter_added_to_a_model_reaches_the_run_config_without_a_second_declaration() -> None:
    config = strategy_run_config("ToyConfig", _Toy, module=__name__, doc="toy")
    assert set(config.model_fields) == {"enabled", "side", "period", "targets"}
    assert config.model_fields["side"].annotation is str
    assert config.model_fields["targets"].get_default(call_default_factory=True) == [1.0, 2.0]
    assert config.model_fields["period"].description == "candles"
    assert config(side="short", targets=[1.5]).strategy() == _Toy(side="short", targets=(1.5,))
    with pytest.raises(ValidationError, match="period"):
        config(period=0).strategy()
