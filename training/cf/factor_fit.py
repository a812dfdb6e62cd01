"""SGD fitting of SVD, SVD++ and timeSVD++ (one compiled epoch per call, see ``sgd_kernels``).

Defaults are Surprise's (so a side-by-side run compares like with like); the
tuned settings for each dataset are in ``training/model_params/cf_*.toml``. The
learning rate is multiplied by ``lr_decay`` after every epoch (Koren 2008 uses
0.9). Parameters are initialised from N(init_mean, init_std) with the seed.
SVD can instead be fitted by ALS (``method = "als"``, see ``factor_als``), from
the same seeded start, into the same model class.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from models.cf.factor import SVD, SVDpp, TimeAxis, TimeSVDpp
from models.cf.ratings import Ratings
from training.cf.factor_als import als_epoch
from training.cf.sgd_kernels import svd_epoch, svdpp_epoch, timesvdpp_epoch
from training.params import ParamError

Progress = Callable[[int, float], None]  # (epoch, training RMSE)


@dataclass(frozen=True)
class SVDConfig:
    n_factors: int = 100
    n_epochs: int = 20
    lr: float = 0.005  # factors
    reg: float = 0.02
    lr_b: float = -1.0  # biases; negative = same as lr
    reg_b: float = -1.0  # negative = same as reg
    lr_decay: float = 1.0
    init_mean: float = 0.0
    init_std: float = 0.1
    biased: bool = True
    shuffle: bool = True
    # "sgd": Funk / Koren per-rating SGD; "als": alternating ridge least squares on the
    # same objective (``factor_als``; every half-step exact, so lr, lr_b, lr_decay and
    # shuffle do not apply)
    method: str = "sgd"

    def __post_init__(self) -> None:
        if self.method not in ("sgd", "als"):
            raise ParamError(f"svd method must be 'sgd' or 'als', got {self.method!r}")
        if self.method == "als" and (self.reg <= 0 or self.reg_b == 0):
            raise ParamError("svd method 'als' needs reg > 0 and reg_b > 0 (or negative: = reg)")


@dataclass(frozen=True)
class SVDppConfig:
    n_factors: int = 20
    n_epochs: int = 20
    lr: float = 0.007
    reg: float = 0.02
    lr_b: float = -1.0
    reg_b: float = -1.0
    lr_y: float = -1.0
    reg_y: float = -1.0
    lr_decay: float = 1.0
    init_mean: float = 0.0
    init_std: float = 0.1
    # N(u): the items u rated in training ("train"), or also those whose rating is to be
    # predicted ("train+test": Koren's setting, where *that* u rated them is known)
    implicit: str = "train"

    def __post_init__(self) -> None:
        if self.implicit not in ("train", "train+test"):
            raise ParamError(f"implicit must be 'train' or 'train+test', got {self.implicit!r}")


@dataclass(frozen=True)
class TimeSVDppConfig(SVDppConfig):
    """SVD++'s settings (same defaults) plus those of the time-dependent terms."""

    n_bins: int = 30  # Koren 2009: 30 item-bias bins
    beta: float = 0.4  # dev_u(t) exponent
    lr_bin: float = 0.005
    reg_bin: float = 0.1
    lr_au: float = 1e-5  # alpha_u: Koren's tiny step, dev values are large
    reg_au: float = 50.0
    lr_ud: float = 0.005  # b_{u,t}
    reg_ud: float = 0.005
    lr_ap: float = 1e-5  # alpha_pu
    reg_ap: float = 50.0
    lr_cu: float = 0.001  # c_u, c_{u,t}: the user's scale of the item bias
    reg_cu: float = 0.01
    lr_pd: float = 0.0  # p_{u,t}: day-specific user factors (0 leaves them out)
    reg_pd: float = 0.1


def _or(value: float, fallback: float) -> float:
    return fallback if value < 0 else value


def _init(rng: np.random.Generator, shape: tuple[int, int], mean: float, std: float) -> np.ndarray:
    return rng.normal(mean, std, size=shape).astype(np.float32)


def fit_svd(r: Ratings, c: SVDConfig, seed: int = 0, progress: Progress | None = None) -> SVD:
    rng = np.random.default_rng(seed)
    P = _init(rng, (r.n_users, c.n_factors), c.init_mean, c.init_std)
    Q = _init(rng, (r.n_items, c.n_factors), c.init_mean, c.init_std)
    bu, bi = np.zeros(r.n_users), np.zeros(r.n_items)
    mu = r.mean if c.biased else 0.0
    if c.method == "als":
        return _fit_svd_als(r, c, mu, bu, bi, P, Q, progress)
    lr, lr_b = c.lr, _or(c.lr_b, c.lr)
    for epoch in range(c.n_epochs):
        rmse = svd_epoch(
            r.users, r.items, r.values, mu, bu, bi, P, Q,
            lr_b, _or(c.reg_b, c.reg), lr, c.reg, c.biased, seed + epoch, c.shuffle,
        )  # fmt: skip
        lr, lr_b = lr * c.lr_decay, lr_b * c.lr_decay
        if progress:
            progress(epoch, rmse)
    return SVD(mu, bu, bi, P, Q)


def _fit_svd_als(
    r: Ratings,
    c: SVDConfig,
    mu: float,
    bu: np.ndarray,
    bi: np.ndarray,
    P: np.ndarray,
    Q: np.ndarray,
    progress: Progress | None,
) -> SVD:
    """ALS from the same seeded start; factors come back float32 like the SGD fit's."""
    for epoch in range(c.n_epochs):
        bu, bi, P, Q = als_epoch(r, mu, bu, bi, P, Q, c.reg, _or(c.reg_b, c.reg), c.biased)
        if progress:
            dots = np.einsum("nk,nk->n", P[r.users], Q[r.items])
            err = r.values - (mu + bu[r.users] + bi[r.items] + dots)
            progress(epoch, float(np.sqrt(np.mean(err**2))))
    return SVD(mu, bu, bi, P.astype(np.float32), Q.astype(np.float32))


def _implicit(r: Ratings, implicit: Ratings | None) -> tuple[np.ndarray, np.ndarray]:
    """N(u) as CSR: the items of ``implicit`` (default: the training ratings themselves)."""
    src = implicit if implicit is not None else r
    pairs = np.unique(src.users * src.n_items + src.items)
    users, items = np.divmod(pairs, src.n_items)
    indptr = np.zeros(r.n_users + 1, np.int64)
    np.cumsum(np.bincount(users, minlength=r.n_users), out=indptr[1:])
    return indptr, items.astype(np.int64)


def fit_svdpp(
    r: Ratings,
    c: SVDppConfig,
    seed: int = 0,
    progress: Progress | None = None,
    implicit: Ratings | None = None,
) -> SVDpp:
    """``implicit`` widens N(u) (e.g. to items whose rating is unknown); default: r itself."""
    rng = np.random.default_rng(seed)
    P = _init(rng, (r.n_users, c.n_factors), c.init_mean, c.init_std)
    Q = _init(rng, (r.n_items, c.n_factors), c.init_mean, c.init_std)
    Y = _init(rng, (r.n_items, c.n_factors), c.init_mean, c.init_std)
    bu, bi = np.zeros(r.n_users), np.zeros(r.n_items)
    imp_indptr, imp_items = _implicit(r, implicit)
    indptr = r.indptr
    mu = r.mean
    lr, lr_b, lr_y = c.lr, _or(c.lr_b, c.lr), _or(c.lr_y, c.lr)
    for epoch in range(c.n_epochs):
        rmse = svdpp_epoch(
            indptr, r.items, r.values, imp_indptr, imp_items, mu, bu, bi, P, Q, Y,
            lr_b, _or(c.reg_b, c.reg), lr, c.reg, lr_y, _or(c.reg_y, c.reg), seed + epoch,
        )  # fmt: skip
        lr, lr_b, lr_y = lr * c.lr_decay, lr_b * c.lr_decay, lr_y * c.lr_decay
        if progress:
            progress(epoch, rmse)
    return SVDpp(mu, bu, bi, P, Q, Y=Y, implicit_indptr=imp_indptr, implicit_items=imp_items)


def fit_timesvdpp(
    r: Ratings,
    c: TimeSVDppConfig,
    seed: int = 0,
    progress: Progress | None = None,
    implicit: Ratings | None = None,
) -> TimeSVDpp:
    if r.days is None:
        raise ValueError("timeSVD++ needs rating times (this part has none)")
    rng = np.random.default_rng(seed)
    k = c.n_factors
    P = _init(rng, (r.n_users, k), c.init_mean, c.init_std)
    Q = _init(rng, (r.n_items, k), c.init_mean, c.init_std)
    Y = _init(rng, (r.n_items, k), c.init_mean, c.init_std)
    day0 = float(np.floor(r.days.min()))
    axis = TimeAxis(day0=day0, span=float(np.floor(r.days.max()) - day0 + 1), n_bins=c.n_bins,
                    beta=c.beta)  # fmt: skip
    n_per_user = np.bincount(r.users, minlength=r.n_users)
    mean_day = np.bincount(r.users, r.days, r.n_users) / np.maximum(n_per_user, 1)
    dev = axis.dev(r.days, mean_day[r.users])
    bins = axis.bins(r.days)
    model = TimeSVDpp(
        r.mean, np.zeros(r.n_users), np.zeros(r.n_items), P, Q, Y=Y,
        bi_bin=np.zeros((r.n_items, c.n_bins)), alpha_u=np.zeros(r.n_users),
        alpha_p=np.zeros((r.n_users, k), np.float32), user_mean_day=mean_day, axis=axis,
    )  # fmt: skip
    keys = r.users * model.n_day_slots + axis.day_index(r.days)
    model.user_day_keys, user_day = np.unique(keys, return_inverse=True)
    model.bu_day = np.zeros(len(model.user_day_keys))
    model.cu = np.ones(r.n_users)
    model.cu_day = np.zeros(len(model.user_day_keys))
    model.p_day = np.zeros((len(model.user_day_keys), k), np.float32)
    model.implicit_indptr, model.implicit_items = _implicit(r, implicit)
    indptr = r.indptr
    lr, lr_b, lr_y = c.lr, _or(c.lr_b, c.lr), _or(c.lr_y, c.lr)
    lr_bin, lr_au, lr_ud, lr_ap = c.lr_bin, c.lr_au, c.lr_ud, c.lr_ap
    lr_cu, lr_pd = c.lr_cu, c.lr_pd
    m = model
    for epoch in range(c.n_epochs):
        rmse = timesvdpp_epoch(
            indptr, r.items, r.values, bins, dev, user_day.astype(np.int64),
            m.implicit_indptr, m.implicit_items,
            m.mu, m.bu, m.bi, m.bi_bin, m.alpha_u, m.bu_day, m.cu, m.cu_day, P, Q, Y,
            m.alpha_p, m.p_day,
            lr_b, _or(c.reg_b, c.reg), lr_bin, c.reg_bin, lr_au, c.reg_au, lr_ud, c.reg_ud,
            lr_cu, c.reg_cu, lr, c.reg, lr_y, _or(c.reg_y, c.reg), lr_ap, c.reg_ap,
            lr_pd, c.reg_pd, seed + epoch,
        )  # fmt: skip
        d = c.lr_decay
        lr, lr_b, lr_y, lr_bin, lr_au, lr_ud, lr_ap, lr_cu, lr_pd = (
            x * d for x in (lr, lr_b, lr_y, lr_bin, lr_au, lr_ud, lr_ap, lr_cu, lr_pd)
        )
        if progress:
            progress(epoch, rmse)
    return model
