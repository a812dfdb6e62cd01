"""ComiRec-SA and ComiRec-DR (Cen et al., "Controllable Multi-Interest Framework for
Recommendation", KDD 2020): K interest vectors from a user's last L items.

Both share one item embedding table, used as the input embedding and as the
retrieval space (``item_vectors``), as in the official code. The state of a
visit is its last L item rows (float32, ``-1`` = empty), so ``step`` is O(L) and
``interests`` recomputes the extractor lazily.

Windows are left-padded to exactly L, so position ``L - 1`` is always the most
recent item: the learnable position embeddings count back from the latest
click (the official code counts from the oldest item of the window; both agree
once a user has L items).

- ComiRec-SA: ``A = softmax(W2^T tanh(W1 (H + P)))`` over the window, padded
  positions set to ``-inf`` before the softmax (so they get exactly zero weight),
  ``W1: d -> d_a`` (``d_a = 4d``), ``W2: d_a -> K``, both without bias as in the
  paper's formula; interests ``V = A^T H`` take the item embeddings without the
  positions, as the official code does.
- ComiRec-DR: dynamic routing from the window's behaviour capsules to K interest
  capsules, as the official code's ``CapsuleNetwork(bilinear_type=2)`` and the
  paper's ``e_j|i = W_ij e_i``: one d x d map per (window position, interest),
  ``position_maps`` [L, K, d, d], initialised from N(0, 1) as there. The
  window is realigned oldest-first (real items at positions 0..n-1, padding
  at the end, as the official data iterator fills it), so map ``t`` is the
  t-th oldest item's, and there are no position embeddings (the per-position
  maps play their role). Routing logits start at random, N(0, 1), as in the
  papers' routing algorithms: afresh per training batch, one fixed draw
  stored with the weights in evaluation and serving (``routing_std=0`` starts
  them from zeros, as the official code's DR does; on ml-1m that reached a
  lower Recall@50, see the README). They are never back-propagated: the
  routing iterations see a detached copy of the predictions, only the last
  one carries gradients, as the official ``stop_gradient``. Couplings are a
  softmax over the K interests, zero at padded positions; squash after each
  iteration; 3 iterations.

Training picks, per example, the interest with the largest inner product with
the target item (argmax, ``readout``); MIND overrides it with label-aware
attention (``models/mind.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from models.windowed import WindowedModel


@dataclass(frozen=True)
class MultiInterestConfig:
    """Hyperparameters of every multi-interest model (written into the checkpoint manifest)."""

    n_items: int
    dim: int = 64
    n_interests: int = 4
    max_len: int = 20
    attention_dim: int = 0  # ComiRec-SA's d_a; 0 means 4 * dim
    routing_iterations: int = 3  # ComiRec-DR and MIND
    # Initial routing logits ~ N(0, std^2); 0 = zeros. None = the model's own default:
    # 0 for ComiRec-DR (the official code), 1 for MIND (the MIND paper).
    routing_std: float | None = None
    power: float = 1.0  # MIND's label-aware attention exponent p (training only)
    seed: int = 0  # fixes the initial weights and the evaluation routing logits

    def __post_init__(self) -> None:
        for name in ("n_items", "dim", "n_interests", "max_len", "routing_iterations"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.attention_dim < 0:
            raise ValueError("attention_dim must be >= 0 (0 = 4 * dim)")
        if self.routing_std is not None and self.routing_std < 0:
            raise ValueError("routing_std must be >= 0")
        if self.power <= 0:
            raise ValueError("power must be positive")


def squash(z: torch.Tensor, eps: float = 1e-9) -> torch.Tensor:
    """Capsule squash: ``|z|^2 / (1 + |z|^2) * z / |z|`` along the last axis."""
    sq = (z * z).sum(-1, keepdim=True)
    return sq / (1.0 + sq) * z / torch.sqrt(sq + eps)


def dynamic_routing(
    predictions: torch.Tensor, mask: torch.Tensor, logits: torch.Tensor, iterations: int
) -> torch.Tensor:
    """Route behaviour capsules to interest capsules.

    ``predictions`` [B, K, L, d] are the behaviour capsules mapped into each
    interest's space, ``mask`` [B, L] marks real (non-padded) behaviours, and
    ``logits`` [B, K, L] the initial routing logits. Couplings are a softmax
    over the K interests per behaviour, zero for padded behaviours. The logits
    and the intermediate iterations see detached predictions, so only the last
    iteration's weighted sum back-propagates into the embeddings and maps.
    """
    frozen = predictions.detach()
    b = logits.detach()
    keep = mask[:, None, :].to(predictions.dtype)
    for r in range(iterations):
        coupling = torch.softmax(b, dim=1) * keep
        if r < iterations - 1:
            u = squash(torch.einsum("bkl,bkld->bkd", coupling, frozen))
            b = b + torch.einsum("bkld,bkd->bkl", frozen, u)
        else:
            u = squash(torch.einsum("bkl,bkld->bkd", coupling, predictions))
    return u


class MultiInterestModel(WindowedModel):
    """What every multi-interest extractor shares: embeddings, the contract, readout."""

    config_class = MultiInterestConfig

    default_routing_std: ClassVar[float] = 0.0  # what ``routing_std=None`` resolves to

    def __init__(self, config: MultiInterestConfig) -> None:
        super().__init__()
        if config.routing_std is None:  # resolved here, so checkpoints record the value used
            config = replace(config, routing_std=self.default_routing_std)
        self.config = config
        self.n_interests = config.n_interests
        self.generator = torch.Generator().manual_seed(config.seed)
        self.embedding = nn.Embedding(config.n_items, config.dim)
        bound = math.sqrt(6.0 / (config.n_items + config.dim))  # Glorot, as the official code
        with torch.no_grad():
            self.embedding.weight.uniform_(-bound, bound, generator=self.generator)

    # -- routing (the capsule extractors) ------------------------------------------------------

    def keep_routing_logits(self) -> None:
        """Draw the evaluation-time routing logits, kept with the weights (zeros if std 0).

        A fixed draw makes a user's interests repeatable in evaluation and serving.
        """
        K, L = self.config.n_interests, self.config.max_len
        draw = torch.randn(K, L, generator=self.generator)
        self.register_buffer("routing_logits", draw * self.config.routing_std)

    def initial_logits(self, batch: int, device: torch.device) -> torch.Tensor:
        """[batch, K, L] routing logits: a new N(0, std) draw per training batch, else the kept."""
        K, L = self.config.n_interests, self.config.max_len
        if self.training and self.config.routing_std:
            return torch.randn(batch, K, L, device=device) * self.config.routing_std
        return self.routing_logits.expand(batch, K, L)

    # -- the extractor -------------------------------------------------------------------------

    def extract(self, items: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Interests [B, K, d] of windows ``items`` [B, L] (``mask`` = real items), and which
        interests are active [B, K] (all, except for MIND's adaptive interest count)."""
        raise NotImplementedError

    def forward_window(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = items >= 0
        return self.extract(items.clamp(min=0), mask)

    def readout(
        self, interests: torch.Tensor, active: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        """The user vector a training example is scored with: the interest with the largest
        inner product with the target item's embedding (argmax, ComiRec's hard readout)."""
        logits = torch.einsum("bkd,bd->bk", interests, target).masked_fill(~active, -torch.inf)
        best = logits.argmax(dim=1)
        return interests[torch.arange(len(best), device=best.device), best]

    # -- the model contract (models/contract.py) -----------------------------------------------

    def item_vectors(self) -> torch.Tensor:
        return self.embedding.weight

    def encode(self, prefix: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Batched queries [B, K, d] for left-padded prefixes (``-1`` = padding).

        ``lengths`` is accepted for the contract; the padding already tells it.
        Inactive interests (MIND with a short history) repeat the first one, which
        leaves max-score and the candidate set unchanged.
        """
        interests, active = self.forward_window(self.window(prefix))
        return torch.where(active[..., None], interests, interests[:, :1])


class ComiRecSA(MultiInterestModel):
    """ComiRec-SA: self-attentive multi-interest extraction."""

    def __init__(self, config: MultiInterestConfig) -> None:
        super().__init__(config)
        d, d_a = config.dim, config.attention_dim or 4 * config.dim
        self.position = nn.Parameter(torch.empty(config.max_len, d))
        self.w1 = nn.Linear(d, d_a, bias=False)
        self.w2 = nn.Linear(d_a, config.n_interests, bias=False)
        with torch.no_grad():
            for p in (self.position, self.w1.weight, self.w2.weight):
                bound = math.sqrt(6.0 / sum(p.shape))
                p.uniform_(-bound, bound, generator=self.generator)

    def attention(self, items: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Attention weights [B, L, K]: a softmax over the real positions of each window."""
        h = self.embedding(items)
        logits = self.w2(torch.tanh(self.w1(h + self.position)))
        logits = logits.masked_fill(~mask[..., None], -torch.inf)
        # An empty window (a visit before its first click) has no real position:
        # its weights are all zero instead of the softmax's NaN.
        return torch.nan_to_num(torch.softmax(logits, dim=1), nan=0.0)

    def extract(self, items: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.embedding(items)
        a = self.attention(items, mask)
        interests = torch.einsum("blk,bld->bkd", a, h)
        return interests, torch.ones(interests.shape[:2], dtype=torch.bool, device=h.device)

    def numpy_query(self, clicks: np.ndarray) -> np.ndarray | None:
        """The same attention as ``extract`` over the window's real positions (the last
        ``len(clicks)`` of the window), in numpy: the K interests [K, d]."""
        p = self.numpy_parameters()
        emb, position, w1_t, w2_t = (
            p[k] for k in ("embedding.weight", "position", "w1.weight.T", "w2.weight.T")
        )
        if not len(clicks):  # no click yet: all-zero attention, as in extract
            return np.zeros((self.n_interests, emb.shape[1]), np.float32)
        h = emb[clicks]  # [n, d]
        logits = np.tanh((h + position[len(position) - len(clicks) :]) @ w1_t) @ w2_t  # [n, K]
        logits -= logits.max(axis=0)
        weights = np.exp(logits)
        weights /= weights.sum(axis=0)
        return weights.T @ h


class ComiRecDR(MultiInterestModel):
    """ComiRec-DR: dynamic routing with one bilinear map per (window position, interest)."""

    default_routing_std = 1.0  # N(0, 1) logits: better on ml-1m than the official code's zeros

    def __init__(self, config: MultiInterestConfig) -> None:
        super().__init__(config)
        d, K, L = config.dim, config.n_interests, config.max_len
        self.position_maps = nn.Parameter(torch.empty(L, K, d, d))
        with torch.no_grad():
            self.position_maps.normal_(0.0, 1.0, generator=self.generator)
        self.keep_routing_logits()

    @staticmethod
    def oldest_first(items: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotate each left-padded window so its real items fill positions 0..n-1."""
        L = items.shape[1]
        pad = (~mask).sum(dim=1, keepdim=True)
        idx = (torch.arange(L, device=items.device)[None, :] + pad) % L
        return items.gather(1, idx), mask.gather(1, idx)

    def predictions(self, items: torch.Tensor) -> torch.Tensor:
        """Behaviour capsules in each interest's space, [B, K, L, d]: ``W[t, k] @ e_t``."""
        return torch.einsum("bti,tkoi->bkto", self.embedding(items), self.position_maps)

    def extract(self, items: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        items, mask = self.oldest_first(items, mask)
        interests = dynamic_routing(
            self.predictions(items),
            mask,
            self.initial_logits(len(items), items.device),
            self.config.routing_iterations,
        )
        return interests, torch.ones(interests.shape[:2], dtype=torch.bool, device=items.device)

    @classmethod
    def from_checkpoint(
        cls, hyperparameters: dict[str, Any], weights: dict[str, torch.Tensor]
    ) -> MultiInterestModel:
        if "maps" in weights and "position_maps" not in weights:
            raise ValueError(
                "this ComiRec-DR checkpoint holds one map per interest shared by all positions "
                "(an earlier form of the model); it cannot be loaded: train the model again"
            )
        return super().from_checkpoint(hyperparameters, weights)
