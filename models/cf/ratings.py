"""Explicit ratings as flat (user, item, value[, day]) columns, grouped by user."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class Ratings:
    """Ratings sorted by user: a user's ratings are ``indptr[u]:indptr[u + 1]``.

    ``days`` (float, days since the epoch) is present when the data has times;
    timeSVD++ needs it, the other models ignore it.
    """

    users: np.ndarray  # int64 [n]
    items: np.ndarray  # int64 [n]
    values: np.ndarray  # float64 [n]
    n_users: int
    n_items: int
    days: np.ndarray | None = None  # float64 [n]

    def __post_init__(self) -> None:
        if not (len(self.users) == len(self.items) == len(self.values)):
            raise ValueError("users, items and values must have one entry per rating")
        if len(self.users) and np.any(np.diff(self.users) < 0):
            raise ValueError("ratings must be sorted by user")

    @staticmethod
    def from_triplets(
        users: np.ndarray,
        items: np.ndarray,
        values: np.ndarray,
        n_users: int | None = None,
        n_items: int | None = None,
        days: np.ndarray | None = None,
    ) -> Ratings:
        users = np.asarray(users, np.int64)
        order = np.argsort(users, kind="stable")
        return Ratings(
            users=users[order],
            items=np.asarray(items, np.int64)[order],
            values=np.asarray(values, np.float64)[order],
            n_users=int(n_users if n_users is not None else users.max() + 1),
            n_items=int(n_items if n_items is not None else np.max(items) + 1),
            days=None if days is None else np.asarray(days, np.float64)[order],
        )

    def __len__(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(self.values.mean())

    @property
    def indptr(self) -> np.ndarray:
        """CSR row pointer over users (int64 [n_users + 1])."""
        out = np.zeros(self.n_users + 1, np.int64)
        np.cumsum(np.bincount(self.users, minlength=self.n_users), out=out[1:])
        return out

    def matrix(self, values: np.ndarray | None = None) -> sp.csr_matrix:
        """Users x items CSR of ``values`` (the ratings by default)."""
        data = self.values if values is None else values
        return sp.csr_matrix(
            (np.asarray(data, np.float64), self.items, self.indptr),
            shape=(self.n_users, self.n_items),
        )
