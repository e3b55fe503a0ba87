"""Resource configuration as run config, and run config that changes only the fields it names.

Dagster replaces a Pythonic resource's whole configuration with a run's config for that resource
(dagster-io/dagster#12898): a run whose config sets only ``exchanges.frozen_clock`` (a drill, a
replay) would also lose the exchanges, the simulated universe's size and the credentials the code
location was built with, and silently fall back to the class defaults. :func:`with_values_as_defaults`
makes the values a resource was built with the defaults of its config schema, so run config
overrides what it names and keeps the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import Config, ConfigurableResource, EnvVar
from pydantic import create_model


class NotRunConfigurableError(ValueError):
    """A value that run config cannot express (a nested resource)."""


def config_values(value: Config, where: str) -> dict[str, Any]:
    """Every field of ``value`` as run config; an ``EnvVar`` stays a reference (``{"env": NAME}``)."""
    return {name: config_value(getattr(value, name), f"{where}.{name}") for name in type(value).model_fields}


def config_value(value: Any, where: str) -> Any:
    if isinstance(value, EnvVar):
        return {"env": value.env_var_name}  # a reference: the secret itself stays out of the run config
    if isinstance(value, ConfigurableResource):
        raise NotRunConfigurableError(f"{where} is a nested resource: it cannot be configured through run config")
    if isinstance(value, Config):
        return config_values(value, where)
    if isinstance(value, Mapping):
        return {key: config_value(item, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [config_value(item, f"{where}[]") for item in value]
    return value


def with_values_as_defaults(resource: object, key: str = "resource") -> object:
    """``resource`` as an instance of a subclass whose field defaults are the values it was built
    with, so that run config naming some fields keeps the others. The subclass has the class's
    name, module and docstring (the UI shows the same resource). Anything that is not a
    :class:`ConfigurableResource`, or holds a nested resource, is returned unchanged."""
    if not isinstance(resource, ConfigurableResource):
        return resource
    cls = type(resource)
    built = sorted(resource.model_fields_set)
    if not built:
        return resource
    try:
        defaults = {name: config_value(getattr(resource, name), f"{key}.{name}") for name in built}
    except NotRunConfigurableError:
        return resource
    subclass: type[ConfigurableResource] = create_model(  # type: ignore[call-overload]
        cls.__name__, __base__=cls, __module__=cls.__module__, __doc__=cls.__doc__,
        **{name: (cls.model_fields[name].annotation, default) for name, default in defaults.items()})
    return subclass(**{name: getattr(resource, name) for name in built})
