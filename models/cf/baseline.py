"""Baseline predictors b_ui = mu + b_u + b_i (Koren 2008, section 2.1).

The biases soak up the user and item effects that have nothing to do with
interaction; every other model of this package starts from them. Optionally the
item bias is scaled per user, b_ui = mu + b_u + c_u b_i (the static part of the
baseline of Koren, KDD 2009, eq. 10: users differ in how strongly their ratings
follow an item's general appeal). Fitting (by regularised ALS or by SGD) lives
in ``training.cf.baseline_fit``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RATING_SCALE = (1.0, 5.0)


class SizedByBiases:
    """Sizes of a model holding one bias per user (``bu``) and one per item (``bi``)."""

    bu: np.ndarray
    bi: np.ndarray

    @property
    def n_users(self) -> int:
        return len(self.bu)

    @property
    def n_items(self) -> int:
        return len(self.bi)


@dataclass
class Baseline(SizedByBiases):
    mu: float
    bu: np.ndarray  # float64 [n_users]
    bi: np.ndarray  # float64 [n_items]
    scale: tuple[float, float] = RATING_SCALE
    cu: np.ndarray | None = None  # float64 [n_users] user scale of b_i; None: all 1

    def baseline(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        if self.cu is None:
            return self.mu + self.bu[users] + self.bi[items]
        return self.mu + self.bu[users] + self.cu[users] * self.bi[items]

    def predict(
        self, users: np.ndarray, items: np.ndarray, days: np.ndarray | None = None
    ) -> np.ndarray:
        return np.clip(self.baseline(users, items), *self.scale)

    def user_scores(self, user: int) -> np.ndarray:
        return self.predict(np.full(self.n_items, user), np.arange(self.n_items))

    def item_similarity(self, item: int) -> np.ndarray:
        """Biases carry no item-item information: closeness of the item biases."""
        return -np.abs(self.bi - self.bi[item])

    def weights(self) -> dict[str, np.ndarray]:
        out = {"mu": np.array([self.mu]), "bu": self.bu, "bi": self.bi}
        return out if self.cu is None else {**out, "cu": self.cu}
