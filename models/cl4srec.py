"""CL4SRec (Xie et al., ICDE 2022): SASRec with a contrastive objective over augmented views.

Each training window is augmented twice, each time by one of crop, mask and
reorder picked at random per row (``models.augment``); the encoder's outputs
at the last position of the two views are pulled together by NT-Xent (cosine
similarity over ``temperature``; the other 2B - 2 views of the batch are the
negatives), weighted by ``contrastive_weight`` beside the next-item loss of
the original window. The encoder is SASRec's network, with one more
embedding row for the mask token; only the encoder serves, as SASRec.

The augmentation strengths default to the CoSeRec / ICLRec code's (crop 0.2,
mask 0.7, reorder 0.2), which trains on the same Amazon files.

``augmentations = "coserec"`` adds CoSeRec's (Liu et al., 2021) insert and
substitute by item similarity: each view is one of five per row, and a row of
at most ``augment_threshold`` items picks among insert, substitute and mask
only, as CoSeRec's code (its rates insert 0.4, substitute 0.1, threshold 4;
-1 lets every row pick among all five). The most similar item of each item
(ItemCF-IUF over the training sequences, ``models.item_similarity``) is built
by ``set_training_sequences``, which the training loop calls before the first
step; it is a training aid only, so it is not part of the checkpoint. A
window narrower than ``max_len`` is widened first, so an insert grows a short
sequence up to ``max_len`` (the code pads every view to it). What CoSeRec adds
beyond this is left out: after a warm-up its code also mixes in a similarity
from the model's own item embeddings; and its length-threshold branch reorders
with the mask's share (0.7), where this one keeps ``reorder``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from models.augment import coserec_augment, random_augment
from models.item_similarity import most_similar_items
from models.sasrec import SASRec, SASRecConfig
from models.windowed import Pairs


@dataclass(frozen=True)
class CL4SRecConfig(SASRecConfig):
    crop: float = 0.2  # eta: the share of a sequence a crop keeps
    mask: float = 0.7  # gamma: the share a mask hides
    reorder: float = 0.2  # beta: the share a reorder shuffles
    temperature: float = 1.0
    contrastive_weight: float = 0.1
    # "cl4srec": crop, mask, reorder; "coserec": also insert and substitute by item similarity
    augmentations: Literal["cl4srec", "coserec"] = "cl4srec"
    insert_rate: float = 0.4  # CoSeRec: the share of items that get their similar item before
    substitute_rate: float = 0.1  # CoSeRec: the share replaced by their similar item
    augment_threshold: int = 4  # CoSeRec: rows of at most this many items skip crop, reorder

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.augmentations not in ("cl4srec", "coserec"):
            raise ValueError(
                f"CL4SRec: augmentations must be 'cl4srec' or 'coserec', not {self.augmentations!r}"
            )
        if self.augment_threshold < -1:
            raise ValueError("CL4SRec: augment_threshold must be -1 (off) or more")
        for name in ("crop", "mask", "reorder", "insert_rate", "substitute_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"CL4SRec: {name} {getattr(self, name)} is not in [0, 1]")
        if self.temperature <= 0 or self.contrastive_weight < 0:
            raise ValueError("CL4SRec: temperature must be above 0, the weight not negative")


def nt_xent(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent over 2B views: each view's positive is its pair, the other 2B - 2 negatives."""
    z = F.normalize(torch.cat([a, b]), dim=-1)
    logits = z @ z.T / temperature
    logits.fill_diagonal_(-torch.inf)
    n = len(a)
    labels = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(a.device)
    return F.cross_entropy(logits, labels)


class CL4SRec(SASRec):
    config_class = CL4SRecConfig
    extra_tokens = 1
    config: CL4SRecConfig

    def __init__(self, config: CL4SRecConfig) -> None:
        super().__init__(config)
        # item row -> its most similar item (CoSeRec's augmentations), rebuilt for each training
        self.register_buffer("similar", torch.empty(0, dtype=torch.long), persistent=False)

    def set_training_sequences(self, items: np.ndarray, offsets: np.ndarray) -> None:
        """What the model learns from the training sequences (CSR rows) before training."""
        if self.config.augmentations == "coserec":
            table = most_similar_items(items, offsets, self.config.n_items)
            self.similar = table.to(self.embedding.weight.device)

    def augment(self, window: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One augmented view of each row of ``window``, by the configured set."""
        cfg = self.config
        if cfg.augmentations == "cl4srec":
            return random_augment(window, generator, cfg.n_items, cfg.crop, cfg.mask, cfg.reorder)
        if len(self.similar) != cfg.n_items:
            raise RuntimeError("CL4SRec: CoSeRec's augmentations need set_training_sequences")
        rates = (cfg.crop, cfg.mask, cfg.reorder, cfg.insert_rate, cfg.substitute_rate)
        window = F.pad(window, (max(0, cfg.max_len - window.shape[1]), 0), value=-1)
        return coserec_augment(
            window, generator, cfg.n_items, self.similar, rates, cfg.augment_threshold
        )

    def training_pairs(
        self, inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator
    ) -> Pairs:
        pairs = super().training_pairs(inputs, targets, generator)
        cfg = self.config
        if cfg.contrastive_weight:
            window = torch.cat([inputs, targets[:, -1:]], dim=1)  # the whole training sequence
            views = [self.augment(window, generator) for _ in range(2)]
            a, b = (self.sequence_output(v[:, -cfg.max_len :])[:, -1] for v in views)
            pairs.extra["contrastive"] = cfg.contrastive_weight * nt_xent(a, b, cfg.temperature)
        return pairs
