"""The multi-interest protocol for a trained model: exact scores, K x N' candidates, aggregate.

Held-out users give the last L items of the first 80% of their sequence as
input; every item is scored (no index, no sampling), each interest's top N'
items are the candidates, and max-score or diversity-greedy picks the list.
History items are not excluded, as in the official ComiRec evaluation.
"""

from __future__ import annotations

import numpy as np
import torch

from models.batched_aggregators import BatchCandidates, batched_greedy, exact_candidates
from models.comirec import MultiInterestModel
from training.comirec.data import UserSequences, left_padded_tails
from training.evaluation.multi_interest import Holdout, holdout, topn_metrics


def holdout_prefixes(data: UserSequences, users: np.ndarray, max_len: int) -> tuple:
    """(left-padded inputs [U, L], the holdout) for the chosen users."""
    split = holdout(data.sequences, users)
    inputs = split.inputs
    prefix = left_padded_tails(inputs, inputs.lengths, np.arange(inputs.n_sessions), max_len)
    return prefix, split


@torch.no_grad()
def candidates_for(
    model: MultiInterestModel, prefix: np.ndarray, per_interest: int, batch: int = 256
) -> list[BatchCandidates]:
    """Exact-score candidates per batch of users (kept in batches to bound memory)."""
    items = model.item_vectors()
    out = []
    for start in range(0, len(prefix), batch):
        queries = model.encode(torch.from_numpy(prefix[start : start + batch]).to(items.device))
        c = exact_candidates(torch.einsum("ukd,nd->ukn", queries, items), per_interest)
        # scores stay where the model is (GPU or CPU); only the short candidate lists move
        out.append(BatchCandidates(c.items.cpu(), c.scores.cpu(), c.interests.cpu()))
    return out


def top_lists(
    cands: list[BatchCandidates], n: int, categories: np.ndarray | None, lam: float
) -> np.ndarray:
    """Lists [U, n] by diversity-greedy with ``lam`` (``lam = 0`` is max-score)."""
    cats = torch.from_numpy(
        np.zeros(0, np.int64) if categories is None else categories.astype(np.int64)
    )
    if categories is None and lam != 0.0:
        raise ValueError("diversity-greedy needs item categories")
    return torch.cat([batched_greedy(c, n, cats, lam) for c in cands]).numpy()


def evaluate_users(
    model: MultiInterestModel,
    data: UserSequences,
    users: np.ndarray,
    lambdas: tuple[float, ...] = (0.0,),
    ns: tuple[int, ...] = (20, 50),
    per_interest: int | None = None,
) -> list[dict[str, float]]:
    """Metrics per lambda (Recall, NDCG, HitRate, Diversity at each N)."""
    model.eval()
    n = max(ns)
    prefix, split = holdout_prefixes(data, users, model.config.max_len)
    cands = candidates_for(model, prefix, per_interest or n)
    out = []
    for lam in lambdas:
        lists = top_lists(cands, n, data.categories, lam)
        out.append(metrics_of(lists, split, data.categories, ns))
    return out


def metrics_of(
    lists: np.ndarray, split: Holdout, categories: np.ndarray | None, ns: tuple[int, ...]
) -> dict[str, float]:
    """Protocol metrics, plus NDCG as the official ComiRec code computes it (for comparison)."""
    metrics = topn_metrics(lists, split.targets, categories, ns)
    official = topn_metrics(lists, split.targets, None, ns, ndcg="comirec")
    metrics.update({f"ndcg_comirec@{k}": official[f"ndcg@{k}"] for k in ns})
    return metrics
