"""GRU4Rec training parameters: the official names and defaults, typed and validated.

Parameter files (``training/model_params/*.toml``) and ``k=v`` strings use the
official parameter names, so the published best parameters read unchanged.
Unknown keys are an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models.gru4rec_loss import LOSSES, final_activation
from training.params import ParamError, Source, as_dict, load_config


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
        return as_dict(self)

    def replace(self, **changes: Any) -> GRU4RecParams:
        return load_params(self.to_dict(), changes)


def _official_forms(values: dict[str, Any]) -> dict[str, Any]:
    """The official code's shorthands: ``layers=100/100`` and ``embedding=layersize``."""
    values = dict(values)
    layers = values.get("layers", GRU4RecParams.layers)
    if isinstance(layers, str):
        try:
            values["layers"] = layers = tuple(int(v) for v in layers.split("/"))
        except ValueError:
            raise ParamError(f"layers={layers!r} is not a list of sizes") from None
    if values.get("embedding") == "layersize":
        first = layers if isinstance(layers, int) else layers[0]
        values["embedding"] = int(first)
    return values


def load_params(*sources: Source) -> GRU4RecParams:
    """Merge parameter sources left to right: files, bundled names, ``k=v`` strings, dicts."""
    return load_config(GRU4RecParams, *sources, what="gru4rec", prepare=_official_forms)
