"""Simple session baselines: POP, S-POP and session Item-KNN.

They prove the data and the evaluation right (their published numbers are
well known) and serve as cold-start fallbacks. All three score a batch of
left-padded prefixes (``-1`` = padding, the last click in column -1) against
every item at once.

Ties matter for these models: a prefix that shares nothing with most items
leaves those items at the same score, and under the ``standard`` rank (1 +
strictly higher) a tied target would look like a hit. Global popularity,
squeezed into [0, 1), breaks such ties as S-POP's definition asks, so a
baseline cannot gain from ties.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch


def popularity(items: np.ndarray, n_items: int) -> np.ndarray:
    """Number of training events per item."""
    return np.bincount(items, minlength=n_items).astype(np.float64)


def _tie_breaker(pop: np.ndarray) -> torch.Tensor:
    """Popularity mapped into [0, 1): below any real count or similarity step."""
    return torch.from_numpy(pop / (pop.max() + 1.0))


class Pop:
    """Most popular items of the training data, the same list for everyone."""

    def fit(self, items: np.ndarray, offsets: np.ndarray, n_items: int) -> Pop:
        self.scores = torch.from_numpy(popularity(items, n_items)).float()
        return self

    def score(self, prefix: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.scores.expand(prefix.shape[0], -1)


class SessionPop:
    """Items clicked most often in the current session; global popularity breaks ties."""

    def fit(self, items: np.ndarray, offsets: np.ndarray, n_items: int) -> SessionPop:
        self.n_items = n_items
        self.base = _tie_breaker(popularity(items, n_items)).float()
        return self

    def score(self, prefix: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        counts = torch.zeros(prefix.shape[0], self.n_items + 1)
        # Padding (-1) is sent to an extra column that is dropped.
        counts.scatter_add_(
            1, prefix.masked_fill(prefix < 0, self.n_items), torch.ones(prefix.shape)
        )
        return counts[:, : self.n_items] + self.base


class ItemKNN:
    """Session Item-KNN (Hidasi et al. 2016 baseline): neighbours of the last click.

    sim(i, j) = c_ij / (s_i^alpha * s_j^(1 - alpha) + lambda), where c_ij counts the
    training sessions holding both items and s_i those holding i; alpha = 0.5 and
    lambda = 0 is plain cosine over the binary session vectors. ``n_neighbors``
    keeps only each item's strongest neighbours (None keeps all); the last item
    itself is excluded unless ``self_similarity`` is set.
    """

    def __init__(
        self,
        alpha: float = 0.5,
        lmbd: float = 0.0,
        n_neighbors: int | None = None,
        self_similarity: bool = False,
    ) -> None:
        self.alpha = alpha
        self.lmbd = lmbd
        self.n_neighbors = n_neighbors
        self.self_similarity = self_similarity

    def fit(self, items: np.ndarray, offsets: np.ndarray, n_items: int) -> ItemKNN:
        # Copies: scipy sorts indices in place, which would reorder the caller's events.
        x = sp.csr_matrix(
            (np.ones(len(items), np.float32), items.copy(), offsets.copy()),
            shape=(len(offsets) - 1, n_items),
        )
        x.sum_duplicates()
        x.data[:] = 1.0
        co = (x.T @ x).tocsr()
        support = co.diagonal().astype(np.float64)
        rows = np.repeat(np.arange(n_items), np.diff(co.indptr))
        denom = support[rows] ** self.alpha * support[co.indices] ** (1 - self.alpha) + self.lmbd
        co.data = (co.data / np.maximum(denom, 1e-12)).astype(np.float32)
        if not self.self_similarity:
            co.setdiag(0.0)
            co.eliminate_zeros()
        if self.n_neighbors is not None:
            co = _keep_top(co, self.n_neighbors)
        self.sim = co
        self.n_items = n_items
        # Similarities are at most 1, so a tie-breaker scaled below the smallest
        # non-zero similarity step never reorders real neighbours.
        smallest = float(co.data[co.data > 0].min()) if co.nnz else 1.0
        self.base = (_tie_breaker(popularity(items, n_items)) * smallest * 0.5).float()
        return self

    def score(self, prefix: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        last = prefix[:, -1].numpy()
        rows = torch.from_numpy(self.sim[last].toarray())
        return rows + self.base


def _keep_top(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the k largest entries of every row (vectorised over rows)."""
    lengths = np.diff(m.indptr)
    row = np.repeat(np.arange(m.shape[0]), lengths)
    order = np.lexsort((-m.data, row))
    rank = np.arange(len(order)) - np.repeat(m.indptr[:-1], lengths)
    keep = np.zeros(len(order), bool)
    keep[order[rank < k]] = True
    out = sp.csr_matrix((m.data * keep, m.indices, m.indptr), shape=m.shape)
    out.eliminate_zeros()
    return out
