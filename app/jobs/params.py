"""Bounds of a retrain's hyperparameters, checked when the request arrives.

Why: ``params`` goes to the trainer as it is, and whoever holds the admin token
could otherwise ask for a run that never ends before the job timeout (a
million epochs) or that takes the worker's memory (a layer of a million units,
a batch of ten million), stalling every other retrain. The trainer still
refuses a name it does not know; this only keeps values within what a retrain
on one machine can do. Larger runs belong to ``nextitem train``, where the
operator owns the machine.
"""

from __future__ import annotations

import re
from typing import Any

MAX_KEYS = 32
MAX_LIST = 8
MAX_TEXT = 64
#: any number, whatever its name (GRU4Rec's ``sample_store`` is ten million by default)
MAX_NUMBER = 10_000_000
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,63}")  # matched whole (``$`` would allow a newline)

#: the parameters that set how long a run takes or how much memory it needs, with their
#: bounds (for ``layers``, of each layer); the defaults and the published settings of every
#: retrainable kind are well inside them
CAPS: dict[str, tuple[int, int]] = {
    "n_epochs": (1, 100),  # GRU4Rec
    "epochs": (1, 500),  # the attention models
    "max_iter": (1, 1_000_000),  # the multi-interest models
    "layers": (1, 1024),
    "embedding": (0, 1024),
    "dim": (1, 1024),
    "attention_dim": (0, 4096),
    "n_blocks": (1, 8),
    "n_heads": (1, 16),
    "n_interests": (1, 16),
    "routing_iterations": (1, 20),
    "max_len": (1, 1000),
    "batch_size": (1, 8192),
    "n_sample": (0, 16_384),
    "negatives": (1, 16_384),
    "valid_users": (1, 1_000_000),
}


def _scalar(name: str, value: Any) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        if not abs(value) <= MAX_NUMBER:  # NaN and infinities too; huge ints never reach float
            raise ValueError(f"params: {name}={value!r} is not a number within ±{MAX_NUMBER:,}")
        return
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise ValueError(f"params: {name} is longer than {MAX_TEXT} characters")
        return
    raise ValueError(f"params: {name} must be a number, a boolean or a short text")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_params(params: dict[str, Any] | None) -> dict[str, Any] | None:
    """``params`` when every value is within bounds, else ``ValueError`` naming the first."""
    if params is None:
        return None
    if len(params) > MAX_KEYS:
        raise ValueError(f"params: {len(params)} names; at most {MAX_KEYS}")
    for name, value in params.items():
        if not _NAME.fullmatch(name):
            raise ValueError(f"params: {name!r} is not a parameter name")
        values = value if isinstance(value, list) else [value]
        if len(values) > MAX_LIST:
            raise ValueError(f"params: {name} has more than {MAX_LIST} values")
        for v in values:
            _scalar(name, v)
        if name in CAPS:
            low, high = CAPS[name]
            if not all(_is_number(v) and low <= v <= high for v in values):
                raise ValueError(f"params: {name} must be between {low} and {high:,}")
    return params


def params_json_schema() -> dict[str, Any]:
    """The rules of ``check_params`` as JSON Schema, for the API spec: what it says is exactly
    what a retrain request may carry."""
    scalar = {
        "anyOf": [
            {"type": "boolean"},
            {"type": "number", "minimum": -MAX_NUMBER, "maximum": MAX_NUMBER},
            {"type": "string", "maxLength": MAX_TEXT},
        ]
    }

    def one_or_list(value: dict[str, Any]) -> dict[str, Any]:
        return {"anyOf": [value, {"type": "array", "maxItems": MAX_LIST, "items": value}]}

    return {
        "type": "object",
        "maxProperties": MAX_KEYS,
        "propertyNames": {"pattern": f"^{_NAME.pattern}$"},
        "properties": {
            name: one_or_list({"type": "number", "minimum": low, "maximum": high})
            for name, (low, high) in CAPS.items()
        },
        "additionalProperties": one_or_list(scalar),
    }
