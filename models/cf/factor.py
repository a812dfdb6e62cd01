"""Latent factor models: SVD (biased MF), SVD++ and timeSVD++ (Koren 2008, 2009).

- SVD:  r_ui = mu + b_u + b_i + q_i . p_u
- SVD++: r_ui = mu + b_u + b_i + q_i . (p_u + |N(u)|^-1/2 sum_{j in N(u)} y_j), N(u) the
  items u rated (implicit feedback: *that* u rated them, not how).
- timeSVD++ (Koren, KDD 2009, eq. 8-13): the biases and user factors move in time,
  r_ui(t) = mu + b_u + alpha_u dev_u(t) + b_{u,t} + (b_i + b_{i,Bin(t)}) (c_u + c_{u,t})
            + q_i . (p_u + alpha_pu dev_u(t) + p_{u,t} + |N(u)|^-1/2 sum y_j),
  dev_u(t) = sign(t - t_u) |t - t_u|^beta with t_u the user's mean rating day, and
  b_{u,t}, c_{u,t}, p_{u,t} per (user, day) seen in training (0 on unseen days).

These classes hold parameters and predict; SGD / ALS fitting is in
``training.cf.factor_fit`` and ``training.cf.factor_als``. All predictions are
clipped to the rating scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from models.cf.baseline import RATING_SCALE, SizedByBiases
from models.cf.recommend import cosine_row


@dataclass
class SVD(SizedByBiases):
    mu: float
    bu: np.ndarray  # [n_users]
    bi: np.ndarray  # [n_items]
    P: np.ndarray  # [n_users, k]
    Q: np.ndarray  # [n_items, k]
    scale: tuple[float, float] = RATING_SCALE

    def user_vectors(self) -> np.ndarray:
        """The vector each user's row multiplies q_i with."""
        return self.P

    def predict(
        self, users: np.ndarray, items: np.ndarray, days: np.ndarray | None = None
    ) -> np.ndarray:
        z = self.user_vectors()
        dots = np.einsum("nk,nk->n", z[users], self.Q[items])
        return np.clip(self.mu + self.bu[users] + self.bi[items] + dots, *self.scale)

    def user_scores(self, user: int) -> np.ndarray:
        z = self.user_vectors()[user]
        return np.clip(self.mu + self.bu[user] + self.bi + self.Q @ z, *self.scale)

    def item_similarity(self, item: int) -> np.ndarray:
        return cosine_row(self.Q, item)

    def weights(self) -> dict[str, np.ndarray]:
        return {"mu": np.array([self.mu]), "bu": self.bu, "bi": self.bi, "P": self.P, "Q": self.Q}


def implicit_matrix(indptr: np.ndarray, indices: np.ndarray, n_items: int) -> sp.csr_matrix:
    """Users x items, row u = |N(u)|^-1/2 on the items of N(u) (empty rows stay zero)."""
    counts = np.diff(indptr)
    norm = np.repeat(1.0 / np.sqrt(np.maximum(counts, 1)), counts)
    return sp.csr_matrix((norm, indices, indptr), shape=(len(counts), n_items))


@dataclass
class SVDpp(SVD):
    Y: np.ndarray | None = None  # [n_items, k]
    implicit_indptr: np.ndarray | None = None  # N(u) as CSR over users
    implicit_items: np.ndarray | None = None

    def implicit(self) -> np.ndarray:
        """|N(u)|^-1/2 sum_{j in N(u)} y_j for every user: [n_users, k]."""
        m = implicit_matrix(self.implicit_indptr, self.implicit_items, self.n_items)
        return np.asarray(m @ self.Y)

    def user_vectors(self) -> np.ndarray:
        return self.P + self.implicit()

    def weights(self) -> dict[str, np.ndarray]:
        return {
            **super().weights(),
            "Y": self.Y,
            "implicit_indptr": self.implicit_indptr,
            "implicit_items": self.implicit_items,
        }


@dataclass(frozen=True)
class TimeAxis:
    """How days map to item-bias bins and to the user drift dev_u(t)."""

    day0: float  # first training day
    span: float  # days covered by training (last - first + 1)
    n_bins: int
    beta: float

    def day_index(self, days: np.ndarray) -> np.ndarray:
        return np.floor(days - self.day0).astype(np.int64)

    def bins(self, days: np.ndarray) -> np.ndarray:
        b = np.floor((days - self.day0) * self.n_bins / self.span).astype(np.int64)
        return np.clip(b, 0, self.n_bins - 1)

    def dev(self, days: np.ndarray, user_mean_day: np.ndarray) -> np.ndarray:
        d = days - user_mean_day
        return np.sign(d) * np.abs(d) ** self.beta


@dataclass
class TimeSVDpp(SVDpp):
    bi_bin: np.ndarray | None = None  # [n_items, n_bins]
    alpha_u: np.ndarray | None = None  # [n_users]
    alpha_p: np.ndarray | None = None  # [n_users, k]
    user_day_keys: np.ndarray | None = None  # sorted int64 user * n_days + day index
    bu_day: np.ndarray | None = None  # b_{u,t} for each key
    user_mean_day: np.ndarray | None = None  # t_u [n_users]
    axis: TimeAxis | None = None
    cu: np.ndarray | None = None  # c_u [n_users], scale of the item bias
    cu_day: np.ndarray | None = None  # c_{u,t} per user-day key
    p_day: np.ndarray | None = None  # p_{u,t} per user-day key [n_keys, k]

    def user_day(self, users: np.ndarray, day_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row into the per-(user, day) parameters, whether training saw that day)."""
        keys = users * self.n_day_slots + day_idx
        if not len(self.user_day_keys):
            return np.zeros(len(users), np.int64), np.zeros(len(users), bool)
        pos = np.clip(np.searchsorted(self.user_day_keys, keys), 0, len(self.user_day_keys) - 1)
        return pos, self.user_day_keys[pos] == keys

    def user_day_bias(self, users: np.ndarray, day_idx: np.ndarray) -> np.ndarray:
        """b_{u,t}: the (user, day) bias learnt in training, 0 for days not seen there."""
        pos, hit = self.user_day(users, day_idx)
        return np.where(hit, self.bu_day[pos], 0.0)

    @property
    def n_day_slots(self) -> int:
        # Days after training (test) still get distinct keys: reserve ten years.
        return int(self.axis.span) + 3650

    def predict(
        self, users: np.ndarray, items: np.ndarray, days: np.ndarray | None = None
    ) -> np.ndarray:
        if days is None:
            raise ValueError("timeSVD++ needs the day of every rating to predict")
        dev = self.axis.dev(days, self.user_mean_day[users])
        pos, seen = self.user_day(users, self.axis.day_index(days))
        # per-day terms exist only for (user, day) pairs seen in training
        p_day = self.p_day[pos] * seen[:, None]
        z = self.P[users] + self.alpha_p[users] * dev[:, None] + p_day + self.implicit()[users]
        item_bias = self.bi[items] + self.bi_bin[items, self.axis.bins(days)]
        scale = self.cu[users] + np.where(seen, self.cu_day[pos], 0.0)
        pred = (
            self.mu
            + self.bu[users]
            + self.alpha_u[users] * dev
            + np.where(seen, self.bu_day[pos], 0.0)
            + item_bias * scale
            + np.einsum("nk,nk->n", z, self.Q[items])
        )
        return np.clip(pred, *self.scale)

    def user_scores(self, user: int) -> np.ndarray:
        """Scores "now": at the end of training, the latest drift and item bins."""
        last = self.axis.day0 + self.axis.span - 1
        days = np.full(self.n_items, last)
        return self.predict(np.full(self.n_items, user), np.arange(self.n_items), days)

    def weights(self) -> dict[str, np.ndarray]:
        return {
            **super().weights(),
            "bi_bin": self.bi_bin,
            "alpha_u": self.alpha_u,
            "alpha_p": self.alpha_p,
            "user_day_keys": self.user_day_keys,
            "bu_day": self.bu_day,
            "user_mean_day": self.user_mean_day,
            "cu": self.cu,
            "cu_day": self.cu_day,
            "p_day": self.p_day,
        }
