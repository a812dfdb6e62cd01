"""Alternating least squares for biased MF: r_ui ~ mu + b_u + b_i + q_i . p_u.

It minimises the objective the SGD fit descends (``svd_objective``):

    sum_(u,i) e_ui^2 + reg sum_u n_u |p_u|^2 + reg_b sum_u n_u b_u^2  (+ the same over items)

with n_u the user's number of ratings: SGD applies its penalty once per rating, so
its per-user weight is n_u (Zhou et al. 2008 call this weighted-lambda ALS-WR).
With the items fixed, the objective is a ridge regression per user in [p_u, b_u]
on the features [q_i, 1] and targets r_ui - mu - b_i, solved exactly from its
(k+1) x (k+1) normal equations; then the same for the items. Each half-step is
an exact block minimiser, so the objective never increases.

All users' normal matrices are built at once, as the sparse rating indicator
times every item's outer product [q_i, 1][q_i, 1]^T (its upper triangle), and
solved in one batched call: O(n_ratings k^2) work, O((n_users + n_items) k^2)
memory; no Python loop over users or ratings.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from models.cf.ratings import Ratings


def ridge_rows(
    rows: np.ndarray,
    cols: np.ndarray,
    targets: np.ndarray,
    n_rows: int,
    features: np.ndarray,
    penalty: np.ndarray,
) -> np.ndarray:
    """For every row r: argmin_x sum_(r,c) (t_rc - features_c . x)^2 + sum_d penalty_rd x_d^2.

    ``features`` is [n_cols, d] and ``penalty`` [n_rows, d] (positive where the row
    has no ratings, so every system is solvable); returns x as [n_rows, d].
    """
    n_cols, d = features.shape
    pick = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_rows, n_cols))
    # the normal matrix is symmetric: sum the upper triangle of the outer products only
    up, left = np.triu_indices(d)
    upper = np.asarray(pick @ (features[:, up] * features[:, left]))
    where = np.empty((d, d), np.int64)  # entry (a, b) of the matrix is upper[where[a, b]]
    where[up, left] = where[left, up] = np.arange(len(up))
    gram = np.take(upper, where, axis=1)
    gram[:, np.arange(d), np.arange(d)] += penalty
    weighted = sp.csr_matrix((targets, (rows, cols)), shape=(n_rows, n_cols))
    rhs = np.asarray(weighted @ features)
    return np.linalg.solve(gram, rhs[:, :, None])[:, :, 0]


def _penalty(counts: np.ndarray, k: int, reg: float, reg_b: float, biased: bool) -> np.ndarray:
    """Per-row diagonal of the ridge: reg n_r on the factors, reg_b n_r on the bias."""
    weight = np.maximum(counts, 1).astype(np.float64)[:, None]
    per_dim = np.r_[np.full(k, reg), [reg_b] if biased else []]
    return weight * per_dim


def _augment(factors: np.ndarray, biased: bool) -> np.ndarray:
    """The features a row's unknowns multiply: [factors, 1] (the 1 multiplies the bias)."""
    f = factors.astype(np.float64)
    return np.c_[f, np.ones(len(f))] if biased else f


def als_epoch(
    r: Ratings,
    mu: float,
    bu: np.ndarray,
    bi: np.ndarray,
    P: np.ndarray,
    Q: np.ndarray,
    reg: float,
    reg_b: float,
    biased: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One user half-step, then one item half-step; returns new (bu, bi, P, Q)."""
    k = P.shape[1]
    n_u = np.bincount(r.users, minlength=r.n_users)
    n_i = np.bincount(r.items, minlength=r.n_items)
    x = ridge_rows(
        r.users, r.items, r.values - mu - bi[r.items], r.n_users,
        _augment(Q, biased), _penalty(n_u, k, reg, reg_b, biased),
    )  # fmt: skip
    P = x[:, :k]
    bu = x[:, k] if biased else bu
    x = ridge_rows(
        r.items, r.users, r.values - mu - bu[r.users], r.n_items,
        _augment(P, biased), _penalty(n_i, k, reg, reg_b, biased),
    )  # fmt: skip
    Q = x[:, :k]
    bi = x[:, k] if biased else bi
    return bu, bi, P, Q


def svd_objective(
    r: Ratings,
    mu: float,
    bu: np.ndarray,
    bi: np.ndarray,
    P: np.ndarray,
    Q: np.ndarray,
    reg: float,
    reg_b: float,
) -> float:
    """The penalised squared error both fits minimise (unclipped predictions)."""
    dots = np.einsum("nk,nk->n", P[r.users].astype(np.float64), Q[r.items])
    err = r.values - (mu + bu[r.users] + bi[r.items] + dots)
    n_u = np.bincount(r.users, minlength=r.n_users)
    n_i = np.bincount(r.items, minlength=r.n_items)
    factors = n_u @ np.sum(np.square(P, dtype=np.float64), 1)
    factors += n_i @ np.sum(np.square(Q, dtype=np.float64), 1)
    biases = n_u @ bu**2 + n_i @ bi**2
    return float(err @ err + reg * factors + reg_b * biases)
