"""BERT4Rec (Sun et al., CIKM 2019): a bidirectional transformer trained by the cloze task.

The network of the paper and its reference code: item plus learned position
embeddings, layer norm and dropout (BERT's embedding block), then blocks of
bidirectional multi-head self-attention and a GELU feed-forward network of
width 4d, each with dropout, a residual connection and a layer norm after it
(post-LN, as BERT), and the output head of BERT's masked-LM: a dense layer,
GELU and layer norm, scored against the (shared) item embedding plus a bias
per item. Keys at padded positions are masked out of the attention.

Training (the cloze task): each item of a training window is replaced by the
mask token with probability ``mask_prob`` and the network predicts the items
it hid; a window where nothing was drawn hides its last item, which is also
the position that serving asks about. Serving appends the mask token to the
last ``max_len - 1`` clicks and reads the output at it.

Scores are inner products for the model contract: the item vectors carry the
bias as one more column, the queries a constant 1 there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.numpy_ops import attention, gelu, layer_norm
from models.windowed import Pairs, WindowedModel


@dataclass(frozen=True)
class BERT4RecConfig:
    n_items: int
    dim: int = 64
    n_blocks: int = 2
    n_heads: int = 2
    max_len: int = 50  # the window, the appended mask token included
    dropout: float = 0.1
    attention_dropout: float = 0.1
    mask_prob: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_items < 1 or self.dim < 1 or self.max_len < 2 or self.n_blocks < 0:
            raise ValueError(f"BERT4Rec: sizes must be positive (max_len at least 2): {self}")
        if self.dim % self.n_heads:
            raise ValueError(f"BERT4Rec: dim {self.dim} is not a multiple of n_heads")
        for name in ("dropout", "attention_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"BERT4Rec: {name} {getattr(self, name)} is not in [0, 1)")
        if not 0 < self.mask_prob < 1:
            raise ValueError(f"BERT4Rec: mask_prob {self.mask_prob} is not in (0, 1)")


class BertBlock(nn.Module):
    """Self-attention and a GELU feed-forward network, each followed by add and norm."""

    def __init__(self, config: BERT4RecConfig) -> None:
        super().__init__()
        d = config.dim
        self.attention = nn.MultiheadAttention(
            d, config.n_heads, dropout=config.attention_dropout, batch_first=True
        )
        self.attention_norm = nn.LayerNorm(d, eps=1e-12)
        self.inner = nn.Linear(d, 4 * d)
        self.outer = nn.Linear(4 * d, d)
        self.forward_norm = nn.LayerNorm(d, eps=1e-12)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, blocked: torch.Tensor) -> torch.Tensor:
        attended = self.attention(x, x, x, attn_mask=blocked, need_weights=False)[0]
        x = self.attention_norm(x + self.dropout(attended))
        return self.forward_norm(x + self.dropout(self.outer(F.gelu(self.inner(x)))))


class BertEncoder(nn.Module):
    """BERT's encoder over given input vectors: positions, layer norm, dropout, blocks.

    Causal or bidirectional; keys at padded positions are masked out. Shared by
    BERT4Rec (bidirectional) and ECL-SR, whose encoder is RecBole's SASRec: this
    same stack with a causal mask and no output head.
    """

    def __init__(self, config: BERT4RecConfig) -> None:
        super().__init__()
        self.max_len = config.max_len
        self.n_heads = config.n_heads
        self.positions = nn.Embedding(config.max_len, config.dim)
        self.embedding_norm = nn.LayerNorm(config.dim, eps=1e-12)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(BertBlock(config) for _ in range(config.n_blocks))

    def forward(self, x: torch.Tensor, real: torch.Tensor, causal: bool) -> torch.Tensor:
        """Hidden states [B, W, d] of input vectors ``x`` [B, W, d]; ``real`` [B, W] marks items."""
        L = x.shape[1]
        x = self.dropout(self.embedding_norm(x + self.positions.weight[self.max_len - L :][None]))
        blocked = ~real[:, None, :].expand(-1, L, -1)
        if causal:
            blocked = blocked | torch.ones(L, L, dtype=torch.bool, device=x.device).triu(1)
        blocked = blocked & ~torch.eye(L, dtype=torch.bool, device=x.device)  # never empty
        blocked = blocked.repeat_interleave(self.n_heads, dim=0)
        for block in self.blocks:
            x = block(x, blocked)
        return x


def encoder_last_numpy(
    x: np.ndarray, p: dict[str, np.ndarray], at: str, config: BERT4RecConfig, causal: bool
) -> np.ndarray:
    """``BertEncoder`` in eval mode over one window's input vectors [n, d] (real items only),
    in numpy (``WindowedModel.numpy_parameters``, keys under ``at``): the output [1, d] at
    the last position. The last block computes only that position's output."""

    def norm(x: np.ndarray, which: str) -> np.ndarray:
        return layer_norm(x, p[which + ".weight"], p[which + ".bias"], 1e-12)

    x = norm(x + p[at + "positions.weight"][config.max_len - len(x) :], at + "embedding_norm")
    for b in range(config.n_blocks):
        block = f"{at}blocks.{b}."
        q = x[-1:] if b == config.n_blocks - 1 else x
        attended = attention(
            q,
            x,
            p[block + "attention.in_proj_weight.T"],
            p[block + "attention.in_proj_bias"],
            p[block + "attention.out_proj.weight.T"],
            p[block + "attention.out_proj.bias"],
            config.n_heads,
            causal,
        )
        h = norm(q + attended, block + "attention_norm")
        inner = gelu(h @ p[block + "inner.weight.T"] + p[block + "inner.bias"])
        x = norm(
            h + inner @ p[block + "outer.weight.T"] + p[block + "outer.bias"],
            block + "forward_norm",
        )
    return x[-1:]


def bert_init(module: nn.Module) -> None:
    """BERT's initialisation: truncated N(0, 0.02) weights, zero biases, layer norms at 1, 0."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Linear | nn.Embedding):
                nn.init.trunc_normal_(m.weight, std=0.02, a=-0.04, b=0.04)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)


def cut_padding(items: torch.Tensor, max_len: int) -> tuple[torch.Tensor, int]:
    """Windows without their leading all-padding columns, and how many were cut.

    Such columns change no real position's output (their keys are masked), so a
    batch of short histories costs what it holds, not ``max_len``; positions
    count from the end, so the kept columns keep their position embeddings.
    """
    width = items.shape[1]
    if width > max_len:
        raise ValueError(f"windows of {width} exceed max_len {max_len}")
    filled = (items >= 0).any(0)
    cut = int(filled.int().argmax()) if bool(filled.any()) else width - 1
    return items[:, cut:], cut


class BERT4Rec(WindowedModel):
    n_interests = 1
    config_class = BERT4RecConfig

    def __init__(self, config: BERT4RecConfig) -> None:
        super().__init__()
        self.config = config
        d = config.dim
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            # row 0 is padding, item row i is embedding row i + 1, the last row the mask token
            self.embedding = nn.Embedding(config.n_items + 2, d, padding_idx=0)
            self.encoder = BertEncoder(config)
            self.head = nn.Linear(d, d)
            self.head_norm = nn.LayerNorm(d, eps=1e-12)
            self.output_bias = nn.Parameter(torch.zeros(config.n_items))
            bert_init(self)
            with torch.no_grad():
                self.embedding.weight[0].zero_()

    @property
    def mask_token(self) -> int:
        """The mask token as an item row (its embedding row is ``n_items + 1``)."""
        return self.config.n_items

    @property
    def state_len(self) -> int:
        return self.config.max_len - 1  # the last slot of the window is the appended mask

    def sequence_output(self, items: torch.Tensor) -> torch.Tensor:
        """Head outputs [B, W, d] of windows [B, W] of item rows (-1 = padding, the mask
        token = ``n_items``); all-padding leading columns are cut and come back as zeros."""
        items, cut = cut_padding(items, self.config.max_len)
        x = self.encoder(self.embedding(items + 1), items >= 0, causal=False)
        x = self.head_norm(F.gelu(self.head(x)))
        return F.pad(x, (0, 0, cut, 0)) if cut else x

    def with_bias_column(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.cat([hidden, hidden.new_ones(*hidden.shape[:-1], 1)], dim=-1)

    def training_pairs(
        self, inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator
    ) -> Pairs:
        """Queries [P, d + 1] at the hidden positions and the items they hid.

        The training window is the whole sequence (the loop's inputs plus their
        last next item), its last ``max_len`` items.
        """
        seq = torch.cat([inputs[:, :1], targets], dim=1)[:, -self.config.max_len :]
        hide = cloze_positions(seq, self.config.mask_prob, generator)
        masked = torch.where(hide, torch.full_like(seq, self.mask_token), seq)
        hidden = self.with_bias_column(self.sequence_output(masked)[hide])
        return Pairs(hidden, seq[hide], seq[hide.nonzero()[:, 0]])

    # -- the model contract (models/contract.py) -----------------------------------------------

    def item_vectors(self) -> torch.Tensor:
        items = self.embedding.weight[1 : self.config.n_items + 1]
        return torch.cat([items, self.output_bias[:, None]], dim=1)

    def encode(self, prefix: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Queries [B, 1, d + 1]: the output at a mask token appended to each window."""
        window = self.window(prefix)
        mask = torch.full_like(window[:, :1], self.mask_token)
        out = self.sequence_output(torch.cat([window, mask], dim=1))[:, -1:, :]
        return self.with_bias_column(out)

    def numpy_query(self, clicks: np.ndarray) -> np.ndarray | None:
        """The encoder and the head in numpy (``encoder_last_numpy``), at the mask token
        appended to the clicks."""
        p = self.numpy_parameters()
        items = np.append(clicks, self.mask_token)
        x = encoder_last_numpy(p["embedding.weight"][items + 1], p, "encoder.", self.config, False)
        x = gelu(x @ p["head.weight.T"] + p["head.bias"])
        x = layer_norm(x, p["head_norm.weight"], p["head_norm.bias"], 1e-12)
        return np.append(x, np.ones((1, 1), x.dtype), axis=1)


def cloze_positions(seq: torch.Tensor, prob: float, generator: torch.Generator) -> torch.Tensor:
    """Which items of right-aligned windows [B, W] the cloze task hides: each real item with
    probability ``prob``, and a row where nothing was drawn hides its last item."""
    draw = torch.rand(seq.shape, generator=generator).to(seq.device)
    hide = (draw < prob) & (seq >= 0)
    hide[:, -1] |= ~hide.any(1)
    return hide
