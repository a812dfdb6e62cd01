"""The most similar other item of every item, by ItemCF-IUF over the training sequences.

CoSeRec (Liu et al., "Contrastive Self-supervised Sequential Recommendation with
Robust Augmentation", 2021) inserts and substitutes items by their most similar
item, computed offline from the training sequences. Of its similarity models
this is the default of its code, ItemCF-IUF (item-based CF with the inverse
user frequency of Breese et al.): over the *distinct* items I_u of every
sequence u,

    C(i, j) = sum over u holding both i and j of 1 / log(1 + |I_u|)
    sim(i, j) = C(i, j) / sqrt(N(i) * N(j))

where N(i) counts the sequences that hold i. A long sequence thus says less
about each of its pairs than a short one, and the cosine-like normalisation
keeps popular items from being everyone's neighbour. Only the top-1 is needed
(the code's insert and substitute take one item per position by default).

Where it departs from the code: ties go to the lowest item row (the code keeps
whichever co-occurrence its dictionary met first), and an item that shares no
sequence with another maps to itself (the code draws a random item for it).

Vectorised with torch sparse matrices: the sequence-by-item incidence matrix X
(weighted by the IUF term) gives C = Xw^T X in one sparse product; no Python
loop runs per sequence or per item.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch


def _incidence(
    items: torch.Tensor, offsets: torch.Tensor, n_items: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(sequence, item) of every distinct item of every sequence, sorted by sequence."""
    lengths = offsets[1:] - offsets[:-1]
    sequence = torch.repeat_interleave(torch.arange(len(lengths)), lengths)
    pairs = torch.unique(sequence * n_items + items)  # a re-click counts once, as a user dict
    return pairs // n_items, pairs % n_items


def item_cf_iuf(items: np.ndarray, offsets: np.ndarray, n_items: int) -> torch.Tensor:
    """ItemCF-IUF similarity as a coalesced sparse [n_items, n_items] float64 matrix.

    ``items``/``offsets`` are CSR rows of item rows, one per training sequence.
    The diagonal is left out: an item is never its own neighbour.
    """
    items_t = torch.as_tensor(np.asarray(items, dtype=np.int64).copy())
    offsets_t = torch.as_tensor(np.asarray(offsets, dtype=np.int64).copy())
    sequence, item = _incidence(items_t, offsets_t, n_items)
    n_sequences = len(offsets_t) - 1
    distinct = torch.bincount(sequence, minlength=n_sequences).double()
    iuf = 1.0 / torch.log1p(distinct)
    shape = (n_sequences, n_items)
    index = torch.stack([sequence, item])
    ones = torch.ones(len(item), dtype=torch.float64)
    x = torch.sparse_coo_tensor(index, ones, shape, check_invariants=True)
    xw = torch.sparse_coo_tensor(index, iuf[sequence], shape, check_invariants=True)
    with warnings.catch_warnings():  # torch routes the product through its (beta) CSR kernels
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        co = torch.sparse.mm(xw.t().coalesce(), x.coalesce()).coalesce()
    i, j = co.indices()
    off_diagonal = i != j
    i, j, c = i[off_diagonal], j[off_diagonal], co.values()[off_diagonal]
    holders = torch.bincount(item, minlength=n_items).double()
    score = c / torch.sqrt(holders[i] * holders[j])
    index = torch.stack([i, j])
    shape = (n_items, n_items)  # a subset of coalesced indices stays sorted and unique
    return torch.sparse_coo_tensor(index, score, shape, check_invariants=True, is_coalesced=True)


def most_similar_items(items: np.ndarray, offsets: np.ndarray, n_items: int) -> torch.Tensor:
    """int64 [n_items]: each item row's most similar other item by ItemCF-IUF (itself if none).

    Ties go to the lowest row. This is the ``similar`` table of
    ``models.augment.insert`` and ``substitute``.
    """
    sim = item_cf_iuf(items, offsets, n_items)
    i, j = sim.indices()
    score = sim.values()
    best = torch.full((n_items,), -torch.inf, dtype=torch.float64)
    best = best.scatter_reduce(0, i, score, reduce="amax")
    top = score == best[i]
    none = torch.full((n_items,), n_items, dtype=torch.int64)
    column = none.scatter_reduce(0, i[top], j[top], reduce="amin")
    return torch.where(column < n_items, column, torch.arange(n_items))
