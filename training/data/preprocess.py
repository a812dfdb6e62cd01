"""GRU4Rec-style preprocessing of a raw click log, and item-set restriction.

The order of the steps is the official GRU4Rec preprocessing: drop sessions of
length 1, drop items with support below ``min_item_support``, drop sessions that
became shorter than ``min_session_length``; then the sessions whose *last* event
falls in the final ``test_days`` form the test set, test events on items unseen
in training are dropped, and test sessions shorter than the minimum go too.
Everything is vectorised over events (factorised keys and bincounts).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.data.sessions import ItemTable, Sessions

DAY = 86400.0


@dataclass(frozen=True)
class PreprocessConfig:
    min_item_support: int = 5
    min_session_length: int = 2
    test_days: float = 1.0
    dedupe_consecutive: bool = False  # collapse immediate repeats of the same item


def _keep_long_sessions(sess_codes: np.ndarray, keep: np.ndarray, minimum: int) -> np.ndarray:
    counts = np.bincount(sess_codes[keep], minlength=int(sess_codes.max(initial=-1)) + 1)
    return keep & (counts[sess_codes] >= minimum)


def filter_events(
    session: np.ndarray, item: np.ndarray, time: np.ndarray, cfg: PreprocessConfig
) -> np.ndarray:
    """Boolean mask of the events that survive the support/length filters."""
    s_codes, _ = pd.factorize(session)
    i_codes, _ = pd.factorize(item)
    keep = np.ones(len(session), dtype=bool)
    if cfg.dedupe_consecutive and len(session):
        order = np.lexsort((time, s_codes))
        same = np.zeros(len(session), bool)
        same[order[1:]] = (s_codes[order[1:]] == s_codes[order[:-1]]) & (
            i_codes[order[1:]] == i_codes[order[:-1]]
        )
        keep &= ~same
    keep = _keep_long_sessions(s_codes, keep, 2)
    support = np.bincount(i_codes[keep], minlength=int(i_codes.max(initial=-1)) + 1)
    keep &= support[i_codes] >= cfg.min_item_support
    return _keep_long_sessions(s_codes, keep, cfg.min_session_length)


def split_by_time(session: np.ndarray, time: np.ndarray, days: float) -> np.ndarray:
    """True for events of sessions whose last event is within ``days`` of the end."""
    s_codes, _ = pd.factorize(session)
    last = np.full(int(s_codes.max(initial=-1)) + 1, -np.inf)
    np.maximum.at(last, s_codes, time)
    return last[s_codes] >= time.max(initial=0.0) - days * DAY


def build_item_table(
    train_items: np.ndarray,
    train_time: np.ndarray,
    categories: pd.Series | None = None,
) -> ItemTable:
    """Items of the training events, numbered by first appearance in time order."""
    order = np.argsort(train_time, kind="stable")
    uniq, first = np.unique(train_items[order], return_index=True)
    ids = uniq[np.argsort(first, kind="stable")]
    if categories is None:
        return ItemTable(ids=ids)
    cat = categories.reindex(ids)
    codes, names = pd.factorize(cat, use_na_sentinel=True)
    return ItemTable(ids=ids, categories=codes.astype(np.int32), category_names=np.asarray(names))


def to_sessions(
    table: ItemTable, session: np.ndarray, item: np.ndarray, time: np.ndarray, min_length: int
) -> Sessions:
    """Group events into time-sorted sessions over ``table``'s items.

    Unknown items are dropped, then sessions shorter than ``min_length``; rows are
    ordered by the time of their first event (GRU4Rec's ``time_sort``).
    """
    idx = table.index_of(item)
    known = idx >= 0
    sess = Sessions.from_groups(session[known], idx[known], times=time[known], order=time[known])
    return sess.select(sess.lengths >= min_length)


def split_log(
    session: np.ndarray,
    item: np.ndarray,
    time: np.ndarray,
    cfg: PreprocessConfig,
    categories: pd.Series | None = None,
) -> tuple[ItemTable, Sessions, Sessions]:
    """Raw events -> (item table, train sessions, test sessions)."""
    keep = filter_events(session, item, time, cfg)
    session, item, time = session[keep], item[keep], time[keep]
    is_test = split_by_time(session, time, cfg.test_days)
    table = build_item_table(item[~is_test], time[~is_test], categories)
    train = to_sessions(table, session[~is_test], item[~is_test], time[~is_test], 1)
    test = to_sessions(
        table, session[is_test], item[is_test], time[is_test], cfg.min_session_length
    )
    return table, train, test


def _holdout(
    sessions: Sessions, is_later: np.ndarray, min_length: int
) -> tuple[Sessions, Sessions]:
    earlier = sessions.select(~is_later)
    later = sessions.select(is_later)
    seen = np.zeros(int(sessions.items.max(initial=-1)) + 1, dtype=bool)
    seen[earlier.items] = True
    later = later.filter_events(seen[later.items])
    return earlier, later.select(later.lengths >= min_length)


def holdout_by_time(
    sessions: Sessions, days: float, min_length: int = 2
) -> tuple[Sessions, Sessions]:
    """Split sessions whose last event is in the final ``days`` off as a hold-out.

    Hold-out events on items the earlier part never saw are dropped, as in the
    official ``train_tr``/``train_valid`` files; both parts keep the item indices.
    """
    if sessions.times is None:
        raise ValueError("a time-based hold-out needs event times")
    if sessions.n_sessions == 0:
        return sessions, sessions
    last = sessions.times[sessions.offsets[1:] - 1]
    return _holdout(sessions, last >= last.max() - days * DAY, min_length)


def holdout_tail(
    sessions: Sessions, fraction: float, min_length: int = 2
) -> tuple[Sessions, Sessions]:
    """Hold out the last ``fraction`` of the rows (for data in time order without times)."""
    n_later = round(sessions.n_sessions * fraction)
    is_later = np.arange(sessions.n_sessions) >= sessions.n_sessions - n_later
    return _holdout(sessions, is_later, min_length)
