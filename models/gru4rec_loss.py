"""GRU4Rec losses on the sampled score matrix, as in the official implementations.

Training scores one mini-batch against a small set of output items: the B
targets of the batch (column ``i`` is the target of row ``i``, so the targets
are the diagonal) followed by ``n_sample`` shared extra negatives. The score
matrix is therefore ``[B, B + n_sample]``; every off-diagonal entry is a
negative (the other sessions' targets included, as in the papers).

Every loss returns the SUM over the rows; the train loop divides by the
configured batch size, as the official code does, so a short last mini-batch
weighs less.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

LOSSES: tuple[str, ...] = ("cross-entropy", "bpr-max", "top1", "top1-max", "bpr")
_EPS = 1e-24  # the official guard inside log()


def final_activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The official ``final_act`` names: linear, relu, tanh, leaky-X, elu-X, selu-X-Y.

    ``softmax`` is accepted for cross-entropy only (which applies it itself).
    """
    if name in ("linear", "softmax"):
        return lambda x: x
    if name == "relu":
        return torch.relu
    if name == "tanh":
        return torch.tanh
    head, _, rest = name.partition("-")
    try:
        values = [float(v) for v in rest.split("-")] if rest else []
    except ValueError:
        values = []
    if head == "leaky" and len(values) == 1:
        return lambda x: F.leaky_relu(x, values[0])
    if head == "elu" and len(values) == 1:
        return lambda x: F.elu(x, values[0])
    if head == "selu" and len(values) == 2:
        scale, alpha = values
        return lambda x: scale * F.elu(x, alpha)
    raise ValueError(
        f"unknown final activation {name!r}; use linear, relu, tanh, softmax, "
        "leaky-X, elu-X or selu-X-Y"
    )


def _targets(scores: torch.Tensor) -> torch.Tensor:
    return scores.diagonal().unsqueeze(1)  # [B, 1]


def _negative_softmax(scores: torch.Tensor) -> torch.Tensor:
    """Softmax over each row without its target (the diagonal gets weight 0)."""
    masked = scores.clone()
    masked.diagonal().fill_(float("-inf"))
    return torch.softmax(masked, dim=1)


def cross_entropy(
    scores: torch.Tensor, log_q: torch.Tensor | None = None, smoothing: float = 0.0
) -> torch.Tensor:
    """Softmax cross-entropy of the diagonal; ``log_q`` ([n_out]) is subtracted from the scores.

    ``log_q = logq * log(proposal probability)`` is the sampled-softmax (logQ)
    correction. Label smoothing puts ``smoothing / n_out`` on every output,
    i.e. ``(1 - n/(n-1) s) * xe(target) + s/(n-1) * sum_j xe(j)`` per row.
    """
    if log_q is not None:
        scores = scores - log_q
    logp = torch.log_softmax(scores, dim=1)
    target = -logp.diagonal()
    if not smoothing:
        return target.sum()
    n_out = scores.shape[1]
    return (
        (1.0 - n_out / (n_out - 1) * smoothing) * target
        + smoothing / (n_out - 1) * (-logp).sum(dim=1)
    ).sum()


def bpr_max(scores: torch.Tensor, bpreg: float) -> torch.Tensor:
    """``-log sum_j s_j sigmoid(r_i - r_j) + bpreg sum_j s_j r_j^2``, s: softmax of negatives."""
    weights = _negative_softmax(scores)
    pairwise = torch.sigmoid(_targets(scores) - scores)
    rows = -torch.log((pairwise * weights).sum(dim=1) + _EPS)
    if bpreg:
        rows = rows + bpreg * (scores.square() * weights).sum(dim=1)
    return rows.sum()


def top1(scores: torch.Tensor) -> torch.Tensor:
    """TOP1: mean_j [sigmoid(r_j - r_i) + sigmoid(r_j^2)] - sigmoid(r_i^2) / n_out per row."""
    n_out = scores.shape[1]
    target = _targets(scores)
    rows = (torch.sigmoid(scores - target) + torch.sigmoid(scores.square())).mean(dim=1)
    return (rows - torch.sigmoid(target.squeeze(1).square()) / n_out).sum()


def top1_max(scores: torch.Tensor) -> torch.Tensor:
    """TOP1 weighted by the softmax over the negatives."""
    weights = _negative_softmax(scores)
    target = _targets(scores)
    terms = torch.sigmoid(scores - target) + torch.sigmoid(scores.square())
    return (weights * terms).sum()


def bpr(scores: torch.Tensor) -> torch.Tensor:
    """BPR averaged over all outputs of a row (the target itself included, as in the original)."""
    return (-F.logsigmoid(_targets(scores) - scores)).mean(dim=1).sum()


def sampled_loss(
    name: str,
    scores: torch.Tensor,
    *,
    final_act: str = "linear",
    bpreg: float = 0.0,
    log_q: torch.Tensor | None = None,
    smoothing: float = 0.0,
) -> torch.Tensor:
    """Dispatch by the official loss name; ``final_act`` applies to the ranking losses."""
    if name == "cross-entropy":
        return cross_entropy(scores, log_q, smoothing)
    scores = final_activation(final_act)(scores)
    if name == "bpr-max":
        return bpr_max(scores, bpreg)
    if name == "top1":
        return top1(scores)
    if name == "top1-max":
        return top1_max(scores)
    if name == "bpr":
        return bpr(scores)
    raise ValueError(f"unknown loss {name!r}; use one of {', '.join(LOSSES)}")
