"""Contrastive divergence for the conditional RBM (Salakhutdinov, Mnih and Hinton 2007).

Per minibatch of users: the data statistics <v h>_data use p(h | V, r); the model
statistics <v h>_T come from T steps of alternating Gibbs sampling started at the
data (visible units sampled only for the items the user rated), with T raised
during training (the paper: "T is increased gradually", 1 -> 3 -> 5 -> 9). Updates
use momentum and weight decay on W and D. Everything is a batched tensor op on
dense [B, n_items, K] one-hot ratings; the generator is seeded, so a fit is
repeatable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from models.cf.ratings import Ratings
from models.cf.rbm import RBM
from training.params import ParamError

Progress = Callable[[int, float, RBM], None]  # (epoch, training RMSE, model so far)


@dataclass(frozen=True)
class RBMConfig:
    n_hidden: int = 100
    n_epochs: int = 60
    batch_size: int = 20  # users per minibatch
    lr: float = 0.01
    lr_decay: float = 1.0  # per epoch
    momentum: float = 0.9  # 0.5 for the first ``warm_epochs``
    warm_epochs: int = 5
    weight_decay: float = 0.001
    cd_steps: tuple[int, ...] = (1, 3, 5, 9)
    cd_epochs: tuple[int, ...] = (0, 20, 35, 50)  # epoch at which each T starts
    init_std: float = 0.01
    conditional: str = "train+test"  # which items r marks: "train+test" (the paper), "train"
    orientation: str = "user"  # "user": one RBM per user (the paper); "item": I-RBM

    def __post_init__(self) -> None:
        if self.orientation not in ("user", "item"):
            raise ParamError("orientation must be 'user' or 'item'")
        if self.conditional not in ("train+test", "train", "none"):
            raise ParamError("conditional must be 'train+test', 'train' or 'none'")
        if len(self.cd_steps) != len(self.cd_epochs):
            raise ParamError("cd_steps and cd_epochs need one entry each per stage")

    def steps_at(self, epoch: int) -> int:
        stage = max(i for i, start in enumerate(self.cd_epochs) if epoch >= start)
        return int(self.cd_steps[stage])


def _csr(users: np.ndarray, items: np.ndarray, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((items, users))
    indptr = np.zeros(n_users + 1, np.int64)
    np.cumsum(np.bincount(users, minlength=n_users), out=indptr[1:])
    return indptr, order


def transposed(r: Ratings) -> Ratings:
    """Items as users and users as items (times dropped: the RBM does not use them)."""
    return Ratings.from_triplets(r.items, r.users, r.values, r.n_items, r.n_users)


def fit_rbm(
    r: Ratings,
    c: RBMConfig,
    seed: int = 0,
    test: Ratings | None = None,
    progress: Progress | None = None,
) -> RBM:
    """``test`` only lends the *identity* of its items to r (``conditional="train+test"``).

    ``orientation="item"`` fits the same machine on the transposed ratings.
    """
    item_based = c.orientation == "item"
    if item_based:
        r, test = transposed(r), None if test is None else transposed(test)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    K = 5
    values = np.rint(r.values).astype(np.int64)
    if values.min() < 1 or values.max() > K:
        raise ValueError("the RBM expects whole ratings 1..5")
    indptr, order = _csr(r.users, r.items, r.n_users)
    items, ratings = r.items[order], values[order]
    if c.conditional == "train+test" and test is not None:
        pairs = np.unique(np.r_[r.users * r.n_items + r.items, test.users * r.n_items + test.items])
        cu, ci = np.divmod(pairs, r.n_items)
    elif c.conditional == "none":
        cu, ci = np.zeros(0, np.int64), np.zeros(0, np.int64)
    else:
        cu, ci = r.users, r.items
    cond_indptr, cond_order = _csr(cu, ci, r.n_users)
    # Visible biases start at the log of each item's rating distribution (smoothed).
    counts = np.ones((r.n_items, K))
    np.add.at(counts, (r.items, values - 1), 1.0)
    b = torch.from_numpy(np.log(counts / counts.sum(1, keepdims=True))).float()
    model = RBM(
        W=torch.randn(r.n_items, K, c.n_hidden, generator=gen) * c.init_std,
        b=b,
        c=torch.zeros(c.n_hidden),
        D=torch.zeros(r.n_items, c.n_hidden),
        indptr=indptr,
        items=items,
        ratings=ratings,
        cond_indptr=cond_indptr,
        cond_items=ci[cond_order],
        item_based=item_based,
    )
    params = [model.W, model.b, model.c, model.D]
    velocity = [torch.zeros_like(p) for p in params]
    active = np.flatnonzero(np.diff(indptr) > 0)
    lr = c.lr
    for epoch in range(c.n_epochs):
        steps = c.steps_at(epoch)
        mom = c.momentum if epoch >= c.warm_epochs else 0.5
        sq, n = 0.0, 0
        perm = rng.permutation(active)
        for lo in range(0, len(perm), c.batch_size):
            users = perm[lo : lo + c.batch_size]
            grads, err = _cd_gradients(model, users, steps, gen)
            sq, n = sq + err[0], n + err[1]
            for p, v, g, decay in zip(params, velocity, grads, (1, 0, 0, 1), strict=True):
                v.mul_(mom).add_(g - c.weight_decay * decay * p, alpha=lr)
                p.add_(v)
        lr *= c.lr_decay
        if progress:
            progress(epoch, (sq / max(n, 1)) ** 0.5, model)
    return model


def _cd_gradients(
    m: RBM, users: np.ndarray, steps: int, gen: torch.Generator
) -> tuple[list[torch.Tensor], tuple[float, int]]:
    """CD-T gradient estimates for (W, b, c, D), averaged over the batch's users.

    The visible units of a user are only the items they rated, so the chain samples
    a rating for each of those events and nothing else.
    """
    n = len(users)
    rows, items, ratings, c_rows, c_items = m.evidence(users)
    h0 = m.hidden_probs(n, rows, items, ratings, c_rows, c_items)
    h = torch.bernoulli(h0, generator=gen)
    k_values = torch.arange(1, m.K + 1, dtype=torch.float32)
    sampled = ratings
    for t in range(steps):
        probs = torch.softmax(m.visible_logits(h, rows, items), dim=1)
        if t == 0:
            err = float(((probs @ k_values - ratings.float()) ** 2).sum())
        # inverse-CDF draw of one rating per event
        u = torch.rand(len(probs), 1, generator=gen)
        sampled = (probs.cumsum(1) < u).sum(1).clamp_max(m.K - 1) + 1
        hk = m.hidden_probs(n, rows, items, sampled, c_rows, c_items)
        h = hk if t == steps - 1 else torch.bernoulli(hk, generator=gen)
    dh = h0 - h
    flat_pos = items * m.K + ratings - 1
    flat_neg = items * m.K + sampled - 1
    F = m.W.shape[2]
    dW = torch.zeros(m.n_units * m.K, F)
    dW.index_add_(0, flat_pos, h0[rows]).index_add_(0, flat_neg, h[rows], alpha=-1.0)
    db = torch.zeros(m.n_units * m.K)
    db.index_add_(0, flat_pos, torch.ones(len(rows))).index_add_(
        0, flat_neg, torch.ones(len(rows)), alpha=-1.0
    )
    dD = torch.zeros(m.n_units, F).index_add_(0, c_items, dh[c_rows])
    grads = [dW.view_as(m.W) / n, db.view_as(m.b) / n, dh.sum(0) / n, dD / n]
    return grads, (err, len(rows))
