"""MIND (Li et al., "Multi-Interest Network with Dynamic Routing for Recommendation at
Tmall", CIKM 2019): behaviour-to-interest (B2I) routing and label-aware attention.

Differences from ComiRec-DR, each as in the MIND paper:

- one bilinear map ``S`` (d x d) shared by every behaviour and every interest,
  so the interests only differ through the routing logits, which are drawn from
  N(0, 1) and kept fixed (not learned);
- the number of interests adapts to the history: ``K'_u = max(1, min(K,
  floor(log2 |I_u|)))``; inactive interests are left out of the attention in
  training and repeat the first interest when served;
- after routing, the interest capsules go through a ReLU layer (the paper's
  "H layers"; there is no user profile to concatenate here);
- training reads the user vector with label-aware attention,
  ``v = V softmax(pow(V^T e_target, p))``, instead of ComiRec's argmax.
  ``p`` must keep ``pow`` defined for negative inner products, so a
  non-integer power is applied to the sign-preserving ``|x|^p * sign(x)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from models.comirec import MultiInterestConfig, MultiInterestModel, dynamic_routing


class MIND(MultiInterestModel):
    default_routing_std = 1.0  # the MIND paper's N(0, 1) routing logits

    def __init__(self, config: MultiInterestConfig) -> None:
        super().__init__(config)
        d = config.dim
        self.shared_map = nn.Parameter(torch.empty(d, d))
        self.hidden = nn.Linear(d, d)
        with torch.no_grad():
            self.shared_map.normal_(0.0, 1.0 / math.sqrt(d), generator=self.generator)
            # nn.Linear's default bounds, drawn from the model's generator so ``seed`` fixes them
            for p in (self.hidden.weight, self.hidden.bias):
                p.uniform_(-1.0 / math.sqrt(d), 1.0 / math.sqrt(d), generator=self.generator)
        self.keep_routing_logits()

    def active_interests(self, mask: torch.Tensor) -> torch.Tensor:
        """[B, K] bool: the first ``max(1, min(K, floor(log2 n)))`` interests of each window."""
        n = mask.sum(dim=1).clamp(min=1).double()
        k_user = torch.floor(torch.log2(n)).long().clamp(1, self.config.n_interests)
        return torch.arange(self.config.n_interests, device=mask.device)[None, :] < k_user[:, None]

    def extract(self, items: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        K = self.config.n_interests
        e = self.embedding(items) @ self.shared_map.T
        predictions = e[:, None].expand(-1, K, -1, -1)
        active = self.active_interests(mask)
        # Inactive interests take no share of any behaviour.
        logits = self.initial_logits(len(items), items.device)
        logits = logits.masked_fill(~active[..., None], -torch.inf)
        capsules = dynamic_routing(predictions, mask, logits, self.config.routing_iterations)
        return torch.relu(self.hidden(capsules)), active

    def readout(
        self, interests: torch.Tensor, active: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        """Label-aware attention over the active interests with power ``p``."""
        x = torch.einsum("bkd,bd->bk", interests, target)
        p = self.config.power
        powered = x.pow(p) if float(p).is_integer() else x.abs().pow(p) * x.sign()
        weights = torch.softmax(powered.masked_fill(~active, -torch.inf), dim=1)
        return torch.einsum("bk,bkd->bd", weights, interests)
