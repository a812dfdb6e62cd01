"""GRU4Rec training parameters: the official names and defaults, typed and validated.

Parameter files (``training/params/*.toml``) and ``k=v`` strings use the
official parameter names, so the published best parameters read unchanged.
Unknown keys are an error.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.gru4rec_loss import LOSSES, final_activation
from training.params import ParamError, check_known, parse_params

PARAMS_DIR = Path(__file__).resolve().parent.parent / "params"


@dataclass(frozen=True)
class GRU4RecParams:
    """Defaults are those of the official PyTorch class."""

    loss: str = "cross-entropy"
    layers: tuple[int, ...] = (100,)
    batch_size: int = 64
    dropout_p_embed: float = 0.0
    dropout_p_hidden: float = 0.0
    learning_rate: float = 0.05
    momentum: float = 0.0
    sample_alpha: float = 0.5
    n_sample: int = 2048
    embedding: int = 0
    constrained_embedding: bool = True
    n_epochs: int = 10
    bpreg: float = 1.0
    elu_param: float = 0.5
    logq: float = 0.0
    smoothing: float = 0.0
    #: official ``final_act`` name; empty = from ``elu_param`` (elu-X, or linear when 0)
    final_act: str = ""
    #: number of sample ids precomputed at once (the official ``sample_cache_max_size``)
    sample_store: int = 10_000_000
    time_sort: bool = True
    seed: int = 42
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ParamError(f"unknown loss {self.loss!r}; use one of {', '.join(LOSSES)}")
        if not self.layers or min(self.layers) < 1:
            raise ParamError(f"layers must be positive sizes, got {list(self.layers)}")
        if self.batch_size < 1 or self.n_epochs < 0 or self.n_sample < 0:
            raise ParamError("batch_size must be >= 1, n_epochs and n_sample >= 0")
        for name in ("dropout_p_embed", "dropout_p_hidden"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ParamError(f"{name} must be in [0, 1)")
        if self.learning_rate <= 0 or self.momentum < 0:
            raise ParamError("learning_rate must be > 0 and momentum >= 0")
        if self.smoothing and self.loss != "cross-entropy":
            raise ParamError("smoothing works with the cross-entropy loss only")
        try:
            final_activation(self.activation)
        except ValueError as exc:
            raise ParamError(str(exc)) from None

    @property
    def activation(self) -> str:
        """The final activation the ranking losses use."""
        if self.final_act:
            return self.final_act
        return f"elu-{self.elu_param:g}" if self.elu_param > 0 else "linear"

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        out["layers"] = list(self.layers)
        return out

    def replace(self, **changes: Any) -> GRU4RecParams:
        return from_dict({**self.to_dict(), **changes})


KNOWN = {f.name for f in dataclasses.fields(GRU4RecParams)} - {"extra"}
_BOOL_TEXT = {"true": True, "1": True, "false": False, "0": False}


def _coerce(name: str, value: Any, default: Any) -> Any:
    if name == "layers":
        if isinstance(value, int):
            return (value,)
        if isinstance(value, str):  # the official "100/100" form
            return tuple(int(v) for v in value.split("/"))
        return tuple(int(v) for v in value)
    if isinstance(default, bool):
        if isinstance(value, str):
            if value.lower() not in _BOOL_TEXT:
                raise ParamError(f"{name} must be true or false, got {value!r}")
            return _BOOL_TEXT[value.lower()]
        return bool(value)
    try:
        return type(default)(value)
    except (TypeError, ValueError):
        raise ParamError(f"{name}={value!r} is not a valid {type(default).__name__}") from None


def from_dict(values: dict[str, Any]) -> GRU4RecParams:
    check_known(values, KNOWN, "gru4rec")
    values = dict(values)
    layers = _coerce("layers", values.get("layers", (100,)), (100,))
    if values.get("embedding") == "layersize":  # official shorthand
        values["embedding"] = layers[0]
    defaults = GRU4RecParams()
    kwargs = {k: _coerce(k, v, getattr(defaults, k)) for k, v in values.items()}
    return GRU4RecParams(**kwargs)


def resolve_params_path(spec: str) -> str:
    """A bare name such as ``diginetica_bprmax_shared_best`` means the bundled file."""
    if spec and "=" not in spec and not Path(spec).exists():
        bundled = PARAMS_DIR / (spec if spec.endswith(".toml") else f"{spec}.toml")
        if bundled.is_file():
            return str(bundled)
        raise ParamError(f"no parameter file {spec!r} (bundled: {', '.join(bundled_names())})")
    return spec


def bundled_names() -> list[str]:
    return sorted(p.stem for p in PARAMS_DIR.glob("*.toml") if not p.stem.startswith("space_"))


def load_params(*specs: str | dict[str, Any] | None) -> GRU4RecParams:
    """Merge parameter sources left to right: files, ``k=v`` strings, dicts."""
    merged: dict[str, Any] = {}
    for spec in specs:
        if not spec:
            continue
        merged.update(spec if isinstance(spec, dict) else parse_params(resolve_params_path(spec)))
    return from_dict(merged)
