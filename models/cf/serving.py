"""The classic CF models in the service's session form (``SequenceModel``, DESIGN.md s.3).

A visitor of the shop is not a training user, so the service folds the clicked
items in as the user's implicit feedback N(u):

- ``cf-factors`` (SVD, SVD++, timeSVD++, baseline): the SVD++ fold-in. The query is
  [|N|^-1/2 sum_{j in N} y_j, 1] and item i's vector [q_i, b_i], so the inner
  product is b_i + q_i . |N|^-1/2 sum y_j, which is SVD++'s prediction for a user
  with p_u = 0 (mu and b_u do not change a ranking). For SVD, which has no y_j,
  the item factors q_j stand in for them. The state is [sum y_j, |N|]: one
  ``step`` adds a vector, so batched and incremental scores agree exactly.
- ``cf-knn`` (item- or user-based kNN): the item-item similarity rows are the item
  vectors and the state counts the clicks per item, so an item's score is the sum
  of its similarities to the clicked items (item-based kNN on implicit clicks).
"""

from __future__ import annotations

from typing import Any

import torch


class FactorSessionModel:
    n_interests = 1

    def __init__(self, item_factors: torch.Tensor, item_bias: torch.Tensor, implicit: torch.Tensor):
        self.item_factors = item_factors.float()
        self.item_bias = item_bias.float()
        self.implicit = implicit.float()
        self._vectors = torch.cat([self.item_factors, self.item_bias[:, None]], dim=1)

    @classmethod
    def from_checkpoint(
        cls, hyperparameters: dict[str, Any], weights: dict[str, torch.Tensor]
    ) -> FactorSessionModel:
        return cls(weights["item_factors"], weights["item_bias"], weights["implicit"])

    def checkpoint_weights(self) -> dict[str, torch.Tensor]:
        return {
            "item_factors": self.item_factors,
            "item_bias": self.item_bias,
            "implicit": self.implicit,
        }

    def item_vectors(self) -> torch.Tensor:
        return self._vectors

    def init_state(self) -> torch.Tensor:
        return torch.zeros(self.implicit.shape[1] + 1)

    def step(self, state: torch.Tensor, item: int) -> torch.Tensor:
        out = state.clone()
        out[:-1] += self.implicit[item]
        out[-1] += 1.0
        return out

    def interests(self, state: torch.Tensor) -> torch.Tensor:
        norm = state[-1].clamp_min(1.0).rsqrt()
        return torch.cat([state[:-1] * norm, torch.ones(1)])[None, :]

    def encode(self, prefix: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        valid = prefix >= 0
        vecs = self.implicit[prefix.clamp_min(0)] * valid[..., None]
        count = valid.sum(1, keepdim=True).float()
        query = vecs.sum(1) * count.clamp_min(1.0).rsqrt()
        return torch.cat([query, torch.ones(len(prefix), 1)], dim=1)[:, None, :]


class KnnSessionModel:
    n_interests = 1

    def __init__(self, similarity: torch.Tensor):
        self.similarity = similarity.float()

    @classmethod
    def from_checkpoint(
        cls, hyperparameters: dict[str, Any], weights: dict[str, torch.Tensor]
    ) -> KnnSessionModel:
        return cls(weights["similarity"])

    def checkpoint_weights(self) -> dict[str, torch.Tensor]:
        return {"similarity": self.similarity}

    def item_vectors(self) -> torch.Tensor:
        return self.similarity

    def init_state(self) -> torch.Tensor:
        return torch.zeros(self.similarity.shape[0])

    def step(self, state: torch.Tensor, item: int) -> torch.Tensor:
        out = state.clone()
        out[item] += 1.0
        return out

    def interests(self, state: torch.Tensor) -> torch.Tensor:
        return state[None, :]

    def encode(self, prefix: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        counts = torch.zeros(len(prefix), self.similarity.shape[0] + 1)
        counts.scatter_add_(
            1, prefix.masked_fill(prefix < 0, self.similarity.shape[0]), torch.ones(prefix.shape)
        )
        return counts[:, None, :-1]
