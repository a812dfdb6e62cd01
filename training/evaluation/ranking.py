"""Ranks of target items among ALL items, by comparison (no sort, no sampling).

Tie modes follow the official GRU4Rec evaluation:
- ``standard``: 1 + number of items scored strictly higher than the target;
- ``conservative``: number of items scored higher or equal (the target counts
  itself), i.e. every tie is resolved against the target;
- ``median``: the average of the two, 1 + higher + (equal - 1) / 2.
A model that scores everything equal gets rank 1 under ``standard`` and rank
n_items under ``conservative``: report ``conservative`` when a model can emit
many ties (e.g. POP on ties of counts).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

TieMode = Literal["standard", "conservative", "median"]
TIE_MODES: tuple[str, ...] = ("standard", "conservative", "median")


def target_ranks(
    scores: torch.Tensor, targets: torch.Tensor, ties: TieMode = "standard"
) -> torch.Tensor:
    """Rank (1-based, float) of ``targets[b]`` in ``scores[b, :]``.

    A NaN target score makes that row's rank n_items + 1 (a miss), so a broken
    model cannot look good (other NaN scores compare False, i.e. rank below).
    """
    target_scores = scores.gather(1, targets.view(-1, 1).long())
    higher = (scores > target_scores).sum(dim=1)
    if ties == "standard":
        ranks = higher + 1.0
    else:
        equal = (scores == target_scores).sum(dim=1)
        if ties == "conservative":
            ranks = (higher + equal).to(torch.float64)
        elif ties == "median":
            ranks = higher + 1.0 + (equal - 1) * 0.5
        else:
            raise ValueError(f"unknown tie mode {ties!r}; use one of {TIE_MODES}")
    ranks = ranks.to(torch.float64)
    bad = torch.isnan(target_scores.view(-1))
    return torch.where(bad, torch.full_like(ranks, scores.shape[1] + 1.0), ranks)


class RankMetrics:
    """Accumulates Recall@k (= HitRate@k = the SR-GNN papers' P@k) and MRR@k."""

    def __init__(self, ks: tuple[int, ...] = (20,)) -> None:
        self.ks = tuple(sorted(set(ks)))
        self.n = 0
        self.hits = dict.fromkeys(self.ks, 0.0)
        self.rr = dict.fromkeys(self.ks, 0.0)

    def add(self, ranks: torch.Tensor) -> None:
        self.n += int(ranks.numel())
        for k in self.ks:
            inside = ranks <= k
            self.hits[k] += float(inside.sum())
            self.rr[k] += float(torch.where(inside, 1.0 / ranks, torch.zeros_like(ranks)).sum())

    def result(self) -> dict[str, float]:
        if self.n == 0:
            raise ValueError("no prediction was evaluated")
        out: dict[str, float] = {}
        for k in self.ks:
            out[f"recall@{k}"] = self.hits[k] / self.n
            out[f"mrr@{k}"] = self.rr[k] / self.n
        return out


class ByRepeat:
    """``RankMetrics`` over the targets clicked earlier in their session (``<metric>_repeat``)
    and over the rest (``<metric>_new``), and the repeats' share (``repeat_share``): where a
    model's accuracy comes from (``NextItemTask.repeats``)."""

    def __init__(self, repeats: np.ndarray, ks: tuple[int, ...]) -> None:
        self.repeats = torch.from_numpy(repeats)
        self.groups = {"repeat": RankMetrics(ks), "new": RankMetrics(ks)}

    def add(self, ranks: torch.Tensor, rows: torch.Tensor | slice) -> None:
        """The ranks of the task's predictions ``rows`` (indices or a slice of them)."""
        again = self.repeats[rows]
        self.groups["repeat"].add(ranks[again])
        self.groups["new"].add(ranks[~again])

    def result(self) -> dict[str, float]:
        out = {"repeat_share": float(self.repeats.double().mean())}
        for name, group in self.groups.items():
            if group.n:
                out.update({f"{k}_{name}": v for k, v in group.result().items()})
        return out
