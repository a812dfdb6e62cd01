"""Neighbourhood models: user- and item-based kNN (Herlocker 1999, Sarwar 2001, Koren 2008/2010).

Similarities are computed for all pairs at once with sparse matrix products over
the ratings matrix M (rows: the entities rated *by*, columns: the entities
compared, i.e. items for item-based kNN). With B the 0/1 pattern of M and
sums over the common support only, as in Surprise:

- ``cosine``:  sum r_i r_j / sqrt(sum_common r_i^2 * sum_common r_j^2)
- ``pearson``: the same on ratings centred by their mean over the common support,
  expanded into sums so that it stays a handful of products (R'R, R'B, (R.R)'B, B'B)
- ``pearson_baseline``: cosine of the baseline residuals r - b_ui (Koren 2010, eq. 2)

and a shrinkage (n_common - 1) / (n_common - 1 + shrinkage) towards 0 (Koren's
shrunk correlation). Prediction for (u, i) is the similarity-weighted average over
the k most similar neighbours that have a rating: of the raw ratings
(``center="none"``, KNNBasic), of the ratings minus the neighbours' means
(``"mean"``), or of the baseline residuals (``"baseline"``, Koren 2010 eq. 3; the
baseline may scale the item bias per user, mu + b_u + c_u b_i). As in Surprise,
only neighbours of positive similarity contribute, and fewer than ``min_k`` of
them falls back to the centre. ``den_shrinkage`` (lambda, default 0:
Surprise's rule) adds a constant to the denominator, sum s v / (lambda + sum s),
so a residual backed only by weakly similar neighbours is pulled towards the
centre instead of being trusted in full (the weakness Bell and Koren 2007 and
Koren 2008, section 2.2, note: normalised weights sum to one however unrelated
the neighbours are). The neighbour search is batched in
PyTorch: a test pair gathers the similarities of all the entities its other side
rated, and ``topk`` picks the k largest, no per-pair Python loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from models.cf.baseline import RATING_SCALE, Baseline

SIMILARITIES = ("cosine", "pearson", "pearson_baseline")
CENTERS = ("none", "mean", "baseline")


def _dense(m: sp.spmatrix) -> np.ndarray:
    return np.asarray(m.toarray(), dtype=np.float64)


def similarity_matrix(
    m: sp.csr_matrix, name: str, shrinkage: float = 0.0, min_support: int = 1
) -> np.ndarray:
    """Similarity of the columns of ``m`` (dense [n_cols, n_cols], diagonal 1).

    For ``pearson_baseline`` pass the matrix of baseline residuals.
    """
    if name not in SIMILARITIES:
        raise ValueError(f"unknown similarity {name!r}; choose one of {SIMILARITIES}")
    m = sp.csr_matrix(m, dtype=np.float64)
    b = m.copy()
    b.data[:] = 1.0
    mt, bt = m.T.tocsr(), b.T.tocsr()
    n = _dense(bt @ b)
    prods = _dense(mt @ m)
    sq = _dense(mt.multiply(mt) @ b)  # sq[i, j] = sum over common support of r_i^2
    if name == "pearson":
        s = _dense(mt @ b)  # s[i, j] = sum over common support of r_i
        with np.errstate(divide="ignore", invalid="ignore"):
            inv_n = np.where(n > 0, 1.0 / n, 0.0)
        prods = prods - s * s.T * inv_n
        sq = sq - s * s * inv_n
    den = np.sqrt(np.maximum(sq, 0.0) * np.maximum(sq.T, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        sim = np.where(den > 1e-12, prods / den, 0.0)
    if shrinkage > 0:
        sim *= np.maximum(n - 1, 0) / (np.maximum(n - 1, 0) + shrinkage)
    sim[n < max(min_support, 1)] = 0.0
    np.fill_diagonal(sim, 1.0)
    return sim


@dataclass
class KNN:
    """A fitted neighbourhood model; ``user_based`` says which side the neighbours are on.

    ``neighbour_indptr/index/value`` list, for every entity of the *other* side
    (users for item-based kNN), the neighbours it rated and the centred rating.
    """

    sim: np.ndarray  # [n_x, n_x] float32
    user_based: bool
    k: int
    min_k: int
    center: str
    centre_u: np.ndarray  # [n_users] the centre's user part (b_u, or a user mean)
    centre_i: np.ndarray  # [n_items] the centre's item part
    mu: float
    neighbour_indptr: np.ndarray
    neighbour_index: np.ndarray
    neighbour_value: np.ndarray
    den_shrinkage: float = 0.0
    scale_u: np.ndarray | None = None  # [n_users] c_u of a scaled baseline; None: all 1
    batch_size: int = 4096
    scale: tuple[float, float] = RATING_SCALE

    @property
    def n_users(self) -> int:
        return len(self.centre_u)

    @property
    def n_items(self) -> int:
        return len(self.centre_i)

    def centre(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """What the neighbours' weighted residual is added to."""
        if self.center == "baseline":
            item = self.centre_i[items]
            if self.scale_u is not None:
                item = self.scale_u[users] * item
            return self.mu + self.centre_u[users] + item
        if self.center == "mean":
            return self.centre_u[users] if self.user_based else self.centre_i[items]
        return np.zeros(len(users))

    def predict(
        self, users: np.ndarray, items: np.ndarray, days: np.ndarray | None = None
    ) -> np.ndarray:
        users = np.asarray(users, np.int64)
        items = np.asarray(items, np.int64)
        x, y = (users, items) if self.user_based else (items, users)
        residual, found = self._neighbour_average(x, y)
        base = self.centre(users, items)
        if self.center == "none":
            # KNNBasic without neighbours: the global mean, as Surprise's default prediction.
            base = np.where(found, 0.0, self.mu)
        return np.clip(base + residual, *self.scale)

    def _neighbour_average(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """sum s_{x,x'} v_{x',y} / (lambda + sum s_{x,x'}) over the k nearest x' that rated y.

        Pairs are sorted by how many neighbours their y has, so each batch is padded
        only to its own longest list; padding points at an extra similarity column
        of -inf, which ``topk`` never prefers to a real neighbour.
        """
        index, value = self._padded()
        n_x = self.sim.shape[0]
        sim = self._sim_padded().view(-1)
        lengths = np.diff(self.neighbour_indptr)[y]
        order = np.argsort(lengths, kind="stable")
        out = torch.zeros(len(x), dtype=torch.float64)
        found = torch.zeros(len(x), dtype=torch.bool)
        x_t, y_t = torch.from_numpy(x), torch.from_numpy(y)
        for lo in range(0, len(order), self.batch_size):
            rows = torch.from_numpy(order[lo : lo + self.batch_size])
            width = int(lengths[order[min(lo + self.batch_size, len(order)) - 1]])
            if width == 0:
                continue
            nb = index[y_t[rows], :width]
            s = sim[x_t[rows, None] * (n_x + 1) + nb]
            top_s, top_j = torch.topk(s, min(self.k, width), dim=1)
            top_v = torch.gather(value[y_t[rows], :width], 1, top_j)
            w = top_s.clamp_min(0.0)
            den = w.sum(1)
            enough = ((top_s > 0).sum(1) >= self.min_k) & (den > 0)
            avg = (w * top_v).sum(1) / (torch.where(enough, den, 1.0) + self.den_shrinkage)
            out[rows] = torch.where(enough, avg, 0.0).double()
            found[rows] = enough
        return out.numpy(), found.numpy()

    def _padded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Neighbour lists as [n_other, longest] index (pad: the -inf column) and value."""
        if getattr(self, "_pad_cache", None) is None:
            lengths = np.diff(self.neighbour_indptr)
            width = int(lengths.max()) if len(lengths) else 0
            rows = np.repeat(np.arange(len(lengths)), lengths)
            cols = np.arange(len(rows)) - np.repeat(self.neighbour_indptr[:-1], lengths)
            index = np.full((len(lengths), width), self.sim.shape[0], np.int64)
            value = np.zeros((len(lengths), width), np.float32)
            index[rows, cols] = self.neighbour_index
            value[rows, cols] = self.neighbour_value
            self._pad_cache = (torch.from_numpy(index), torch.from_numpy(value))
        return self._pad_cache

    def _sim_padded(self) -> torch.Tensor:
        if getattr(self, "_sim_cache", None) is None:
            n = self.sim.shape[0]
            ext = np.full((n, n + 1), -np.inf, np.float32)
            ext[:, :n] = self.sim
            self._sim_cache = torch.from_numpy(ext)
        return self._sim_cache

    def user_scores(self, user: int) -> np.ndarray:
        items = np.arange(self.n_items)
        return self.predict(np.full(self.n_items, user), items)

    def item_similarity(self, item: int) -> np.ndarray:
        if not self.user_based:
            return self.sim[item].astype(np.float64)
        # User-based kNN has no item-item matrix: cosine of the items' centred columns.
        m = sp.csr_matrix(
            (self.neighbour_value, self.neighbour_index, self.neighbour_indptr),
            shape=(self.n_items, self.n_users),
        )
        dots = np.asarray((m @ m[item].T).todense()).ravel()
        norms = np.sqrt(np.asarray(m.multiply(m).sum(1)).ravel())
        return dots / np.maximum(norms * norms[item], 1e-12)


def build_knn(
    users: np.ndarray,
    items: np.ndarray,
    values: np.ndarray,
    n_users: int,
    n_items: int,
    baseline: Baseline | None,
    similarity: str = "pearson_baseline",
    user_based: bool = False,
    k: int = 40,
    min_k: int = 1,
    shrinkage: float = 100.0,
    center: str = "baseline",
    min_support: int = 1,
    den_shrinkage: float = 0.0,
) -> KNN:
    """Similarities and neighbour lists from training ratings (``baseline`` for centring)."""
    if center not in CENTERS:
        raise ValueError(f"unknown center {center!r}; choose one of {CENTERS}")
    needs_baseline = center == "baseline" or similarity == "pearson_baseline"
    if needs_baseline and baseline is None:
        raise ValueError("pearson_baseline similarity and baseline centring need baselines")
    mu = float(values.mean())
    residual = values - baseline.baseline(users, items) if needs_baseline else values
    # Rows are the side that does the rating of the compared entities.
    rows, cols, n_rows, n_cols = (
        (items, users, n_items, n_users) if user_based else (users, items, n_users, n_items)
    )
    sim_input = residual if similarity == "pearson_baseline" else values
    m = sp.csr_matrix((sim_input, (rows, cols)), shape=(n_rows, n_cols))
    sim = similarity_matrix(m, similarity, shrinkage, min_support).astype(np.float32)

    scale_u = None
    if center == "baseline":
        centre_u, centre_i, centred = baseline.bu, baseline.bi, residual
        scale_u = None if baseline.cu is None else np.asarray(baseline.cu, np.float64)
    else:
        n_u = np.maximum(np.bincount(users, minlength=n_users), 1)
        n_i = np.maximum(np.bincount(items, minlength=n_items), 1)
        centre_u = np.bincount(users, values, n_users) / n_u
        centre_i = np.bincount(items, values, n_items) / n_i
        if center == "mean":
            centred = values - (centre_u[users] if user_based else centre_i[items])
        else:
            centred = values
    # Neighbour lists grouped by the other side (users for item-based kNN).
    other, same = (items, users) if user_based else (users, items)
    n_other = n_items if user_based else n_users
    order = np.lexsort((same, other))
    indptr = np.zeros(n_other + 1, np.int64)
    np.cumsum(np.bincount(other, minlength=n_other), out=indptr[1:])
    return KNN(
        sim=sim,
        user_based=user_based,
        k=k,
        min_k=min_k,
        center=center,
        centre_u=np.asarray(centre_u, np.float64),
        centre_i=np.asarray(centre_i, np.float64),
        mu=mu,
        neighbour_indptr=indptr,
        neighbour_index=same[order].astype(np.int64),
        neighbour_value=np.asarray(centred, np.float64)[order],
        den_shrinkage=den_shrinkage,
        scale_u=scale_u,
    )
