"""Conditional RBM for collaborative filtering (Salakhutdinov, Mnih and Hinton, ICML 2007).

Each user is one RBM sharing its weights with every other: a softmax visible unit
over the K rating values for each item the user rated (unrated items have no
visible unit), F binary hidden units, weights W[i, k, j] shared per item by all
users, visible biases b[i, k], hidden biases c[j], and the conditional term D[i, j]
through which the *fact* that a user rated item i (r_i = 1, rating known or not)
shifts the hidden units (the paper's eq. 8):

    p(h_j = 1 | V, r) = sigma(c_j + sum_{i,k} v_i^k W_ikj + sum_i r_i D_ij)
    p(v_i^k = 1 | h)  = softmax_k(b_ik + sum_j h_j W_ikj)

With ``item_based`` the roles swap (the I-RBM that Sedhain et al., WWW 2015,
compare AutoRec with): each *item* is one RBM whose visible units are the users
who rated it, and W, b, D are indexed by user. On MovieLens the item-based form
is the more accurate one: an item has many more ratings to fit its case than a
user of ml-100k has.

A rating is predicted as the expected value sum_k k p(v_q^k = 1 | V, r), with the
exact marginal of the paper's eq. 9 (the hidden units summed out in closed form,
p ~ exp(b_qk) prod_j (1 + exp(x_j + W_qkj))) or its one-pass mean-field
approximation p_hat = p(h | V, r), softmax_k(b_qk + p_hat . W_qk) (``exact=False``).
This module holds the parameters and the conditionals; contrastive divergence is
in ``training.cf.rbm_fit``. A minibatch of users is handled as its list of rating
events (PyTorch gathers and scatter-adds), so the cost follows the number of
ratings, not users x items.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from models.cf.baseline import RATING_SCALE
from models.cf.recommend import cosine_row


def user_batch(
    indptr: np.ndarray, items: np.ndarray, users: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(row within the batch, event index) of every rating of ``users``, vectorised."""
    lengths = indptr[users + 1] - indptr[users]
    rows = np.repeat(np.arange(len(users)), lengths)
    starts = np.repeat(indptr[users], lengths)
    within = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return rows, starts + within


@dataclass
class RBM:
    W: torch.Tensor  # [n_items, K, F]
    b: torch.Tensor  # [n_items, K] visible biases
    c: torch.Tensor  # [F] hidden biases
    D: torch.Tensor  # [n_items, F] conditional weights
    # the users' evidence: their rated items and ratings (1..K), and the items r marks
    indptr: np.ndarray
    items: np.ndarray
    ratings: np.ndarray  # int64 1..K
    cond_indptr: np.ndarray
    cond_items: np.ndarray
    exact: bool = True  # predict with the exact marginal, not the one-pass mean field
    item_based: bool = False  # cases are items and visible units users (I-RBM)
    scale: tuple[float, float] = RATING_SCALE
    batch_size: int = 256
    _similarity_cache: tuple[np.ndarray, np.ndarray] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @property
    def n_cases(self) -> int:
        """Users (or items, ``item_based``): one RBM each, sharing the weights."""
        return len(self.indptr) - 1

    @property
    def n_units(self) -> int:
        """Visible units: items (or users, ``item_based``)."""
        return self.W.shape[0]

    @property
    def n_items(self) -> int:
        return self.n_cases if self.item_based else self.n_units

    @property
    def n_users(self) -> int:
        return self.n_units if self.item_based else self.n_cases

    @property
    def K(self) -> int:
        return self.W.shape[1]

    def evidence(self, users: np.ndarray) -> tuple[torch.Tensor, ...]:
        """A batch of cases as events: (row, unit, rating 1..K) rated and (row, unit) of r.

        A case is a user and a unit an item (swapped when ``item_based``).
        """
        rows, ev = user_batch(self.indptr, self.items, users)
        c_rows, c_ev = user_batch(self.cond_indptr, self.cond_items, users)
        return (
            torch.from_numpy(rows),
            torch.from_numpy(self.items[ev]),
            torch.from_numpy(self.ratings[ev]),
            torch.from_numpy(c_rows),
            torch.from_numpy(self.cond_items[c_ev]),
        )

    def hidden_inputs(
        self,
        n: int,
        rows: torch.Tensor,
        items: torch.Tensor,
        ratings: torch.Tensor,
        c_rows: torch.Tensor,
        c_items: torch.Tensor,
    ) -> torch.Tensor:
        """c + V.W + r.D, the input of every hidden unit, for ``n`` users given as events.

        Only the visible units that exist (rated items) enter, each through the one
        weight row of its rating: a scatter-add, not a dense product over all items.
        """
        x = self.c.expand(n, -1).clone()
        x.index_add_(0, rows, self.W[items, ratings - 1])
        x.index_add_(0, c_rows, self.D[c_items])
        return x

    def hidden_probs(self, n: int, *events: torch.Tensor) -> torch.Tensor:
        """p(h = 1 | V, r): [n, F]."""
        return torch.sigmoid(self.hidden_inputs(n, *events))

    def visible_logits(self, h: torch.Tensor, rows: torch.Tensor, items: torch.Tensor):
        """b_ik + sum_j h_j W_ikj for the given (user row, item) events: [E, K]."""
        return self.b[items] + torch.einsum("ef,ekf->ek", h[rows], self.W[items])

    def predict(
        self, users: np.ndarray, items: np.ndarray, days: np.ndarray | None = None
    ) -> np.ndarray:
        users = np.asarray(users, np.int64)
        items = np.asarray(items, np.int64)
        if self.item_based:  # the case is the item, the visible unit the user
            users, items = items, users
        out = np.empty(len(users))
        uniq, inverse = np.unique(users, return_inverse=True)
        k_values = torch.arange(1, self.K + 1, dtype=torch.float32)
        with torch.no_grad():
            hidden = torch.empty(len(uniq), self.W.shape[2])
            for lo in range(0, len(uniq), self.batch_size):
                batch = uniq[lo : lo + self.batch_size]
                hidden[lo : lo + len(batch)] = self.hidden_inputs(len(batch), *self.evidence(batch))
            for lo in range(0, len(users), 8192):
                sl = slice(lo, lo + 8192)
                rows = torch.from_numpy(inverse[sl])
                it = torch.from_numpy(items[sl])
                if self.exact:
                    # p(v_q^k | V) ~ exp(b_qk) prod_j (1 + exp(x_j + W_qkj)): h summed out
                    x = hidden[rows][:, None, :] + self.W[it]
                    logits = self.b[it] + torch.nn.functional.softplus(x).sum(2)
                else:
                    logits = self.visible_logits(torch.sigmoid(hidden), rows, it)
                out[sl] = (torch.softmax(logits, dim=1) @ k_values).double().numpy()
        return np.clip(out, *self.scale)

    def user_scores(self, user: int) -> np.ndarray:
        return self.predict(np.full(self.n_items, user), np.arange(self.n_items))

    def item_vectors(self) -> np.ndarray:
        """One vector per item for item-item similarity: its weights (all K rating values,
        all hidden units), or, item-based, its case's hidden input c + V.W + r.D."""
        if not self.item_based:
            return self.W.reshape(self.n_items, -1).double().numpy()
        cases = np.arange(self.n_cases)
        with torch.no_grad():
            out = [
                self.hidden_inputs(len(batch), *self.evidence(batch))
                for batch in np.array_split(cases, max(1, len(cases) // self.batch_size))
            ]
        return torch.cat(out).double().numpy()

    def item_similarity(self, item: int) -> np.ndarray:
        """Cosine of ``item_vectors`` rows; the vectors and norms are computed once.

        Item-based, every call would otherwise run the hidden inputs of all cases;
        the cache assumes the parameters are not changed after the first call.
        """
        if self._similarity_cache is None:
            vectors = self.item_vectors()
            self._similarity_cache = (vectors, np.linalg.norm(vectors, axis=1))
        vectors, norms = self._similarity_cache
        return cosine_row(vectors, item, norms)

    def weights(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name).numpy() for name in ("W", "b", "c", "D")}
