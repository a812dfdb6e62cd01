"""What every model whose visit state is its last L clicks shares: the window, the state, the
checkpoint.

The multi-interest extractors and the attention models read a fixed window of
the last ``max_len`` item rows (left-padded with ``-1``) rather than carrying a
hidden state forward, so their serving state is that window itself and a click
shifts it by one; the encoder runs on it when a query is needed. A subclass
sets ``config_class`` (a dataclass with ``max_len``) and implements ``encode``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.numpy_ops import transposed


@dataclass
class Pairs:
    """What one training step of an attention model yields (``training.attention``)."""

    hidden: torch.Tensor  # [P, d]: the queries that predict ...
    targets: torch.Tensor  # [P]: ... these item rows
    windows: torch.Tensor  # [P, W]: the items of each pair's window, which a negative avoids
    #: further loss terms of the model's own objective, already weighted (e.g. ECL-SR's)
    extra: dict[str, torch.Tensor] = field(default_factory=dict)


class WindowedModel(nn.Module):
    #: the hyperparameter dataclass a checkpoint's hyperparameters rebuild
    config_class: ClassVar[type]
    config: Any

    @property
    def state_len(self) -> int:
        """How many of the last clicks the state keeps: the window the encoder reads."""
        return int(self.config.max_len)

    def window(self, prefix: torch.Tensor) -> torch.Tensor:
        """The last L columns of a left-padded prefix, left-padded with -1 to exactly L."""
        L = self.state_len
        prefix = prefix.long()[:, -L:]
        if prefix.shape[1] < L:
            prefix = F.pad(prefix, (L - prefix.shape[1], 0), value=-1)
        return prefix

    def encode(self, prefix: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def training_pairs(
        self, inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator
    ) -> Pairs:
        """The attention models' objective (``training.attention``): the pairs of windows of
        inputs and their next items [B, L]."""
        raise NotImplementedError(f"{type(self).__name__} is not trained by the attention loop")

    def set_training_sequences(self, items: np.ndarray, offsets: np.ndarray) -> None:
        """What a model derives from the training sequences before its first step (CL4SRec's
        item-similarity table); the attention loop calls it once per run. Nothing by default."""

    # -- the state of the model contract (models/contract.py) ----------------------------------

    def init_state(self) -> torch.Tensor:
        return torch.full((self.state_len,), -1.0)

    def step(self, state: torch.Tensor, item: int) -> torch.Tensor:
        return torch.cat([state[1:], torch.tensor([float(item)])])

    def interests(self, state: torch.Tensor) -> torch.Tensor:
        """The visit's query: ``numpy_query`` on the CPU in eval mode, else the torch forward.

        For one window of at most L items torch spends far longer dispatching its
        operators than numpy computing them: this is the service's hot path.
        """
        if state.device.type == "cpu" and not self.training:
            items = state.detach().numpy().astype(np.int64)
            query = self.numpy_query(items[items >= 0])
            if query is not None:
                return torch.from_numpy(np.ascontiguousarray(query, dtype=np.float32))
        with torch.no_grad():
            return self.encode(state[None].long())[0]

    def numpy_query(self, clicks: np.ndarray) -> np.ndarray | None:
        """The query [K, d] of a visit's clicks (item rows, oldest first) in numpy, equal to
        ``encode``'s (the contract suite holds them equal); None where only the torch
        forward answers. Works on ``numpy_parameters``."""
        return None

    def numpy_parameters(self) -> dict[str, np.ndarray]:
        """The parameters as numpy views, and of every linear map's weight a ``transposed``
        copy (``"name.T"``): what the numpy query of one visit (``models.numpy_ops``) reads.

        The copies are rebuilt when any parameter's storage or version changes
        (``to(device)`` moves it, ``load_state_dict`` and an optimiser step write in place).
        """
        cached = self.__dict__.get("_numpy_parameters")
        if cached is not None:
            tensors, key, views = cached
            if key == tuple((t.data_ptr(), t._version) for t in tensors):
                return views
        named = self.state_dict(keep_vars=True)
        views = {k: v.detach().numpy() for k, v in named.items()}
        for name, module in self.named_modules():
            at = f"{name}." if name else ""
            if isinstance(module, nn.Linear):
                views[at + "weight.T"] = transposed(views[at + "weight"])
            elif isinstance(module, nn.MultiheadAttention):
                views[at + "in_proj_weight.T"] = transposed(views[at + "in_proj_weight"])
        tensors = tuple(named.values())
        key = tuple((t.data_ptr(), t._version) for t in tensors)
        self.__dict__["_numpy_parameters"] = (tensors, key, views)
        return views

    # -- checkpoints ---------------------------------------------------------------------------

    def hyperparameters(self) -> dict[str, Any]:
        return asdict(self.config)

    def checkpoint_weights(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.state_dict().items()}

    @classmethod
    def from_checkpoint(
        cls, hyperparameters: dict[str, Any], weights: dict[str, torch.Tensor]
    ) -> WindowedModel:
        model = cls(cls.config_class(**hyperparameters))
        model.load_state_dict(weights)
        return model.eval()
