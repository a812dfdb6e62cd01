"""Multi-interest protocol (ComiRec, Cen et al. KDD 2020).

Users are split 8:1:1 into train / validation / test, by a seed or by a split
file. For a held-out user the first 80% of the time-ordered sequence is the
model input and the rest are the targets. A model returns its top-N item list
per user (after aggregating its interests); metrics per user, averaged:

- Recall@N: targets found in the list / number of targets (target occurrences
  counted, as the ComiRec code does);
- HitRate@N: 1 if any target is in the list;
- NDCG@N: ``standard`` (gain 1/log2(rank + 1) at the list rank of each hit,
  ideal = the first min(|targets|, N) ranks) or ``comirec`` (the official code's
  variant: discount by the hit's position in the *target* list, ideal = the
  first #hits positions), kept so published ComiRec numbers can be compared;
- Diversity@N: share of pairs in the list whose categories differ.
All of it is computed with sorted searches over (user, item) keys, no loop per user.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from training.data.errors import MalformedFile
from training.data.sessions import Sessions
from training.data.textio import offsets_from_lengths


@dataclass(frozen=True)
class UserSplit:
    train: np.ndarray  # row indices into the sequences
    valid: np.ndarray
    test: np.ndarray


def split_users(
    n_users: int, seed: int, ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> UserSplit:
    """Shuffle the users with ``seed`` and cut them by ``ratios``."""
    order = np.random.default_rng(seed).permutation(n_users)
    n_train = round(n_users * ratios[0])
    n_valid = round(n_users * ratios[1])
    return UserSplit(
        train=np.sort(order[:n_train]),
        valid=np.sort(order[n_train : n_train + n_valid]),
        test=np.sort(order[n_train + n_valid :]),
    )


def split_from_file(path: Path, keys: np.ndarray) -> UserSplit:
    """A TSV ``user_id<TAB>part`` (part = train | valid | test), matched to ``keys``.

    Users in the file that are not in ``keys`` (e.g. dropped by filtering) are
    ignored; users in ``keys`` missing from the file are an error.
    """
    import pandas as pd

    df = pd.read_csv(path, sep="\t", dtype={"user_id": keys.dtype, "part": str})
    if list(df.columns) != ["user_id", "part"]:
        raise MalformedFile(path, 1, "expected the header 'user_id<TAB>part'")
    unknown = ~df["part"].isin(["train", "valid", "test"])
    if unknown.any():
        raise MalformedFile(
            path, int(unknown.to_numpy().argmax()) + 2, "part must be train, valid or test"
        )
    part_of = pd.Series(df["part"].to_numpy(), index=df["user_id"].to_numpy())
    parts = part_of.reindex(keys)
    if parts.isna().any():
        missing = keys[parts.isna().to_numpy()][:5]
        raise MalformedFile(path, None, f"users missing from the split file, e.g. {list(missing)}")
    p = parts.to_numpy()
    return UserSplit(*(np.flatnonzero(p == name) for name in ("train", "valid", "test")))


@dataclass(frozen=True)
class Holdout:
    """Inputs (first part of each sequence) and targets (the rest), one row per user."""

    inputs: Sessions
    targets: Sessions


def holdout(sequences: Sessions, users: np.ndarray, input_fraction: float = 0.8) -> Holdout:
    """The first ``input_fraction`` of each chosen user's events as input, the rest as targets.

    The cut is ``int(len * input_fraction)`` as in the ComiRec code; users whose
    cut leaves no input or no target are dropped.
    """
    chosen = sequences.select(users)
    n_input = (chosen.lengths * input_fraction).astype(np.int64)
    ok = (n_input > 0) & (n_input < chosen.lengths)
    chosen = chosen.select(ok)
    n_input = n_input[ok]
    pos = np.arange(chosen.n_events) - np.repeat(chosen.offsets[:-1], chosen.lengths)
    is_input = pos < np.repeat(n_input, chosen.lengths)
    return Holdout(
        inputs=Sessions(
            items=chosen.items[is_input], offsets=offsets_from_lengths(n_input), keys=chosen.keys
        ),
        targets=Sessions(
            items=chosen.items[~is_input],
            offsets=offsets_from_lengths(chosen.lengths - n_input),
            keys=chosen.keys,
        ),
    )


def _in_list(topn: np.ndarray, targets: Sessions) -> tuple[np.ndarray, np.ndarray]:
    """For every target event: is it in its user's list, and at which list rank (0-based)."""
    n_users, n = topn.shape
    span = int(max(topn.max(initial=0), targets.items.max(initial=0))) + 1
    keys = np.arange(n_users, dtype=np.int64)[:, None] * span + topn
    flat = keys.ravel()
    order = np.argsort(flat, kind="stable")
    sorted_keys = flat[order]
    t_keys = targets.session_of_event() * span + targets.items
    pos = np.clip(np.searchsorted(sorted_keys, t_keys), 0, len(sorted_keys) - 1)
    hit = sorted_keys[pos] == t_keys
    rank = order[pos] % n
    return hit, rank


def _discount(n: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(n) + 2.0)


def topn_metrics(
    topn: np.ndarray,
    targets: Sessions,
    categories: np.ndarray | None,
    ns: tuple[int, ...] = (20, 50),
    ndcg: Literal["standard", "comirec"] = "standard",
) -> dict[str, float]:
    """Metrics of per-user top lists ``topn`` (int [U, max(ns)], best first)."""
    n_users = topn.shape[0]
    if n_users != targets.n_sessions:
        raise ValueError("one top-N list per target row is needed")
    if n_users == 0:
        raise ValueError("no user to evaluate")
    out: dict[str, float] = {}
    user = targets.session_of_event()
    n_targets = targets.lengths.astype(np.float64)
    for n in sorted(ns):
        lists = topn[:, :n]
        hit, rank = _in_list(lists, targets)
        hits = np.bincount(user[hit], minlength=n_users).astype(np.float64)
        out[f"recall@{n}"] = float(np.mean(hits / n_targets))
        out[f"hitrate@{n}"] = float(np.mean(hits > 0))
        if ndcg == "standard":
            # Each list position counts once, however often its item is a target.
            list_hit = np.zeros(lists.shape, bool)
            list_hit[user[hit], rank[hit]] = True
            dcg = (list_hit * _discount(n)).sum(axis=1)
            span = int(targets.items.max(initial=0)) + 1
            distinct = np.unique(user * span + targets.items) // span
            n_unique = np.bincount(distinct, minlength=n_users)
            ideal_cum = np.r_[0.0, np.cumsum(_discount(n))]
            idcg = ideal_cum[np.minimum(n_unique, n)]
        else:
            within = np.arange(targets.n_events) - np.repeat(targets.offsets[:-1], targets.lengths)
            disc = 1.0 / np.log2(within + 2.0)
            dcg = np.bincount(user[hit], weights=disc[hit], minlength=n_users)
            ideal_cum = np.r_[
                0.0, np.cumsum(1.0 / np.log2(np.arange(int(targets.lengths.max())) + 2.0))
            ]
            idcg = ideal_cum[hits.astype(np.int64)]
        out[f"ndcg@{n}"] = float(np.mean(np.where(idcg > 0, dcg / np.maximum(idcg, 1e-12), 0.0)))
        if categories is not None and n > 1:
            out[f"diversity@{n}"] = float(np.mean(diversity(categories[lists])))
    return out


def diversity(list_categories: np.ndarray) -> np.ndarray:
    """Per row: share of item pairs whose categories differ (int [U, N] -> float [U])."""
    n_users, n = list_categories.shape
    sorted_c = np.sort(list_categories, axis=1)
    # Count each category's run length per row via the positions where the value changes.
    change = np.ones((n_users, n), bool)
    change[:, 1:] = sorted_c[:, 1:] != sorted_c[:, :-1]
    run_id = np.cumsum(change, axis=1) - 1 + np.arange(n_users)[:, None] * n
    counts = np.bincount(run_id.ravel(), minlength=n_users * n).reshape(n_users, n)
    same_pairs = (counts * (counts - 1) / 2).sum(axis=1)
    return 1.0 - same_pairs / (n * (n - 1) / 2)
