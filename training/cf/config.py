"""Typed hyperparameters: flat dataclass defaults, overridden by ``k=v`` or a TOML file."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from training.params import ParamError, check_known

C = TypeVar("C")


def config_from(cls: type[C], params: dict[str, Any], what: str) -> C:
    """Build ``cls`` from ``params``; unknown keys and values of the wrong type are errors."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    check_known(params, set(fields), what)
    values: dict[str, Any] = {}
    for key, value in params.items():
        default = getattr(cls, key, None) if not callable(getattr(cls, key, None)) else None
        kind = type(default) if default is not None else None
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if kind is tuple and isinstance(value, list):
            value = tuple(value)
        if kind is not None and not isinstance(value, kind):
            raise ParamError(f"{what} parameter {key}={value!r}: expected {kind.__name__}")
        values[key] = value
    return cls(**values)


def as_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)
