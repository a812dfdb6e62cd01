"""Fitting mu + b_u + b_i: regularised ALS or SGD (Koren 2008 section 2.1; Surprise's defaults)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.cf.baseline import Baseline
from models.cf.ratings import Ratings
from training.cf.sgd_kernels import baseline_epoch
from training.params import ParamError


@dataclass(frozen=True)
class BaselineConfig:
    method: str = "als"  # "als" | "sgd"
    n_epochs: int = 10
    reg_u: float = 15.0  # ALS: lambda of the user biases
    reg_i: float = 10.0  # ALS: lambda of the item biases
    lr: float = 0.005  # SGD
    reg: float = 0.02  # SGD

    def __post_init__(self) -> None:
        if self.method not in ("als", "sgd"):
            raise ParamError(f"baseline method must be 'als' or 'sgd', got {self.method!r}")


def als_biases(
    r: Ratings, mu: float, n_epochs: int, reg_u: float, reg_i: float
) -> tuple[np.ndarray, np.ndarray]:
    """Alternate the closed-form ridge solutions of b_i given b_u and of b_u given b_i.

    b_i = sum_{u in R(i)} (r_ui - mu - b_u) / (reg_i + |R(i)|), then the same for b_u.
    """
    n_u = np.bincount(r.users, minlength=r.n_users)
    n_i = np.bincount(r.items, minlength=r.n_items)
    bu = np.zeros(r.n_users)
    bi = np.zeros(r.n_items)
    for _ in range(n_epochs):
        bi = np.bincount(r.items, r.values - mu - bu[r.users], r.n_items) / (reg_i + n_i)
        bu = np.bincount(r.users, r.values - mu - bi[r.items], r.n_users) / (reg_u + n_u)
    return bu, bi


def als_scaled_biases(
    r: Ratings, mu: float, n_epochs: int, reg_u: float, reg_i: float, reg_c: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ALS for mu + b_u + c_u b_i: each of b_i, b_u, c_u in closed form given the others.

    b_i = sum c_u (r - mu - b_u) / (reg_i + sum c_u^2), b_u as in ``als_biases``, and
    c_u = (sum b_i (r - mu - b_u) + reg_c) / (sum b_i^2 + reg_c), a ridge towards 1
    so that a user with few ratings keeps the plain baseline.
    """
    n_u = np.bincount(r.users, minlength=r.n_users)
    bu = np.zeros(r.n_users)
    bi = np.zeros(r.n_items)
    cu = np.ones(r.n_users)
    for _ in range(n_epochs):
        c = cu[r.users]
        bi = np.bincount(r.items, c * (r.values - mu - bu[r.users]), r.n_items) / (
            reg_i + np.bincount(r.items, c * c, r.n_items)
        )
        bu = np.bincount(r.users, r.values - mu - cu[r.users] * bi[r.items], r.n_users) / (
            reg_u + n_u
        )
        y = r.values - mu - bu[r.users]
        cu = (np.bincount(r.users, y * bi[r.items], r.n_users) + reg_c) / (
            np.bincount(r.users, bi[r.items] ** 2, r.n_users) + reg_c
        )
    return bu, bi, cu


def fit_baseline(r: Ratings, config: BaselineConfig, seed: int = 0) -> Baseline:
    mu = r.mean
    if config.method == "als":
        bu, bi = als_biases(r, mu, config.n_epochs, config.reg_u, config.reg_i)
        return Baseline(mu, bu, bi)
    bu = np.zeros(r.n_users)
    bi = np.zeros(r.n_items)
    for epoch in range(config.n_epochs):
        baseline_epoch(
            r.users, r.items, r.values, mu, bu, bi, config.lr, config.reg, seed + epoch, True
        )
    return Baseline(mu, bu, bi)
