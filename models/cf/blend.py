"""A linear blend of fitted rating models (the Netflix-prize way of combining them).

r_hat(u, i) = w_0 + sum_m w_m r_hat_m(u, i), clipped to the rating scale. The
weights are fitted (in ``training.cf.blend_fit``) on ratings held out of the
training fold, never on the pairs being predicted, so the blend is one more
model with its own fit step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.cf.baseline import RATING_SCALE
from models.cf.recommend import RatingModel


@dataclass
class Blend:
    names: tuple[str, ...]
    members: list[RatingModel]
    weights: np.ndarray  # float64 [n_members]
    intercept: float
    scale: tuple[float, float] = RATING_SCALE

    @property
    def n_users(self) -> int:
        return self.members[0].n_users

    @property
    def n_items(self) -> int:
        return self.members[0].n_items

    def member_predictions(
        self, users: np.ndarray, items: np.ndarray, days: np.ndarray | None = None
    ) -> np.ndarray:
        """[n_pairs, n_members]: every member's prediction, the blend's inputs."""
        return np.column_stack([m.predict(users, items, days) for m in self.members])

    def predict(
        self, users: np.ndarray, items: np.ndarray, days: np.ndarray | None = None
    ) -> np.ndarray:
        x = self.member_predictions(users, items, days)
        return np.clip(self.intercept + x @ self.weights, *self.scale)

    def user_scores(self, user: int) -> np.ndarray:
        # each member scores "now" in its own way (timeSVD++: at the last training day)
        x = np.column_stack([m.user_scores(user) for m in self.members])
        return np.clip(self.intercept + x @ self.weights, *self.scale)

    def item_similarity(self, item: int) -> np.ndarray:
        """The similarity of the member with the largest weight (a blend has no item space)."""
        return self.members[int(np.argmax(self.weights))].item_similarity(item)
