"""Conditional RBM: the exact predictive marginal against brute-force enumeration of h,
the mean-field rule by hand, the conditional term, and repeatable fits."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from models.cf.rbm import RBM
from tests.training.cf.test_factor import random_ratings
from training.cf.rbm_fit import RBMConfig, fit_rbm
from training.params import ParamError


def tiny_rbm(exact: bool) -> RBM:
    g = torch.Generator().manual_seed(0)
    n_items, K, F = 3, 5, 3
    # user 0 rated item 0 with 4 and item 1 with 2; r also marks item 2 (rating unknown)
    return RBM(
        W=torch.randn(n_items, K, F, generator=g),
        b=torch.randn(n_items, K, generator=g),
        c=torch.randn(F, generator=g),
        D=torch.randn(n_items, F, generator=g),
        indptr=np.array([0, 2]),
        items=np.array([0, 1]),
        ratings=np.array([4, 2]),
        cond_indptr=np.array([0, 3]),
        cond_items=np.array([0, 1, 2]),
        exact=exact,
    )


def test_exact_prediction_sums_out_the_hidden_units():
    m = tiny_rbm(exact=True)
    W, b, c, D = (t.double() for t in (m.W, m.b, m.c, m.D))
    weights = []
    for k in range(5):
        total = 0.0
        for h in itertools.product([0.0, 1.0], repeat=3):
            h = torch.tensor(h, dtype=torch.float64)
            # -E(V, v_2 = k, h): visible-hidden terms of items 0 (rating 4), 1 (rating 2), 2 (k)
            neg_e = (W[0, 3] + W[1, 1] + W[2, k]) @ h + b[0, 3] + b[1, 1] + b[2, k]
            neg_e += c @ h + D.sum(0) @ h
            total += float(torch.exp(neg_e))
        weights.append(total)
    p = np.array(weights) / sum(weights)
    assert m.predict(np.array([0]), np.array([2]))[0] == pytest.approx(p @ np.arange(1, 6))


def test_mean_field_prediction_by_hand():
    m = tiny_rbm(exact=False)
    x = m.c + m.W[0, 3] + m.W[1, 1] + m.D.sum(0)
    p_hat = torch.sigmoid(x)
    p = torch.softmax(m.b[2] + m.W[2] @ p_hat, dim=0)
    assert m.predict(np.array([0]), np.array([2]))[0] == pytest.approx(
        float(p @ torch.arange(1.0, 6.0)), rel=1e-5
    )


def test_conditional_term_moves_the_prediction():
    m = tiny_rbm(exact=True)
    with_r = m.predict(np.array([0]), np.array([2]))[0]
    m.cond_items = np.array([0, 1])
    m.cond_indptr = np.array([0, 2])
    assert m.predict(np.array([0]), np.array([2]))[0] != pytest.approx(with_r)


def test_fit_is_repeatable_and_learns():
    r = random_ratings(2, n_users=30, n_items=20, n=400)
    config = RBMConfig(n_hidden=8, n_epochs=6, batch_size=8, lr=0.1, cd_epochs=(0, 2, 3, 4))
    a, b = fit_rbm(r, config, seed=1), fit_rbm(r, config, seed=1)
    assert torch.equal(a.W, b.W)
    assert not torch.equal(a.W, fit_rbm(r, config, seed=2).W)
    assert RBMConfig().steps_at(0) == 1 and RBMConfig().steps_at(50) == 9


def test_item_based_rbm_is_the_user_rbm_of_the_transposed_ratings():
    from training.cf.export import session_model
    from training.cf.rbm_fit import transposed

    r = random_ratings(3, n_users=30, n_items=20, n=400)
    test = random_ratings(4, n_users=30, n_items=20, n=50)
    config = RBMConfig(n_hidden=6, n_epochs=3, batch_size=8, lr=0.1, cd_epochs=(0, 1, 2, 2))
    item = fit_rbm(r, RBMConfig(**{**vars(config), "orientation": "item"}), seed=1, test=test)
    user_of_t = fit_rbm(transposed(r), config, seed=1, test=transposed(test))
    assert torch.equal(item.W, user_of_t.W) and item.W.shape[0] == 30  # one row per user
    assert (item.n_users, item.n_items) == (30, 20)
    np.testing.assert_array_equal(
        item.predict(test.users, test.items), user_of_t.predict(test.items, test.users)
    )
    assert item.item_vectors().shape == (20, 6) and len(item.user_scores(0)) == 20
    kind, served = session_model(item)
    assert kind == "cf-knn" and tuple(served.similarity.shape) == (20, 20)
    with pytest.raises(ParamError):
        RBMConfig(orientation="diagonal")


@pytest.mark.parametrize("item_based", [False, True])
def test_item_similarity_is_the_cosine_of_item_vectors_computed_once(item_based, monkeypatch):
    m = tiny_rbm(exact=True)
    m.item_based = item_based
    v = m.item_vectors()
    norms = np.sqrt((v * v).sum(1))
    first = m.item_similarity(0)
    assert np.allclose(first, v @ v[0] / (norms * norms[0]))

    def recomputed() -> np.ndarray:
        raise AssertionError("item vectors recomputed")

    monkeypatch.setattr(m, "item_vectors", recomputed)
    assert np.array_equal(m.item_similarity(0), first)
    last = len(v) - 1
    assert m.item_similarity(last)[last] == pytest.approx(1.0)
