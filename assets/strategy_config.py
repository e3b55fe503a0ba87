"""Dagster run config generated from a strategy's pydantic config (``ml/strategies``), so that each
parameter, its default and its description are declared once.

The run config carries the tunable fields as plain config types (a tuple becomes a list, a
``Literal`` of several values a string); a field fixed to one value (a ``Literal`` of one, such as
the 15m timeframe of the EMA crossover) or listed in ``fixed`` is not offered. The bounds stay in
the pydantic model: :meth:`StrategyRunConfig.strategy` builds it, so a value out of bounds fails
the run with the model's message.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated, Any, ClassVar, Literal, get_args, get_origin

from dagster import Config
from pydantic import BaseModel, Field, create_model


class StrategyRunConfig(Config):
    """A strategy's run config: ``enabled`` and the tunable fields of :attr:`strategy_model`."""

    strategy_model: ClassVar[type[BaseModel]]
    enabled: bool = Field(default=True, description="run this strategy")

    def strategy(self) -> Any:
        """The strategy's validated pydantic config, or None when it is disabled."""
        return type(self).strategy_model(**self.model_dump(exclude={"enabled"})) if self.enabled else None


def _config_type(annotation: Any) -> Any:
    origin = get_origin(annotation)
    if origin is Annotated:  # constraints stay with the pydantic model
        return _config_type(get_args(annotation)[0])
    if origin is tuple:
        return list[_config_type(get_args(annotation)[0])]
    if origin is Literal:
        return type(get_args(annotation)[0])
    return annotation


def _is_fixed(annotation: Any) -> bool:
    return get_origin(annotation) is Literal and len(get_args(annotation)) == 1


def strategy_run_config(name: str, model: type[BaseModel], *, doc: str, module: str,
                        fixed: Collection[str] = ()) -> type[StrategyRunConfig]:
    """A :class:`StrategyRunConfig` subclass named ``name`` with ``model``'s tunable fields, their
    defaults and descriptions."""
    defaults = model()
    fields: dict[str, Any] = {}
    for field_name, info in model.model_fields.items():
        if field_name in fixed or _is_fixed(info.annotation):
            continue
        value = getattr(defaults, field_name)
        if isinstance(value, tuple):
            spec = Field(default_factory=lambda value=value: list(value), description=info.description)
        else:
            spec = Field(default=value, description=info.description)
        fields[field_name] = (_config_type(info.annotation), spec)
    config = create_model(name, __base__=StrategyRunConfig, __doc__=doc, __module__=module, **fields)
    config.strategy_model = model
    return config
