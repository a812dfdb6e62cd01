"""Session-based kNN: SKNN, V-SKNN and STAN on one sparse session-item matrix.

The neighbourhood models of Ludewig and Jannach's comparisons score an item by
the similarity of the past sessions (neighbours) that hold it. They are strong
references on e-commerce session data and cheap ensemble members, so they are
built here as batch scorers of left-padded prefixes (``-1`` = padding, the last
click in column -1), like the models in ``baselines.py``.

- **SKNN** (Jannach and Ludewig, RecSys 2017): the candidates are the past
  sessions sharing an item with the current session s, of which the
  ``sample_size`` most recent are kept; the neighbours are the ``k`` of those
  most similar to s by cosine over binary item sets,
  ``|s ∩ n| / sqrt(|s| |n|)``; ``score(i) = Σ_n sim(s, n) 1_n(i)``.
- **V-SKNN** (Ludewig and Jannach, UMUAI 2018, as in their session-rec code):
  each item of s is weighted by the position of its last click (``div``: p / L
  for position p of L clicks, so later clicks weigh more); ``sim(s, n)`` is the
  weighted overlap divided by the number of distinct items of s; a neighbour
  gives its items ``sim(s, n) · decay(step)``, ``step`` counting back from the
  end of s to the most recent click whose item n holds (``div``: 1 / step); an
  item's score is multiplied by ``1 + idf_weighting · idf(i)``, ``idf(i) =
  log(n_sessions / clicks(i))`` (session-rec counts clicks, not sessions).
- **STAN** (Garg et al., SIGIR 2019): s's items weighted by ``exp((p - L) /
  λ1)``; ``sim(s, n) = Σ_{i ∈ s ∩ n} w1(i) / sqrt(|s| |n|) · exp(-(T - t_n) /
  λ2)`` with t_n the time of n's last click; the k most similar of the sample
  are the neighbours; n gives each of its items ``sim(s, n) · exp(-|p_n(i) -
  p_n*| / λ3)``, p_n(i) the position of i's last click in n and p_n* that of
  n's last click on an item of s (session-rec's reading of "the shared item").

T, the time of the current session, is taken as the newest training session's:
``exp(-(T - t_n)/λ2)`` differs from the true query time's by one factor common
to every neighbour of a query, which changes no neighbour choice and no
ranking, so the scorer needs no times of its own.

**Why one machinery.** The three differ only in the weights of s's items, the
similarity formed from an overlap, and what a neighbour gives each item; the
rest is sparse arithmetic over a whole batch of prefixes at once:

1. the prefixes' distinct items are a sparse [B, n_items] matrix Q, valued by
   the items' weights;
2. ``Q @ X.T``, with X the binary [n_sessions, n_items] session matrix whose
   rows are ordered oldest first, holds each prefix's (weighted) overlap with
   every past session sharing an item, each row's entries in recency order;
3. "the m most recent sessions sharing an item" are the last m entries of each
   row: index arithmetic on the row pointers, no sort;
4. similarities come from the overlaps and per-session norms, and the k best
   of each row from one lexsort;
5. the scores are the neighbours' weights times X (SKNN, V-SKNN), or sums over
   the neighbours' clicks (STAN, whose weight depends on where an item sits in
   the neighbour) gathered by index arithmetic and one bincount.

**Ties.** Neighbours of equal similarity (to 2^-40 relative, so the order of
a sum cannot decide) go to the more recent session, as the recency sample
does. Item scores get global popularity as a tie-breaker, scaled to 1e-9 of
the row's smallest positive score: items no neighbour holds rank below every
scored item, and exactly tied items (common: two items of one neighbour) are
ordered by popularity, so under the ``standard`` rank a model cannot gain from
ties (see ``baselines.py``).

**Serving.** Nothing here is trained: the state of a visit is its own clicks,
and ``score`` needs nothing else, so a later step can serve these models by
keeping a visit's item list (as the windowed models keep their last L clicks)
and the fitted matrices in memory. They are not a servable kind yet: they have
no item vectors, and the contract's ``SequenceModel`` assumes a retrieval space.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch

#: V-SKNN's weight of a session item by the position p (1-based) of its last click of L
PositionWeighting = Literal["same", "div", "quadratic"]
#: V-SKNN's decay of a neighbour by the step back to the most recent shared click
StepWeighting = Literal["same", "div", "quadratic"]


@dataclass(frozen=True)
class SKNNConfig:
    """SKNN: cosine over binary item sets, the k best of the ``sample_size`` most recent."""

    k: int = 100
    sample_size: int = 500  # 0 keeps every session sharing an item

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"k must be at least 1, got {self.k}")
        if self.sample_size < 0:
            raise ValueError(f"sample_size must be 0 (all) or more, got {self.sample_size}")


@dataclass(frozen=True)
class VSKNNConfig(SKNNConfig):
    """V-SKNN: position-weighted overlap, a step decay per neighbour and IDF in the score."""

    weighting: PositionWeighting = "div"
    weighting_score: StepWeighting = "div"
    idf_weighting: float = 1.0  # 0 turns the IDF term off

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.idf_weighting < 0:
            raise ValueError(f"idf_weighting must be >= 0, got {self.idf_weighting}")


@dataclass(frozen=True)
class STANConfig(SKNNConfig):
    """STAN: the three exponential decays (positions in s, recency of n, positions in n)."""

    sample_size: int = 5000
    lambda_1: float = 1.02  # clicks
    lambda_2: float = 5.0  # the clock's unit: days, as the training command builds it
    lambda_3: float = 2.05  # clicks

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("lambda_1", "lambda_2", "lambda_3"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


@dataclass(frozen=True)
class Prefixes:
    """A batch of prefixes as its distinct (prefix, item) pairs, grouped by prefix."""

    rows: np.ndarray  # int64 [D] the prefix of each pair, ascending
    items: np.ndarray  # int64 [D] ascending within a prefix
    last: np.ndarray  # int64 [D] 1-based position of the item's last click in the prefix
    lengths: np.ndarray  # int64 [B] clicks in each prefix (repeats counted)
    n_distinct: np.ndarray  # int64 [B] distinct items in each prefix
    keys: np.ndarray  # int64 [D] row * n_items + item, ascending: membership by searchsorted

    @property
    def size(self) -> int:
        return len(self.lengths)

    @staticmethod
    def from_padded(prefix: np.ndarray, n_items: int) -> Prefixes:
        """Left-padded prefixes [B, W] (-1 = padding) -> distinct items with last positions."""
        b, w = prefix.shape
        valid = prefix >= 0
        lengths = valid.sum(axis=1).astype(np.int64)
        row, col = np.nonzero(valid)  # row-major: by row, then by column (click order)
        position = col - (w - lengths[row]) + 1
        key = row * n_items + prefix[row, col]
        order = np.argsort(key, kind="stable")  # a key's clicks stay in click order
        key = key[order]
        is_last = np.r_[key[1:] != key[:-1], True] if len(key) else np.zeros(0, bool)
        keys = key[is_last]
        rows = keys // n_items
        return Prefixes(
            rows=rows,
            items=keys - rows * n_items,
            last=position[order][is_last].astype(np.int64),
            lengths=lengths,
            n_distinct=np.bincount(rows, minlength=b).astype(np.int64),
            keys=keys,
        )

    def holds(self, rows: np.ndarray, items: np.ndarray, n_items: int) -> np.ndarray:
        """Whether prefix ``rows[j]`` holds ``items[j]``, vectorised."""
        return _member(self.keys, rows * n_items + items)


@dataclass(frozen=True)
class Neighbours:
    """The kept (prefix, past session) pairs, grouped by prefix, and their similarities."""

    rows: np.ndarray  # int64 [P]
    sessions: np.ndarray  # int64 [P] row of X (oldest first)
    similarity: np.ndarray  # float64 [P]


def _member(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    if len(sorted_keys) == 0:
        return np.zeros(len(keys), bool)
    at = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[at] == keys


def _rank_in_group(groups: np.ndarray) -> np.ndarray:
    """0-based rank of each entry within its run of equal values (``groups`` sorted)."""
    return np.arange(len(groups)) - np.searchsorted(groups, groups, side="left")


def _selection_key(x: np.ndarray) -> np.ndarray:
    """``x`` rounded to 40 significant bits: equal sums of different order compare equal."""
    mantissa, exponent = np.frexp(x)
    return np.ldexp(np.round(mantissa * 2.0**40), exponent - 40)


def _gather_events(
    offsets: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pair index, event index, group starts) of the events of session ``rows[j]``, per j."""
    lengths = offsets[rows + 1] - offsets[rows]
    starts = np.zeros(len(rows), np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    pair = np.repeat(np.arange(len(rows)), lengths)
    event = np.repeat(offsets[rows] - starts, lengths) + np.arange(int(lengths.sum()))
    return pair, event, starts


class SessionKNN:
    """What SKNN, V-SKNN and STAN share: the session matrix, the sample, the top k.

    Subclasses say how s's items are weighted (``item_weights``), how a
    similarity is formed from an overlap (``similarity``), and how the
    neighbours score the items (``neighbour_scores``).
    """

    def __init__(self, config: SKNNConfig | None = None) -> None:
        self.config = config if config is not None else self.default_config()

    @staticmethod
    def default_config() -> SKNNConfig:
        return SKNNConfig()

    def fit(
        self,
        items: np.ndarray,
        offsets: np.ndarray,
        n_items: int,
        clock: np.ndarray | None = None,
    ) -> SessionKNN:
        """Keep the training sessions, ordered oldest first by ``clock``.

        ``clock`` is one value per session (larger = more recent: the time of its
        last click, in STAN's ``lambda_2`` unit); without it the row order is the
        time order (SR-GNN files are written that way).
        """
        offsets = np.asarray(offsets, np.int64)
        n_sessions = len(offsets) - 1
        lengths = np.diff(offsets)
        if clock is None:
            clock = np.arange(n_sessions, dtype=np.float64)
        clock = np.asarray(clock, np.float64)
        if len(clock) != n_sessions:
            raise ValueError(f"clock has {len(clock)} values for {n_sessions} sessions")
        order = np.argsort(clock, kind="stable")  # oldest first; ties keep the row order
        new_offsets = np.zeros(n_sessions + 1, np.int64)
        np.cumsum(lengths[order], out=new_offsets[1:])
        _, event, _ = _gather_events(offsets, order)
        self.items = np.asarray(items, np.int64)[event]
        self.offsets = new_offsets
        self.clock = clock[order]
        self.n_items = n_items
        self.n_sessions = n_sessions
        # Position (1-based) of every click in its session, and whether it is the
        # last click on its item there (a neighbour holds an item once).
        session = np.repeat(np.arange(n_sessions, dtype=np.int64), lengths[order])
        self.positions = np.arange(len(event)) - new_offsets[session] + 1
        key = session * n_items + self.items
        by_key = np.lexsort((self.positions, key))
        is_last = np.zeros(len(key), bool)
        is_last[by_key] = np.r_[key[by_key][1:] != key[by_key][:-1], True]
        self.is_last = is_last
        x = sp.csr_matrix(
            (np.ones(int(is_last.sum())), (session[is_last], self.items[is_last])),
            shape=(n_sessions, n_items),
        )
        x.sort_indices()
        self.x = x
        self.by_item = x.T.tocsr()  # [n_items, n_sessions], sessions ascending = oldest first
        self.by_item.sort_indices()
        self.n_distinct = np.diff(x.indptr).astype(np.float64)
        self.keys = np.repeat(np.arange(n_sessions, dtype=np.int64), np.diff(x.indptr))
        self.keys = self.keys * n_items + x.indices
        self.clicks = np.bincount(self.items, minlength=n_items).astype(np.float64)
        self.tie_breaker = self.clicks / (self.clicks.max(initial=0.0) + 1.0)
        return self

    # The three hooks.
    def item_weights(self, p: Prefixes) -> np.ndarray:
        """Weight of each distinct (prefix, item) pair in the overlap (positive)."""
        return np.ones(len(p.rows))

    def similarity(
        self, p: Prefixes, rows: np.ndarray, sessions: np.ndarray, overlap: np.ndarray
    ) -> np.ndarray:
        """Similarities of the sampled (prefix, session) pairs from their overlaps."""
        return overlap / np.sqrt(p.n_distinct[rows] * self.n_distinct[sessions])

    def neighbour_scores(self, p: Prefixes, nb: Neighbours) -> np.ndarray:
        """Dense [B, n_items] scores: each neighbour gives its items its similarity."""
        return self._weights_times_x(p, nb.rows, nb.sessions, nb.similarity)

    # The shared machinery.
    def neighbours(self, p: Prefixes) -> Neighbours:
        """The k most similar of the ``sample_size`` most recent sessions sharing an item."""
        q = sp.csr_matrix((self.item_weights(p), (p.rows, p.items)), shape=(p.size, self.n_items))
        overlap = (q @ self.by_item).tocsr()  # [B, n_sessions]
        overlap.sort_indices()  # columns ascending = oldest first
        per_row = np.diff(overlap.indptr)
        rows = np.repeat(np.arange(p.size, dtype=np.int64), per_row)
        sessions = overlap.indices.astype(np.int64)
        values = overlap.data
        m = self.config.sample_size
        if m:
            within = np.arange(overlap.nnz) - np.repeat(overlap.indptr[:-1], per_row)
            recent = within >= np.repeat(per_row - m, per_row)
            rows, sessions, values = rows[recent], sessions[recent], values[recent]
        sim = self.similarity(p, rows, sessions, values)
        order = np.lexsort((-sessions, -_selection_key(sim), rows))
        keep = order[_rank_in_group(rows[order]) < self.config.k]
        keep.sort()  # back to (row, session) order
        return Neighbours(rows[keep], sessions[keep], sim[keep])

    def raw_scores(self, prefix: np.ndarray) -> np.ndarray:
        """Scores [B, n_items] (float64) without the tie-breaker: for tests and ensembles."""
        p = Prefixes.from_padded(np.asarray(prefix, np.int64), self.n_items)
        return self.neighbour_scores(p, self.neighbours(p))

    def score(self, prefix: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Scores of every item [B, n_items] (the ``PrefixScorer`` of the evaluation)."""
        raw = self.raw_scores(prefix.numpy())
        positive = np.where(raw > 0, raw, np.inf).min(axis=1, keepdims=True)
        scale = np.where(np.isfinite(positive), positive * 1e-9, 1.0)
        return torch.from_numpy(raw + scale * self.tie_breaker)

    def _weights_times_x(
        self, p: Prefixes, rows: np.ndarray, sessions: np.ndarray, weights: np.ndarray
    ) -> np.ndarray:
        w = sp.csr_matrix((weights, (rows, sessions)), shape=(p.size, self.n_sessions))
        return (w @ self.x).toarray()


class SKNN(SessionKNN):
    """Session kNN (Jannach and Ludewig, RecSys 2017): the hooks' defaults."""


def position_weight(
    kind: PositionWeighting, position: np.ndarray, length: np.ndarray
) -> np.ndarray:
    """V-SKNN's weight of an item whose last click is at ``position`` (1-based) of ``length``."""
    ratio = position / length
    if kind == "same":
        return np.ones_like(ratio)
    if kind == "div":
        return ratio
    if kind == "quadratic":
        return ratio * ratio
    raise ValueError(f"unknown weighting {kind!r}")


def step_weight(kind: StepWeighting, step: np.ndarray) -> np.ndarray:
    """V-SKNN's decay of a neighbour whose latest shared click is ``step`` back (1 = the last)."""
    step = step.astype(np.float64)
    if kind == "same":
        return np.ones_like(step)
    if kind == "div":
        return 1.0 / step
    if kind == "quadratic":
        return 1.0 / (step * step)
    raise ValueError(f"unknown weighting_score {kind!r}")


class VSKNN(SessionKNN):
    """Vector multiplication session kNN (Ludewig and Jannach, UMUAI 2018)."""

    config: VSKNNConfig

    @staticmethod
    def default_config() -> VSKNNConfig:
        return VSKNNConfig()

    def fit(
        self,
        items: np.ndarray,
        offsets: np.ndarray,
        n_items: int,
        clock: np.ndarray | None = None,
    ) -> VSKNN:
        super().fit(items, offsets, n_items, clock)
        clicks = self.clicks
        idf = np.log(self.n_sessions / np.where(clicks > 0, clicks, 1.0))
        self.idf_factor = 1.0 + self.config.idf_weighting * np.where(clicks > 0, idf, 0.0)
        return self

    def item_weights(self, p: Prefixes) -> np.ndarray:
        return position_weight(self.config.weighting, p.last, p.lengths[p.rows])

    def similarity(
        self, p: Prefixes, rows: np.ndarray, sessions: np.ndarray, overlap: np.ndarray
    ) -> np.ndarray:
        return overlap / p.n_distinct[rows]

    def neighbour_scores(self, p: Prefixes, nb: Neighbours) -> np.ndarray:
        latest = self._latest_shared_click(p, nb)
        decay = step_weight(self.config.weighting_score, p.lengths[nb.rows] - latest + 1)
        scores = self._weights_times_x(p, nb.rows, nb.sessions, nb.similarity * decay)
        return scores * self.idf_factor

    def _latest_shared_click(self, p: Prefixes, nb: Neighbours) -> np.ndarray:
        """Per neighbour: the position in s of s's latest click on an item n holds."""
        first = np.searchsorted(p.rows, np.arange(p.size + 1))  # s's items are p[first[b]:...]
        pair, at, starts = _gather_events(first, nb.rows)
        held = _member(self.keys, nb.sessions[pair] * self.n_items + p.items[at])
        return np.maximum.reduceat(np.where(held, p.last[at], 0), starts)


class STAN(SessionKNN):
    """Sequence and Time Aware Neighbourhood (Garg et al., SIGIR 2019)."""

    config: STANConfig

    @staticmethod
    def default_config() -> STANConfig:
        return STANConfig()

    def item_weights(self, p: Prefixes) -> np.ndarray:
        return np.exp((p.last - p.lengths[p.rows]) / self.config.lambda_1)

    def similarity(
        self, p: Prefixes, rows: np.ndarray, sessions: np.ndarray, overlap: np.ndarray
    ) -> np.ndarray:
        cosine = super().similarity(p, rows, sessions, overlap)
        return cosine * np.exp(-(self.clock[-1] - self.clock[sessions]) / self.config.lambda_2)

    def neighbour_scores(self, p: Prefixes, nb: Neighbours) -> np.ndarray:
        pair, event, starts = _gather_events(self.offsets, nb.sessions)
        item, position = self.items[event], self.positions[event]
        rows = nb.rows[pair]
        shared = p.holds(rows, item, self.n_items)
        anchor = np.maximum.reduceat(np.where(shared, position, 0), starts)  # p_n*
        last = self.is_last[event]
        gain = nb.similarity[pair] * np.exp(-np.abs(position - anchor[pair]) / self.config.lambda_3)
        flat = np.bincount(
            rows[last] * self.n_items + item[last],
            weights=gain[last],
            minlength=p.size * self.n_items,
        )
        return flat.reshape(p.size, self.n_items)
