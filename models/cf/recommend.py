"""Top-N lists from any rating model, and "similar items" from item vectors or similarities."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class RatingModel(Protocol):
    """What every classic CF model offers, whatever its family."""

    n_users: int
    n_items: int

    def predict(
        self, users: np.ndarray, items: np.ndarray, days: np.ndarray | None = None
    ) -> np.ndarray:
        """Predicted ratings for (user, item) pairs, clipped to the rating scale."""
        ...

    def user_scores(self, user: int) -> np.ndarray:
        """Predicted rating of every item for one user: float64 [n_items]."""
        ...

    def item_similarity(self, item: int) -> np.ndarray:
        """Similarity of every item to ``item``: float64 [n_items]."""
        ...


def top_n(scores: np.ndarray, n: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``n`` highest scores, best first; ``exclude`` items never appear.

    Ties are broken by the lower item index, so lists are repeatable.
    """
    scores = np.array(scores, dtype=np.float64)
    if exclude is not None and len(exclude):
        scores[np.asarray(exclude)] = -np.inf
    n = min(n, int(np.isfinite(scores).sum()))
    if n <= 0:
        return np.zeros(0, np.int64)
    part = np.argpartition(-scores, n - 1)[:n]
    order = np.lexsort((part, -scores[part]))
    return part[order].astype(np.int64)


def recommend(model: RatingModel, user: int, n: int, seen: np.ndarray) -> np.ndarray:
    """The ``n`` unseen items with the highest predicted rating for ``user``."""
    return top_n(model.user_scores(user), n, exclude=seen)


def similar_items(model: RatingModel, item: int, n: int) -> np.ndarray:
    """The ``n`` items most similar to ``item`` (the item itself left out)."""
    return top_n(model.item_similarity(item), n, exclude=np.array([item]))


def cosine_row(vectors: np.ndarray, item: int, norms: np.ndarray | None = None) -> np.ndarray:
    """Cosine similarity of every row of ``vectors`` to row ``item``.

    ``norms`` (the rows' L2 norms) can be passed by a caller that keeps them.
    """
    if norms is None:
        norms = np.linalg.norm(vectors, axis=1)
    dots = vectors @ vectors[item]
    return dots / np.maximum(norms * norms[item], 1e-12)
