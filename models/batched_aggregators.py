"""The aggregators of ``models.aggregators`` for many users at once, from exact scores.

Evaluation scores every item for every user anyway (no index), so the K x N'
candidates of a user can be built as a mask over the catalog and the greedy
steps run for all users together. The results are the same lists as
``models.aggregators.max_score`` / ``diversity_greedy`` applied user by user to
the top-N' ids of each interest (a test holds them equal): same candidate
scores (the best score among the interests that retrieved the item), same
order, same tie-breaking (lower row first).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class BatchCandidates:
    """Per user, the de-duplicated candidates best first; ``items == -1`` pads short rows."""

    items: torch.Tensor  # int64 [U, C]
    scores: torch.Tensor  # float32 [U, C], f(u, i); -inf where padded
    interests: torch.Tensor  # int64 [U, C]


def exact_candidates(scores: torch.Tensor, per_interest: int) -> BatchCandidates:
    """Union of each interest's top ``per_interest`` items, from exact scores [U, K, n_items].

    Ties inside an interest's top list are cut at the lower row, as a stable
    exact index would.
    """
    n = scores.shape[2]
    per_interest = min(per_interest, n)
    # Selection, not sorting (a full sort of the catalog per interest was most of an
    # evaluation on large catalogs): all scores above the per_interest-th best, then
    # as many of those equal to it as fit, lowest rows first, as a stable index would.
    kth = scores.topk(per_interest, dim=2).values[..., -1:]
    above = scores > kth
    at = scores == kth
    room = per_interest - above.sum(dim=2, keepdim=True)
    retrieved = above | (at & (at.cumsum(dim=2) <= room))
    masked = scores.masked_fill(~retrieved, -torch.inf)
    best, interest = masked.max(dim=1)  # [U, n]; first maximum = lower interest
    n_cand = int(retrieved.any(dim=1).sum(dim=1).max())
    # the n_cand best of each row, ordered by score then row (a stable descending sort)
    rows = best.topk(n_cand, dim=1).indices.sort(dim=1).values
    order = rows.gather(1, best.gather(1, rows).sort(dim=1, descending=True, stable=True).indices)
    f = best.gather(1, order)
    items = torch.where(torch.isfinite(f), order, torch.full_like(order, -1))
    return BatchCandidates(items, f, interest.gather(1, order))


def batched_greedy(
    cand: BatchCandidates, n: int, categories: torch.Tensor, lam: float
) -> torch.Tensor:
    """Diversity-greedy lists [U, n] (``-1`` where a user has fewer candidates).

    Each step takes, for every user at once, the candidate maximising
    ``f + lam * (step - count of its category among the picks)``; ``categories``
    maps item rows to codes (``-1`` = none, a category of its own).
    """
    U, C = cand.items.shape
    n = min(n, C)
    if lam == 0.0:
        return cand.items[:, :n]
    valid = cand.items >= 0
    cat = torch.where(valid, categories[cand.items.clamp(min=0)].long() + 1, 0)
    counts = torch.zeros(U, int(cat.max()) + 1, dtype=torch.float64)
    f = cand.scores.double()
    blocked = ~valid
    rows = torch.arange(U)
    picks = torch.full((U, n), -1, dtype=torch.int64)
    for step in range(n):
        gain = f + lam * (step - counts.gather(1, cat))
        gain = gain.masked_fill(blocked, -torch.inf)
        best = gain.argmax(dim=1)  # first maximum: best f, then lower row
        ok = ~blocked[rows, best]
        picks[:, step] = torch.where(ok, cand.items[rows, best], -1)
        blocked[rows, best] = True
        counts[rows, cat[rows, best]] += ok.double()
    return picks
