"""Next-item losses of the sequence-to-sequence attention models (SASRec and its kin).

Every loss takes the hidden states of the positions that have a target
(``hidden`` [P, d]), the target item rows (``targets`` [P]) and the item
matrix (``items`` [n_items, d]), and returns the mean over the positions.

- ``bce_one_negative``: the original SASRec loss (Kang and McAuley, 2018): per
  position, the binary cross-entropy of the target against one negative drawn
  uniformly from the items the user has not clicked.
- ``full_cross_entropy``: softmax over every item (Klenitskiy and Vasilev,
  RecSys 2023, "Turning Dross Into Gold Loss: is BERT4Rec really better than
  SASRec?"); exact but O(positions x items) per step.
- ``sampled_cross_entropy``: softmax over the target and N sampled negatives,
  uniform or by popularity, logits corrected by ``- log Q`` (the sampling
  probability) so that the sampled softmax estimates the full one, accidental
  hits (a negative equal to the target) masked out. eSASRec (arXiv 2508.06450)
  trains SASRec this way with 256 uniform negatives drawn per position;
  negatives shared by a batch ([N] rather than [P, N]) cost one matrix product.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

Sampling = Literal["uniform", "popularity"]


def negatives_not_in(
    history: torch.Tensor, n_items: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Per row of ``history`` [P, W] (``-1`` = padding), one uniform item row it does not hold.

    Why not "any item": the original SASRec sampler draws a negative outside the
    user's sequence. Draws that hit the row are redrawn (all at once, until none
    is left); with a catalog much larger than the window this ends in one or two
    rounds.
    """
    if n_items <= history.shape[1]:
        raise ValueError(f"cannot draw items outside windows of {history.shape[1]} from {n_items}")
    neg = torch.randint(n_items, history.shape[:1], generator=generator)
    history = history.cpu()
    while True:
        clash = (neg[:, None] == history).any(1)
        if not clash.any():
            return neg
        neg[clash] = torch.randint(n_items, (int(clash.sum()),), generator=generator)


def bce_one_negative(
    hidden: torch.Tensor, targets: torch.Tensor, negatives: torch.Tensor, items: torch.Tensor
) -> torch.Tensor:
    """-log sigmoid(h.e_target) - log(1 - sigmoid(h.e_negative)), mean over positions."""
    pos = (hidden * items[targets]).sum(-1)
    neg = (hidden * items[negatives]).sum(-1)
    return (F.softplus(-pos) + F.softplus(neg)).mean()


def full_cross_entropy(
    hidden: torch.Tensor, targets: torch.Tensor, items: torch.Tensor
) -> torch.Tensor:
    return F.cross_entropy(hidden @ items.T, targets)


def sampling_probabilities(
    counts: torch.Tensor, sampling: Sampling, power: float = 1.0
) -> torch.Tensor:
    """The probability of drawing each item row: uniform, or proportional to count ** power."""
    if sampling == "uniform":
        return torch.full((len(counts),), 1.0 / len(counts))
    if sampling != "popularity":
        raise ValueError(f"sampling must be 'uniform' or 'popularity', not {sampling!r}")
    weights = counts.double().clamp(min=1.0) ** power  # an unseen item can still be drawn
    return (weights / weights.sum()).float()


def sampled_cross_entropy(
    hidden: torch.Tensor,
    targets: torch.Tensor,
    items: torch.Tensor,
    negatives: torch.Tensor,
    log_q: torch.Tensor,
) -> torch.Tensor:
    """Softmax over the target and its negatives: [P, N] per position, or [N] shared by all.

    ``log_q`` [n_items] is the log probability of drawing each row; both the
    target's and the negatives' logits are corrected by it (a constant under
    uniform sampling, so there it changes nothing).
    """
    true_logit = (hidden * items[targets]).sum(-1) - log_q[targets]
    if negatives.dim() == 1:
        neg_logits = hidden @ items[negatives].T
        hits = targets[:, None] == negatives[None, :]
    else:
        # Gathered from all P x n_items logits: one matrix product and a dense gather cost
        # less than gathering P x N item vectors (whose backward is a scatter-add into the
        # item matrix) as soon as N is more than about 1% of the catalog.
        neg_logits = (hidden @ items.T).gather(1, negatives)
        hits = targets[:, None] == negatives
    neg_logits = (neg_logits - log_q[negatives]).masked_fill(hits, -torch.inf)
    logits = torch.cat([true_logit[:, None], neg_logits], dim=1)
    zeros = torch.zeros(len(targets), dtype=torch.long, device=hidden.device)
    return F.cross_entropy(logits, zeros)
