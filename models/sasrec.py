"""SASRec (Kang and McAuley, ICDM 2018): causal self-attention over the last L clicks.

The network of the paper and its reference code: item embeddings scaled by
sqrt(d) plus learned absolute positions over a window of L (shorter histories are
left-padded; positions count back from the last click), embedding dropout, then blocks of causal
multi-head self-attention and a point-wise feed-forward network (ReLU), each
with dropout and a residual connection, padded positions zeroed after every
block, a last layer norm. The query of a history is the output at its last
position; an item's score is its inner product with the same (shared) item
embedding that the input uses.

``layer_norm="pre"`` is the reference code's form: the attention's queries are
the layer-normed input and the residual adds to them, and the feed-forward
block normalises its input first. ``"post"`` is the standard transformer
form (normalise after each residual sum).

Keys at padded positions are masked out of the attention, as the reference
code's key masking does; a padded position attends only to itself, and its
output is zeroed anyway.

State for serving: the last L item rows (``-1`` = none yet), as the
multi-interest models keep; the encoder runs on it when a query is needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.numpy_ops import attention, layer_norm
from models.windowed import Pairs, WindowedModel


@dataclass(frozen=True)
class SASRecConfig:
    n_items: int
    dim: int = 50
    n_blocks: int = 2
    n_heads: int = 1
    max_len: int = 50
    dropout: float = 0.5
    layer_norm: Literal["pre", "post"] = "pre"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_items < 1 or self.dim < 1 or self.max_len < 1 or self.n_blocks < 0:
            raise ValueError(f"SASRec: sizes must be positive: {self}")
        if self.dim % self.n_heads:
            raise ValueError(f"SASRec: dim {self.dim} is not a multiple of n_heads {self.n_heads}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"SASRec: dropout {self.dropout} is not in [0, 1)")
        if self.layer_norm not in ("pre", "post"):
            raise ValueError(f"SASRec: layer_norm must be 'pre' or 'post', not {self.layer_norm!r}")


class PointWiseFeedForward(nn.Module):
    """Two position-wise linear maps with a ReLU between, dropout after each."""

    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.inner = nn.Linear(dim, dim)
        self.outer = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.outer(self.dropout(F.relu(self.inner(x)))))


class SASRecBlock(nn.Module):
    def __init__(self, config: SASRecConfig) -> None:
        super().__init__()
        self.pre = config.layer_norm == "pre"
        self.attention_norm = nn.LayerNorm(config.dim, eps=1e-8)
        self.attention = nn.MultiheadAttention(
            config.dim, config.n_heads, dropout=config.dropout, batch_first=True
        )
        self.forward_norm = nn.LayerNorm(config.dim, eps=1e-8)
        self.feed_forward = PointWiseFeedForward(config.dim, config.dropout)

    def forward(self, x: torch.Tensor, blocked: torch.Tensor) -> torch.Tensor:
        """``blocked`` [B * heads, L, L]: True where a position may not attend."""
        if self.pre:
            q = self.attention_norm(x)
            x = q + self.attention(q, x, x, attn_mask=blocked, need_weights=False)[0]
            h = self.forward_norm(x)
            return h + self.feed_forward(h)
        x = self.attention_norm(
            x + self.attention(x, x, x, attn_mask=blocked, need_weights=False)[0]
        )
        return self.forward_norm(x + self.feed_forward(x))


class SASRec(WindowedModel):
    n_interests = 1
    config_class = SASRecConfig
    #: embedding rows after the items' (a subclass's mask token, say)
    extra_tokens = 0

    def __init__(self, config: SASRecConfig) -> None:
        super().__init__()
        self.config = config
        # every initial weight from the config's seed, without touching the caller's RNG
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            # row 0 is "no item" (padding); item row i is embedding row i + 1
            self.embedding = nn.Embedding(
                config.n_items + 1 + self.extra_tokens, config.dim, padding_idx=0
            )
            self.positions = nn.Embedding(config.max_len, config.dim)
            self.embedding_dropout = nn.Dropout(config.dropout)
            self.blocks = nn.ModuleList(SASRecBlock(config) for _ in range(config.n_blocks))
            self.last_norm = nn.LayerNorm(config.dim, eps=1e-8)
            with torch.no_grad():  # the reference code's Xavier-uniform init of every matrix
                for p in self.parameters():
                    if p.dim() > 1:
                        nn.init.xavier_uniform_(p)
                self.embedding.weight[0].zero_()

    def sequence_output(self, items: torch.Tensor) -> torch.Tensor:
        """Hidden states [B, L, d] of windows ``items`` [B, L] of item rows (``-1`` = padding)."""
        width = items.shape[1]
        if width > self.config.max_len:
            raise ValueError(f"windows of {width} exceed max_len {self.config.max_len}")
        # Columns that are padding in every row change nothing (their keys are masked, their
        # outputs zeroed), so they are cut: short histories cost what they hold, not L.
        # Positions count from the end, so the kept columns keep their position embeddings.
        filled = (items >= 0).any(0)
        first = int(filled.int().argmax()) if bool(filled.any()) else width - 1
        B, cut = items.shape[0], first
        items = items[:, first:]
        real = items >= 0
        L = items.shape[1]
        x = self.embedding(items + 1) * math.sqrt(self.config.dim)
        x = self.embedding_dropout(x + self.positions.weight[self.config.max_len - L :][None])
        x = x * real[..., None]
        future = torch.ones(L, L, dtype=torch.bool, device=items.device).triu(1)
        blocked = future[None] | ~real[:, None, :]  # no future item, no padded key
        blocked = blocked & ~torch.eye(L, dtype=torch.bool, device=items.device)  # never empty
        blocked = blocked.repeat_interleave(self.config.n_heads, dim=0)
        for block in self.blocks:
            x = block(x, blocked) * real[..., None]
        x = self.last_norm(x)
        if not cut:
            return x
        padded = self.last_norm(x.new_zeros(self.config.dim))  # what a padded position gives
        return torch.cat([padded.expand(B, cut, -1), x], dim=1)

    def training_pairs(
        self, inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator
    ) -> Pairs:
        """Hidden states [P, d], their next items, each one's window [P, L + 1].

        Every position with an item and a next item is a pair (the paper's
        sequence-to-sequence objective); the window is what a negative must avoid.
        """
        where = (inputs >= 0) & (targets >= 0)
        window = torch.cat([inputs, targets[:, -1:]], dim=1)
        rows = where.nonzero()[:, 0]
        return Pairs(self.sequence_output(inputs)[where], targets[where], window[rows])

    # -- the model contract (models/contract.py) -----------------------------------------------

    def item_vectors(self) -> torch.Tensor:
        return self.embedding.weight[1 : self.config.n_items + 1]

    def encode(self, prefix: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Queries [B, 1, d]: the output at the last position of each window."""
        return self.sequence_output(self.window(prefix))[:, -1:, :]

    def numpy_query(self, clicks: np.ndarray) -> np.ndarray | None:
        """The blocks of ``sequence_output`` in eval mode over the window's real clicks
        (``models.numpy_ops``); the last block computes only the last position's output,
        the one the query needs. No click yet: the torch forward's empty window."""
        if not len(clicks):
            return None
        p = self.numpy_parameters()
        cfg = self.config
        x = p["embedding.weight"][clicks + 1] * math.sqrt(cfg.dim)
        x = x + p["positions.weight"][cfg.max_len - len(clicks) :]
        for b in range(cfg.n_blocks):
            x = self._numpy_block(x, p, f"blocks.{b}.", last_only=b == cfg.n_blocks - 1)
        return layer_norm(x[-1:], p["last_norm.weight"], p["last_norm.bias"], 1e-8)

    def _numpy_block(
        self, x: np.ndarray, p: dict[str, np.ndarray], at: str, last_only: bool
    ) -> np.ndarray:
        def attend(queries: np.ndarray, keys: np.ndarray) -> np.ndarray:
            return attention(
                queries,
                keys,
                p[at + "attention.in_proj_weight.T"],
                p[at + "attention.in_proj_bias"],
                p[at + "attention.out_proj.weight.T"],
                p[at + "attention.out_proj.bias"],
                self.config.n_heads,
                causal=True,
            )

        def norm(x: np.ndarray, which: str) -> np.ndarray:
            return layer_norm(x, p[at + which + ".weight"], p[at + which + ".bias"], 1e-8)

        def feed_forward(x: np.ndarray) -> np.ndarray:
            inner = np.maximum(
                x @ p[at + "feed_forward.inner.weight.T"] + p[at + "feed_forward.inner.bias"], 0
            )
            return inner @ p[at + "feed_forward.outer.weight.T"] + p[at + "feed_forward.outer.bias"]

        if self.config.layer_norm == "pre":
            q = norm(x, "attention_norm")
            if last_only:
                q = q[-1:]
            x = q + attend(q, x)
            h = norm(x, "forward_norm")
            return h + feed_forward(h)
        q = x[-1:] if last_only else x
        x = norm(q + attend(q, x), "attention_norm")
        return norm(x + feed_forward(x), "forward_norm")
