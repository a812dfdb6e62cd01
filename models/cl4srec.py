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
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from models.augment import random_augment
from models.sasrec import SASRec, SASRecConfig
from models.windowed import Pairs


@dataclass(frozen=True)
class CL4SRecConfig(SASRecConfig):
    crop: float = 0.2  # eta: the share of a sequence a crop keeps
    mask: float = 0.7  # gamma: the share a mask hides
    reorder: float = 0.2  # beta: the share a reorder shuffles
    temperature: float = 1.0
    contrastive_weight: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("crop", "mask", "reorder"):
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

    def training_pairs(
        self, inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator
    ) -> Pairs:
        pairs = super().training_pairs(inputs, targets, generator)
        cfg = self.config
        if cfg.contrastive_weight:
            window = torch.cat([inputs, targets[:, -1:]], dim=1)  # the whole training sequence
            views = [
                random_augment(window, generator, cfg.n_items, cfg.crop, cfg.mask, cfg.reorder)
                for _ in range(2)
            ]
            a, b = (self.sequence_output(v[:, -cfg.max_len :])[:, -1] for v in views)
            pairs.extra["contrastive"] = cfg.contrastive_weight * nt_xent(a, b, cfg.temperature)
        return pairs
