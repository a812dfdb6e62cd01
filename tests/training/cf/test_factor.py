"""SVD / SVD++ / timeSVD++: one SGD step by hand, the lazy y_j update against the naive one,
one ALS half-step by hand and against a direct least squares, determinism with a seed,
and prediction consistent with the fitted parameters."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from numba import njit

from models.cf.factor import SVD
from models.cf.ratings import Ratings
from training.cf.factor_als import als_epoch, ridge_rows, svd_objective
from training.cf.factor_fit import (
    SVDConfig,
    SVDppConfig,
    TimeSVDppConfig,
    fit_svd,
    fit_svdpp,
    fit_timesvdpp,
)
from training.cf.sgd_kernels import svd_epoch, svdpp_epoch
from training.params import ParamError


def test_one_svd_sgd_step_by_hand():
    P = np.array([[0.1, 0.2]], np.float32)
    Q = np.array([[0.3, -0.1]], np.float32)
    bu, bi = np.zeros(1), np.zeros(1)
    one = np.array([0], np.int64)
    svd_epoch(one, one, np.array([4.0]), 3.0, bu, bi, P, Q, 0.1, 0.0, 0.1, 0.5, True, 0, True)
    err = 4.0 - (3.0 + 0.03 - 0.02)  # 0.99
    assert bu[0] == pytest.approx(0.1 * err) and bi[0] == pytest.approx(0.1 * err)
    # p <- p + lr (err q - reg p) and q <- q + lr (err p_old - reg q)
    assert P[0] == pytest.approx([0.1 + 0.1 * (err * 0.3 - 0.05), 0.2 + 0.1 * (err * -0.1 - 0.1)])
    assert Q[0] == pytest.approx([0.3 + 0.1 * (err * 0.1 - 0.15), -0.1 + 0.1 * (err * 0.2 + 0.05)])


@njit
def naive_svdpp_epoch(indptr, items, values, imp_indptr, imp_items, mu, bu, bi, P, Q, Y,
                      lr_b, reg_b, lr_f, reg_f, lr_y, reg_y, seed):  # fmt: skip
    """Koren's per-rating SVD++ step, every y_j updated at every rating (O(|N(u)| k))."""
    np.random.seed(seed)
    for u in np.random.permutation(len(indptr) - 1):
        s0, s1 = indptr[u], indptr[u + 1]
        if s0 == s1:
            continue
        nbrs = imp_items[imp_indptr[u] : imp_indptr[u + 1]]
        norm = 1.0 / math.sqrt(len(nbrs))
        for t in s0 + np.random.permutation(s1 - s0):
            i = items[t]
            z = P[u].astype(np.float64).copy()
            for j in nbrs:
                z += norm * Y[j]
            err = values[t] - (mu + bu[u] + bi[i] + np.dot(z, Q[i].astype(np.float64)))
            bu[u] += lr_b * (err - reg_b * bu[u])
            bi[i] += lr_b * (err - reg_b * bi[i])
            q_old = Q[i].copy()
            P[u] += lr_f * (err * q_old - reg_f * P[u])
            Q[i] += lr_f * (err * z - reg_f * q_old)
            for j in nbrs:
                Y[j] += lr_y * (err * norm * q_old - reg_y * Y[j])


def random_ratings(seed: int, n_users: int = 15, n_items: int = 25, n: int = 200) -> Ratings:
    rng = np.random.default_rng(seed)
    pairs = np.unique(rng.integers(0, n_users, n) * n_items + rng.integers(0, n_items, n))
    u, i = np.divmod(pairs, n_items)
    days = 10_000 + rng.uniform(0, 200, len(u))
    return Ratings.from_triplets(u, i, rng.integers(1, 6, len(u)).astype(float), n_users,
                                 n_items, days=days)  # fmt: skip


def test_lazy_y_update_equals_the_naive_svdpp_step():
    r = random_ratings(0)
    rng = np.random.default_rng(1)
    k = 4
    init = [
        rng.normal(0, 0.1, (n, k)).astype(np.float32) for n in (r.n_users, r.n_items, r.n_items)
    ]
    lazy = [a.copy() for a in init]
    naive = [a.copy() for a in init]
    b_lazy = [np.zeros(r.n_users), np.zeros(r.n_items)]
    b_naive = [np.zeros(r.n_users), np.zeros(r.n_items)]
    indptr = r.indptr
    args = (0.01, 0.05, 0.02, 0.1, 0.03, 0.2, 7)
    svdpp_epoch(indptr, r.items, r.values, indptr, r.items, r.mean, *b_lazy, *lazy, *args)
    naive_svdpp_epoch(indptr, r.items, r.values, indptr, r.items, r.mean, *b_naive, *naive, *args)
    for a, b in zip(lazy + b_lazy, naive + b_naive, strict=True):
        assert np.allclose(a, b, atol=2e-5)
    assert not np.allclose(lazy[2], init[2])  # y_j did move


@pytest.mark.parametrize(
    ("fit", "config"),
    [
        (fit_svd, SVDConfig(n_factors=5, n_epochs=3)),
        (fit_svd, SVDConfig(n_factors=5, n_epochs=3, reg=0.1, method="als")),
        (fit_svdpp, SVDppConfig(n_factors=5, n_epochs=3)),
        (fit_timesvdpp, TimeSVDppConfig(n_factors=5, n_epochs=3, n_bins=4)),
    ],
)
def test_fits_are_repeatable_with_a_seed(fit, config):
    r = random_ratings(3)
    a, b, c = fit(r, config, seed=5), fit(r, config, seed=5), fit(r, config, seed=6)
    pa = a.predict(r.users, r.items, r.days)
    assert np.array_equal(pa, b.predict(r.users, r.items, r.days))
    assert not np.array_equal(pa, c.predict(r.users, r.items, r.days))


def test_svd_learns_a_low_rank_matrix():
    rng = np.random.default_rng(4)
    n_users, n_items = 60, 50
    truth = 3 + rng.normal(0, 0.5, (n_users, 2)) @ rng.normal(0, 0.8, (2, n_items))
    u, i = np.divmod(np.arange(n_users * n_items), n_items)
    keep = rng.random(len(u)) < 0.5
    r = Ratings.from_triplets(u[keep], i[keep], truth.ravel()[keep], n_users, n_items)
    model = fit_svd(r, SVDConfig(n_factors=2, n_epochs=200, lr=0.02, reg=0.001), seed=0)
    held = ~keep
    err = model.predict(u[held], i[held]) - np.clip(truth.ravel()[held], 1, 5)
    baseline_err = r.mean - np.clip(truth.ravel()[held], 1, 5)
    assert np.sqrt(np.mean(err**2)) < 0.3 * np.sqrt(np.mean(baseline_err**2))


def test_svdpp_user_scores_match_predict():
    r = random_ratings(5)
    model = fit_svdpp(r, SVDppConfig(n_factors=3, n_epochs=2), seed=0)
    scores = model.user_scores(2)
    assert scores == pytest.approx(model.predict(np.full(r.n_items, 2), np.arange(r.n_items)))


def test_timesvdpp_day_bias_only_for_days_seen_in_training():
    r = random_ratings(6)
    model = fit_timesvdpp(r, TimeSVDppConfig(n_factors=3, n_epochs=5, lr_ud=0.05), seed=0)
    first = r.days[r.users == 0][0]
    seen = model.user_day_bias(np.array([0]), model.axis.day_index(np.array([first])))
    unseen = model.user_day_bias(np.array([0]), model.axis.day_index(np.array([first + 5000])))
    assert seen[0] != 0.0 and unseen[0] == 0.0


def test_one_als_user_half_step_by_hand():
    # One user, k = 1, items with q = 1 and q = 2, item biases 0.5 and -0.5, mu = 3,
    # ratings 4 and 5: targets r - mu - b_i = 0.5 and 2.5, features [q, 1] = [1, 1], [2, 1].
    # Normal equations with penalty n_u reg = 2 * 0.5 = 1 on p and n_u reg_b = 2 * 1 = 2 on b:
    #   [[1 + 4 + 1, 1 + 2], [1 + 2, 1 + 1 + 2]] [p, b] = [0.5 + 5, 0.5 + 2.5]
    #   [[6, 3], [3, 4]] [p, b] = [5.5, 3]  ->  det 15, p = (22 - 9) / 15, b = (18 - 16.5) / 15
    features = np.array([[1.0, 1.0], [2.0, 1.0]])
    penalty = np.array([[1.0, 2.0]])
    x = ridge_rows(np.array([0, 0]), np.array([0, 1]), np.array([0.5, 2.5]), 1, features, penalty)
    assert x[0] == pytest.approx([13 / 15, 1.5 / 15])


def test_als_half_step_equals_the_stacked_least_squares_of_each_user():
    # Independent form of the same ridge: min |A x - t|^2 + sum_d pen_d x_d^2 is the plain
    # least squares of A stacked on diag(sqrt(pen)), with t stacked on zeros.
    r = random_ratings(2)
    rng = np.random.default_rng(0)
    features = np.c_[rng.normal(0, 1, (r.n_items, 3)), np.ones(r.n_items)]
    penalty = rng.uniform(0.1, 2.0, (r.n_users, 4))
    t = r.values - r.mean
    x = ridge_rows(r.users, r.items, t, r.n_users, features, penalty)
    for u in range(r.n_users):
        mine = r.users == u
        a = np.r_[features[r.items[mine]], np.diag(np.sqrt(penalty[u]))]
        b = np.r_[t[mine], np.zeros(4)]
        assert x[u] == pytest.approx(np.linalg.lstsq(a, b, rcond=None)[0], abs=1e-10)


def test_als_epochs_never_increase_the_objective():
    r = random_ratings(7, n_users=30, n_items=40, n=500)
    reg, reg_b = 0.05, 0.02
    rng = np.random.default_rng(0)
    P, Q = rng.normal(0, 0.5, (r.n_users, 3)), rng.normal(0, 0.5, (r.n_items, 3))
    bu, bi = np.zeros(r.n_users), np.zeros(r.n_items)
    seen = [svd_objective(r, r.mean, bu, bi, P, Q, reg, reg_b)]
    for _ in range(8):
        bu, bi, P, Q = als_epoch(r, r.mean, bu, bi, P, Q, reg, reg_b)
        seen.append(svd_objective(r, r.mean, bu, bi, P, Q, reg, reg_b))
    assert all(b <= a * (1 + 1e-12) for a, b in itertools.pairwise(seen))
    assert seen[-1] < 0.5 * seen[0]


def test_als_fit_is_repeatable_and_learns_a_low_rank_matrix():
    rng = np.random.default_rng(4)
    n_users, n_items = 60, 50
    truth = 3 + rng.normal(0, 0.5, (n_users, 2)) @ rng.normal(0, 0.8, (2, n_items))
    u, i = np.divmod(np.arange(n_users * n_items), n_items)
    keep = rng.random(len(u)) < 0.5
    r = Ratings.from_triplets(u[keep], i[keep], truth.ravel()[keep], n_users, n_items)
    c = SVDConfig(n_factors=2, n_epochs=20, reg=0.001, method="als")
    model = fit_svd(r, c, seed=0)
    assert type(model) is SVD and model.P.dtype == np.float32
    assert np.array_equal(model.P, fit_svd(r, c, seed=0).P)
    assert not np.array_equal(model.P, fit_svd(r, c, seed=1).P)
    held = ~keep
    err = model.predict(u[held], i[held]) - np.clip(truth.ravel()[held], 1, 5)
    baseline_err = r.mean - np.clip(truth.ravel()[held], 1, 5)
    assert np.sqrt(np.mean(err**2)) < 0.3 * np.sqrt(np.mean(baseline_err**2))


@pytest.mark.parametrize("params", [{"method": "newton"}, {"method": "als", "reg": 0.0}])
def test_svd_config_rejects_a_bad_method_or_an_als_without_penalty(params):
    with pytest.raises(ParamError):
        SVDConfig(**params)
