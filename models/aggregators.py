"""From the K x N' candidates of K interest vectors to one top-N list (ComiRec, KDD 2020).

Both aggregators take what an inner-product index returns for the K query
vectors of one user: ``scores[K, N']`` and ``ids[K, N']`` (row indices, ``-1``
where the index had fewer items). An item found by several interests counts
once, with its best score ``f(u, i) = max_k e_i . v_k`` and the interest that
gave it. Within one interest's row the ids are distinct, as any k-NN index
returns them.

- ``max_score``: the N candidates with the largest ``f``.
- ``diversity_greedy``: ComiRec's controllable aggregator. It builds the list
  one item at a time, each step taking the candidate that maximises
  ``f(u, i) + lambda * sum_{j in S} g(i, j)`` with ``g(i, j) = 1`` when i and j
  are in different categories. The sum is ``|S| - (items of S in i's
  category)``, so keeping a count per category makes a step one vectorised pass
  over the candidates: O(N * |M|) in all. ``lambda = 0`` gives max-score.

Items without a category (code ``-1``) form one category of their own, so a
catalog without categories gets no diversity bonus at all. Ties are broken by
the lower row index, so results are deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Ranked:
    """A top-N list: item rows, their scores ``f(u, i)`` and which interest found each."""

    items: np.ndarray  # int64 [n]
    scores: np.ndarray  # float32 [n]
    interests: np.ndarray  # int64 [n]


def candidates(scores: np.ndarray, ids: np.ndarray, exclude: np.ndarray | None = None) -> Ranked:
    """De-duplicated candidates ordered by ``f`` (best first, ties by row), minus ``exclude``."""
    scores = np.asarray(scores, np.float32)
    ids = np.asarray(ids, np.int64)
    if scores.shape != ids.shape or scores.ndim != 2:
        raise ValueError(f"scores and ids must both be [K, N'], got {scores.shape}, {ids.shape}")
    flat_ids, flat_scores = ids.ravel(), scores.ravel()
    keep = flat_ids >= 0
    if exclude is not None and len(exclude):
        keep &= ~_member(flat_ids, np.asarray(exclude, np.int64))
    flat_ids, flat_scores = flat_ids[keep], flat_scores[keep]
    if ids.shape[0] == 1:  # one query (GRU4Rec): no duplicates, every item from interest 0
        order = np.lexsort((flat_ids, -flat_scores))
        return Ranked(flat_ids[order], flat_scores[order], np.zeros(len(order), np.int64))
    interest = np.repeat(np.arange(ids.shape[0]), ids.shape[1])[keep]
    # Best score first, then lower row, then lower interest: the first occurrence of
    # each row in this order is its max over interests.
    order = np.lexsort((interest, flat_ids, -flat_scores))
    flat_ids, flat_scores, interest = flat_ids[order], flat_scores[order], interest[order]
    _, first = np.unique(flat_ids, return_index=True)
    first.sort()
    flat_ids, flat_scores, interest = flat_ids[first], flat_scores[first], interest[first]
    return Ranked(flat_ids, flat_scores, interest)


def _member(values: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """``np.isin`` without its sort for the small arrays of one request (a few hundred)."""
    if len(values) * len(pool) <= 65_536:
        return (values[:, None] == pool[None, :]).any(axis=1)
    return np.isin(values, pool)


def max_score(
    scores: np.ndarray, ids: np.ndarray, n: int, exclude: np.ndarray | None = None
) -> Ranked:
    """The top ``n`` candidates by ``f(u, i) = max_k e_i . v_k``."""
    c = candidates(scores, ids, exclude)
    return Ranked(c.items[:n], c.scores[:n], c.interests[:n])


def diversity_greedy(
    scores: np.ndarray,
    ids: np.ndarray,
    n: int,
    categories: np.ndarray,
    lam: float,
    exclude: np.ndarray | None = None,
) -> Ranked:
    """ComiRec's greedy list: each step maximises ``f(u, i) + lam * #{j in S: cat j != cat i}``.

    ``categories`` maps every item row to an integer category (``-1`` = none).
    The reported score of an item is its ``f(u, i)``, not the greedy gain.
    """
    c = candidates(scores, ids, exclude)
    if lam == 0.0 or len(c.items) <= 1:
        return Ranked(c.items[:n], c.scores[:n], c.interests[:n])
    # Compact category codes of the candidates, so the counts are a small array.
    _, cat = np.unique(np.asarray(categories)[c.items], return_inverse=True)
    counts = np.zeros(cat.max() + 1, np.int64)
    f = c.scores.astype(np.float64)
    taken = np.zeros(len(f), bool)
    picks = np.empty(min(n, len(f)), np.int64)
    for step in range(len(picks)):
        gain = f + lam * (step - counts[cat])
        gain[taken] = -np.inf
        best = int(np.argmax(gain))  # first maximum = best f, then lowest row
        picks[step] = best
        taken[best] = True
        counts[cat[best]] += 1
    return Ranked(c.items[picks], c.scores[picks], c.interests[picks])
