"""ECL-SR (Zhou et al., RecSys 2023): equivariant contrastive learning for sequential
recommendation, as the paper and its code (a RecBole fork) define it.

One causal encoder (RecBole's SASRec: BERT's embedding block and post-norm GELU
blocks, ``models.bert4rec.BertEncoder`` with a causal mask) serves; training
adds two objectives to its next-item loss:

- *invariance to a mild augmentation*: the encoder reads the same window twice
  (two dropout views); the means of the last ``contrastive_k`` hidden states
  of the two views are pulled together by InfoNCE over the batch (cosine
  similarity over ``temperature``, the other rows of the second view as
  negatives);
- *equivariance to an invasive one*: a BERT4Rec generator (its own positions
  and blocks, the shared item embedding) fills a ``mask_ratio`` of the items
  with its argmax guess, and a conditional discriminator (the encoder itself,
  on the replaced window's embeddings plus the first view's hidden states)
  tells per position whether the item was replaced (binary cross-entropy);
  the generator learns by the cloze task.

The joint loss is next-item + ``contrastive_weight`` x InfoNCE +
``discriminator_weight`` x discriminator + ``generator_weight`` x generator.
Only the encoder serves: the state is the last L clicks and the query the
encoder's output at the last one.

Two details differ from the code, both where it reads padding as items: the
contrastive mean covers the real items among the last k (the code averages
padded positions too), and the generator guesses among items only (the
code's argmax may pick the padding row).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.bert4rec import (
    BERT4RecConfig,
    BertEncoder,
    bert_init,
    cloze_positions,
    cut_padding,
    encoder_last_numpy,
)
from models.windowed import Pairs, WindowedModel


@dataclass(frozen=True)
class ECLSRConfig:
    n_items: int
    dim: int = 64
    n_blocks: int = 2
    n_heads: int = 2
    max_len: int = 50
    dropout: float = 0.5
    attention_dropout: float = 0.5
    mask_ratio: float = 0.2
    contrastive_k: int = 10
    temperature: float = 0.05
    contrastive_weight: float = 0.1
    discriminator_weight: float = 0.01
    generator_weight: float = 0.02
    seed: int = 0

    def __post_init__(self) -> None:
        self.encoder_config()  # the encoder's own checks
        if self.contrastive_k < 1 or self.temperature <= 0:
            raise ValueError("ECL-SR: contrastive_k must be positive and temperature above 0")
        for name in ("contrastive_weight", "discriminator_weight", "generator_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"ECL-SR: {name} must not be negative")

    def encoder_config(self) -> BERT4RecConfig:
        return BERT4RecConfig(
            n_items=self.n_items,
            dim=self.dim,
            n_blocks=self.n_blocks,
            n_heads=self.n_heads,
            max_len=self.max_len,
            dropout=self.dropout,
            attention_dropout=self.attention_dropout,
            mask_prob=self.mask_ratio,
            seed=self.seed,
        )


class ECLSR(WindowedModel):
    n_interests = 1
    config_class = ECLSRConfig

    def __init__(self, config: ECLSRConfig) -> None:
        super().__init__()
        self.config = config
        stack = config.encoder_config()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            # row 0 is padding, item row i is embedding row i + 1, the last row the mask token
            self.embedding = nn.Embedding(config.n_items + 2, config.dim, padding_idx=0)
            self.encoder = BertEncoder(stack)
            self.generator = BertEncoder(stack)
            self.discriminator = nn.Linear(config.dim, 1, bias=False)
            bert_init(self)
            with torch.no_grad():
                self.embedding.weight[0].zero_()

    def embed(self, items: torch.Tensor) -> torch.Tensor:
        return self.embedding(items + 1)

    def sequence_output(self, items: torch.Tensor) -> torch.Tensor:
        """The encoder's hidden states [B, W, d] (cut all-padding columns come back as 0)."""
        items, cut = cut_padding(items, self.config.max_len)
        x = self.encoder(self.embed(items), items >= 0, causal=True)
        return F.pad(x, (0, 0, cut, 0)) if cut else x

    def training_pairs(
        self, inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator
    ) -> Pairs:
        cfg = self.config
        _, cut = cut_padding(inputs, cfg.max_len)
        inputs, targets = inputs[:, cut:], targets[:, cut:]
        real = inputs >= 0
        first = self.encoder(self.embed(inputs), real, causal=True)
        where = real & (targets >= 0)
        window = torch.cat([inputs, targets[:, -1:]], dim=1)
        pairs = Pairs(first[where], targets[where], window[where.nonzero()[:, 0]])
        extra = {}
        if cfg.contrastive_weight:
            second = self.encoder(self.embed(inputs), real, causal=True)  # another dropout draw
            extra["contrastive"] = cfg.contrastive_weight * self.invariance(first, second, real)
        if cfg.discriminator_weight or cfg.generator_weight:
            gen, disc = self.equivariance(inputs, real, first, generator)
            extra["generator"] = cfg.generator_weight * gen
            extra["discriminator"] = cfg.discriminator_weight * disc
        pairs.extra.update(extra)
        return pairs

    def last_k_mean(self, hidden: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        L = hidden.shape[1]
        last = torch.arange(L, device=hidden.device) >= L - self.config.contrastive_k
        keep = (real & last[None]).to(hidden.dtype)[..., None]
        return (hidden * keep).sum(1) / keep.sum(1).clamp(min=1.0)

    def invariance(
        self, first: torch.Tensor, second: torch.Tensor, real: torch.Tensor
    ) -> torch.Tensor:
        """InfoNCE between the two dropout views: row i of the first against all rows of the
        second, its own the positive."""
        z0 = F.normalize(self.last_k_mean(first, real), dim=-1)
        z1 = F.normalize(self.last_k_mean(second, real), dim=-1)
        logits = z0 @ z1.T / self.config.temperature
        return F.cross_entropy(logits, torch.arange(len(z0), device=z0.device))

    def equivariance(
        self,
        inputs: torch.Tensor,
        real: torch.Tensor,
        first: torch.Tensor,
        generator: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(the generator's cloze loss, the discriminator's replaced-item loss)."""
        hide = cloze_positions(inputs, self.config.mask_ratio, generator)
        masked = torch.where(hide, torch.full_like(inputs, self.config.n_items), inputs)
        guessed = self.generator(self.embed(masked), real, causal=False)[hide]
        logits = guessed @ self.item_vectors().T
        gen_loss = F.cross_entropy(logits, inputs[hide])
        replaced = inputs.clone()
        replaced[hide] = logits.detach().argmax(1)
        labels = (replaced != inputs) & real
        judged = self.encoder(self.embed(replaced) + first, real, causal=True)
        verdict = self.discriminator(judged).squeeze(-1)
        disc_loss = F.binary_cross_entropy_with_logits(verdict[real], labels[real].float())
        return gen_loss, disc_loss

    # -- the model contract (models/contract.py) -----------------------------------------------

    def item_vectors(self) -> torch.Tensor:
        return self.embedding.weight[1 : self.config.n_items + 1]

    def encode(self, prefix: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Queries [B, 1, d]: the encoder's output at the last click of each window."""
        return self.sequence_output(self.window(prefix))[:, -1:, :]

    def numpy_query(self, clicks: np.ndarray) -> np.ndarray | None:
        """The encoder in numpy (``encoder_last_numpy``); no click yet: the torch forward."""
        if not len(clicks):
            return None
        p = self.numpy_parameters()
        stack = self.config.encoder_config()
        return encoder_last_numpy(p["embedding.weight"][clicks + 1], p, "encoder.", stack, True)
