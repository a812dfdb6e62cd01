"""GRU4Rec (Hidasi et al. ICLR 2016; Hidasi & Karatzoglou CIKM 2018): the network.

Follows the official PyTorch implementation:

- input modes: ``constrained_embedding`` (the output item matrix ``Wy`` is also
  the input embedding, so the first layer takes ``layers[-1]`` inputs), a
  separate embedding ``E`` (``embedding > 0``), or one-hot input (neither),
  where the first layer reads its three gate pre-activations straight from a
  per-item table ``Wx0`` and applies the reset gate BEFORE the hidden matmul,
  ``tanh(Wx x + (r * h) Wh)``, as the official one-hot layer does;
- the other GRU layers are ``torch.nn.GRUCell``s, exactly as in the official
  code (``tanh(Wx x + r * (Wh h + bh))``);
- scores ``h Wy^T + By``; dropout on the input (``dropout_p_embed``) and after
  every layer (``dropout_p_hidden``), the dropped-out output being the hidden
  state carried to the next step (official behaviour);
- initialisation uniform in +-sqrt(6 / (fan_in + fan_out)) per gate block, biases zero.

The hidden state is passed explicitly: a visit's state is the concatenation of
the layer states (float32, 1-D), which is what the service stores per visit.
The bias is folded into retrieval by appending a constant 1 to the query and
``By`` to the item vectors, so an inner-product index ranks exactly as the model.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn


def uniform_init_(tensor: torch.Tensor, fan_in: int, fan_out: int) -> torch.Tensor:
    """Glorot-uniform with the official per-block fan (one block per gate)."""
    sigma = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        return tensor.uniform_(-sigma, sigma)


class OneHotGRUCell(nn.Module):
    """First layer on one-hot input: reset gate applied before the hidden matmul.

    ``Wx0`` holds the input weights of the three gates per item (order: candidate,
    reset, update), so the input matmul of a one-hot vector is a row lookup.
    """

    def __init__(self, n_items: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.Wx0 = nn.Parameter(torch.empty(n_items, 3 * hidden))
        self.Wrz0 = nn.Parameter(torch.empty(hidden, 2 * hidden))
        self.Wh0 = nn.Parameter(torch.empty(hidden, hidden))
        self.Bh0 = nn.Parameter(torch.zeros(3 * hidden))
        for block in self.Wx0.data.chunk(3, dim=1):
            uniform_init_(block, n_items, hidden)
        for block in self.Wrz0.data.chunk(2, dim=1):
            uniform_init_(block, hidden, hidden)
        uniform_init_(self.Wh0.data, hidden, hidden)

    def forward(self, x_rows: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """``x_rows``: the items' rows of ``Wx0`` ([B, 3h]); ``h``: [B, h]."""
        vx = x_rows + self.Bh0
        vx_n, vx_rz = vx[:, : self.hidden], vx[:, self.hidden :]
        r, z = torch.sigmoid(vx_rz + h @ self.Wrz0).chunk(2, dim=1)
        n = torch.tanh((r * h) @ self.Wh0 + vx_n)
        return torch.lerp(h, n, z)  # (1 - z) h + z n


def dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Inverted dropout (as ``F.dropout`` in training mode), with the mask from ``rand``.

    ``F.dropout`` draws its mask with ``bernoulli_``, which on the CPU costs about
    three times a uniform draw and a comparison: two dropouts were a tenth of a
    training step.
    """
    keep = torch.rand_like(x) >= p
    return x * (keep.to(x.dtype) * (1.0 / (1.0 - p)))


class GRU4Rec(nn.Module):
    """The GRU4Rec network and the sequence-model contract (``models.contract``)."""

    n_interests = 1

    def __init__(
        self,
        n_items: int,
        layers: tuple[int, ...] | list[int] = (100,),
        embedding: int = 0,
        constrained_embedding: bool = True,
    ) -> None:
        super().__init__()
        if not layers or any(int(h) < 1 for h in layers):
            raise ValueError(f"layers must be positive sizes, got {layers!r}")
        self.n_items = int(n_items)
        self.layers = tuple(int(h) for h in layers)
        self.embedding = 0 if constrained_embedding else int(embedding)
        self.constrained_embedding = bool(constrained_embedding)
        d = self.layers[-1]
        self.Wy = nn.Parameter(uniform_init_(torch.empty(n_items, d), n_items, d))
        self.By = nn.Parameter(torch.zeros(n_items))
        if self.constrained_embedding:
            n_input, first = d, 0
        elif self.embedding:
            self.E = nn.Parameter(
                uniform_init_(torch.empty(n_items, self.embedding), n_items, self.embedding)
            )
            n_input, first = self.embedding, 0
        else:
            self.onehot = OneHotGRUCell(n_items, self.layers[0])
            n_input, first = self.layers[0], 1
        cells = []
        for i in range(first, len(self.layers)):
            fan_in = self.layers[i - 1] if i > 0 else n_input
            cell = nn.GRUCell(fan_in, self.layers[i])
            for block in cell.weight_ih.data.chunk(3, dim=0):
                uniform_init_(block, fan_in, self.layers[i])
            for block in cell.weight_hh.data.chunk(3, dim=0):
                uniform_init_(block, self.layers[i], self.layers[i])
            nn.init.zeros_(cell.bias_ih)
            nn.init.zeros_(cell.bias_hh)
            cells.append(cell)
        self.cells = nn.ModuleList(cells)

    # ----------------------------------------------------------------- structure
    @property
    def input_table(self) -> torch.Tensor:
        """The per-item table the first layer reads its input rows from."""
        if self.constrained_embedding:
            return self.Wy
        if self.embedding:
            return self.E
        return self.onehot.Wx0

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "n_items": self.n_items,
            "layers": list(self.layers),
            "embedding": self.embedding,
            "constrained_embedding": self.constrained_embedding,
        }

    # ------------------------------------------------------------------ compute
    def hidden_step(
        self,
        x_rows: torch.Tensor,
        hidden: list[torch.Tensor],
        p_embed: float = 0.0,
        p_hidden: float = 0.0,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One click for a batch: input rows of ``input_table`` -> (top output, new states).

        Dropout is active only when the probabilities are non-zero (training).
        """
        new: list[torch.Tensor] = []
        if self.constrained_embedding or self.embedding:
            x = dropout(x_rows, p_embed) if p_embed else x_rows
        else:
            x = self.onehot(x_rows, hidden[0])
            x = dropout(x, p_embed) if p_embed else x
            new.append(x)
        offset = len(new)
        for i, cell in enumerate(self.cells):
            x = cell(x, hidden[offset + i])
            if p_hidden:
                x = dropout(x, p_hidden)
            new.append(x)
        return x, new

    def split_state(self, state: torch.Tensor) -> list[torch.Tensor]:
        """[..., sum(layers)] -> one tensor per layer."""
        return list(state.split(self.layers, dim=-1))

    # ----------------------------------------------------------- model contract
    def item_vectors(self) -> torch.Tensor:
        return torch.cat([self.Wy, self.By.unsqueeze(1)], dim=1).detach()

    def init_state(self) -> torch.Tensor:
        return torch.zeros(sum(self.layers))

    def step(self, state: torch.Tensor, item: int) -> torch.Tensor:
        if state.device.type == "cpu" and (self.constrained_embedding or self.embedding):
            return torch.from_numpy(self._numpy_step(state.detach().numpy(), int(item)))
        with torch.no_grad():
            hidden = self.split_state(state.view(1, -1))
            rows = self.input_table[torch.tensor([int(item)])]
            _, new = self.hidden_step(rows, hidden)
            return torch.cat(new, dim=1).view(-1)

    def _numpy_step(self, state: np.ndarray, item: int) -> np.ndarray:
        """The GRU cells for ONE click in numpy: the service's hot path.

        A click is a few matrix-vector products of size 100-500; torch spends
        far longer dispatching its dozen operators (about 150 us) than numpy
        computing them (about 20 us). The arrays are views of the parameters,
        so this always uses the current weights. Same equations as GRUCell:
        r, z = sigmoid(W_i x + b_i + W_h h + b_h), n = tanh(W_in x + b_in + r (W_hn h + b_hn)).
        """
        table, cells = self._numpy_views()
        x = table[item]
        out = np.empty_like(state)
        start = 0
        for (w_ih, b_ih, w_hh, b_hh), size in zip(cells, self.layers, strict=True):
            h = state[start : start + size]
            gi = w_ih @ x + b_ih
            gh = w_hh @ h + b_hh
            rz = gi[: 2 * size] + gh[: 2 * size]
            rz = 1.0 / (1.0 + np.exp(-rz))
            n = np.tanh(gi[2 * size :] + rz[:size] * gh[2 * size :])
            z = rz[size:]
            x = out[start : start + size] = n + z * (h - n)
            start += size
        return out

    def _numpy_views(self) -> tuple[np.ndarray, list[tuple[np.ndarray, ...]]]:
        """numpy views of the input table and the cells' weights, made once per storage."""
        key = self.input_table.data_ptr()
        cached = self.__dict__.get("_views")
        if cached is None or cached[0] != key:
            cells = [
                tuple(p.detach().numpy() for p in (c.weight_ih, c.bias_ih, c.weight_hh, c.bias_hh))
                for c in self.cells
            ]
            cached = (key, self.input_table.detach().numpy(), cells)
            self.__dict__["_views"] = cached
        return cached[1], cached[2]

    def interests(self, state: torch.Tensor) -> torch.Tensor:
        """[top layer's state, 1]: the query scoring against ``item_vectors`` (bias last).

        On the CPU in numpy: for 101 numbers torch's dispatch (and the grad-mode
        context) took longer than the service's index search.
        """
        h = self.layers[-1]
        if state.device.type != "cpu" or state.requires_grad:
            with torch.no_grad():
                top = state.view(-1)[-h:]
                return torch.cat([top, top.new_ones(1)]).view(1, -1)
        out = np.ones((1, h + 1), np.float32)
        out[0, :h] = state.numpy().reshape(-1)[-h:]
        return torch.from_numpy(out)

    @torch.no_grad()
    def encode(self, prefix: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Left-padded prefixes [B, L] (-1 = padding) -> queries [B, 1, d + 1]."""
        hidden = [prefix.new_zeros((prefix.shape[0], h), dtype=torch.float32) for h in self.layers]
        table = self.input_table
        for t in range(prefix.shape[1]):
            col = prefix[:, t]
            valid = (col >= 0).unsqueeze(1)
            _, new = self.hidden_step(table[col.clamp(min=0)], hidden)
            hidden = [torch.where(valid, n, h) for n, h in zip(new, hidden, strict=True)]
        top = hidden[-1]
        return torch.cat([top, top.new_ones((top.shape[0], 1))], dim=1).unsqueeze(1)

    @torch.no_grad()
    def score(self, prefix: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Scores of all items (the ``PrefixScorer`` of the next-item evaluation)."""
        return self.encode(prefix, lengths)[:, 0] @ self.item_vectors().T

    # -------------------------------------------------------------- checkpoints
    @classmethod
    def from_checkpoint(
        cls, hyperparameters: dict[str, Any], weights: dict[str, torch.Tensor]
    ) -> GRU4Rec:
        model = cls(
            n_items=int(hyperparameters["n_items"]),
            layers=tuple(hyperparameters["layers"]),
            embedding=int(hyperparameters.get("embedding", 0)),
            constrained_embedding=bool(hyperparameters.get("constrained_embedding", True)),
        )
        model.load_state_dict(weights)
        return model.eval()

    def checkpoint_weights(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.state_dict().items()}
