"""Full-ranking evaluation of a history encoder: every item ranked, nothing sampled.

Each history's query (the encoder output after its last item) is scored
against every item; the target's rank counts the items scored strictly higher
(the ``standard`` ties of ``training.evaluation.ranking``). Two rankings come
out of one scoring pass: over all items, and with the history's own items
removed (scored minus infinity), as the leave-one-out papers rank them (S3-Rec,
ICLRec, and RecBole's full sort do); a target the user had already clicked
then counts as a miss. HitRate@k (= Recall@k with one target), NDCG@k and
MRR@k at k = 5, 10, 20.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from training.attention.data import Histories, windows
from training.data.sessions import Sessions
from training.evaluation.ranking import target_ranks

KS = (5, 10, 20)


class HistoryEncoder(Protocol):
    config: object

    def encode(self, prefix: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Queries [B, 1, d] of left-padded windows [B, L] (``-1`` = padding)."""
        ...

    def item_vectors(self) -> torch.Tensor: ...

    def eval(self) -> object: ...


def rank_metrics(ranks: torch.Tensor, ks: tuple[int, ...] = KS) -> dict[str, float]:
    """HitRate@k, NDCG@k and MRR@k of 1-based ranks (one relevant item per row)."""
    out: dict[str, float] = {}
    ranks = ranks.double()
    for k in ks:
        inside = ranks <= k
        out[f"hitrate@{k}"] = float(inside.double().mean())
        out[f"ndcg@{k}"] = float(torch.where(inside, 1.0 / torch.log2(ranks + 1.0), 0.0).mean())
        out[f"mrr@{k}"] = float(torch.where(inside, 1.0 / ranks, 0.0).mean())
    return out


def ranks_without_history(
    scores: torch.Tensor,
    targets: torch.Tensor,
    ranks: torch.Tensor,
    seqs: Sessions,
    rows: np.ndarray,
) -> torch.Tensor:
    """The ranks once each row's history items are removed, from the ranks among all items.

    Removing items only removes competitors: the new rank is the old one minus the
    number of distinct history items scored above the target, so only the
    history's scores are read (not the whole row again). A target in its own
    history is removed with it: a miss, ranked after every item.
    """
    longest = max(int(seqs.lengths[rows].max()), 1)
    seen = torch.from_numpy(windows(seqs, rows, longest))
    seen = seen.sort(dim=1).values  # duplicates side by side; padding (-1) first
    first = torch.ones_like(seen, dtype=torch.bool)
    first[:, 1:] = seen[:, 1:] != seen[:, :-1]
    distinct = first & (seen >= 0)
    seen_scores = scores.gather(1, seen.clamp(min=0))
    above = (distinct & (seen_scores > scores.gather(1, targets[:, None]))).sum(1)
    own = (distinct & (seen == targets[:, None])).any(1)
    return torch.where(own, float(scores.shape[1] + 1), ranks - above)


def history_ranks(
    model: HistoryEncoder, data: Histories, batch_size: int = 512
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ranks of every target among all items, and with the history's items removed."""
    if len(data) == 0:
        raise ValueError("no history to evaluate")
    model.eval()
    max_len = int(model.config.max_len)  # type: ignore[attr-defined]
    seqs = data.history
    all_ranks, unseen_ranks = [], []
    # Rows in order of history length, so a batch's windows carry little padding (the
    # encoder cuts all-padding columns); ranks are put back in the rows' order at the end.
    order = np.argsort(seqs.lengths, kind="stable")
    with torch.inference_mode():
        items = model.item_vectors()
        for lo in range(0, len(data), batch_size):
            rows = order[lo : lo + batch_size]
            query = model.encode(torch.from_numpy(windows(seqs, rows, max_len)))[:, -1]
            scores = query @ items.T
            targets = torch.from_numpy(data.targets[rows])
            ranks = target_ranks(scores, targets)
            all_ranks.append(ranks)
            unseen_ranks.append(ranks_without_history(scores, targets, ranks, seqs, rows))
    back = torch.from_numpy(np.argsort(order, kind="stable"))
    return torch.cat(all_ranks)[back], torch.cat(unseen_ranks)[back]


def evaluate(
    model: HistoryEncoder, data: Histories, batch_size: int = 512
) -> tuple[dict[str, float], dict[str, float]]:
    """(metrics ranking all items, metrics with the history's items removed)."""
    ranks, unseen = history_ranks(model, data, batch_size)
    return rank_metrics(ranks), rank_metrics(unseen)
