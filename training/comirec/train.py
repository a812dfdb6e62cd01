"""The multi-interest training loop, as the official ComiRec code runs it.

Each iteration draws a batch of distinct training users with a random cut
(``TrainingSampler``), extracts the K interests of the inputs, reads out one
user vector per example against the target (argmax interest; label-aware
attention for MIND), and takes an Adam step on a softmax loss. The loss is
either the sampled softmax of the official code (``negatives`` x batch
distinct log-uniform negatives shared by the batch, with the log-Q correction
and accidental hits removed, as TensorFlow's ``sampled_softmax_loss`` does by
default; it needs items ranked by descending count, which ``prepare`` does) or
the full softmax over all items. Every ``eval_every``
iterations the validation users are scored with the full protocol; the
weights with the best validation Recall@50 are kept, and training stops after
``patience`` evaluations without improvement.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from models.comirec import MultiInterestModel
from training.comirec.data import TrainingSampler, UserSequences
from training.comirec.evaluate import evaluate_users
from training.distributed import (
    World,
    average_gradients,
    broadcast_parameters,
    default_device,
    world_from_env,
)


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 128
    lr: float = 1e-3
    max_iter: int = 30_000
    eval_every: int = 1_000
    patience: int = 5  # evaluations without a better validation Recall@50
    loss: Literal["sampled", "full"] = "sampled"
    negatives: int = 10  # per example: the batch shares negatives * batch_size samples
    # Distinct negatives, drawn until that many differ (the official code's sampler);
    # False draws them with replacement.
    unique_negatives: bool = True
    seed: int = 0
    time_limit: float = 0.0  # seconds of wall time; 0 = none
    # Validate on at most this many users (a fixed random subset; 0 = all of them):
    # each validation scores the whole catalog for every user, which on a shop's
    # catalog and visit count costs more than the training between two validations.
    valid_users: int = 0

    def __post_init__(self) -> None:
        if self.valid_users < 0:
            raise ValueError("valid_users must be 0 (all) or positive")
        if self.loss not in ("sampled", "full"):
            raise ValueError(f"loss must be 'sampled' or 'full', got {self.loss!r}")
        for name in ("batch_size", "max_iter", "eval_every", "patience", "negatives"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")


@dataclass
class TrainResult:
    best_iteration: int
    best_valid: dict[str, float]
    iterations: int
    train_seconds: float  # forward + backward + update only
    samples_per_second: float
    curve: list[dict[str, float]] = field(default_factory=list)
    stopped: str = "max_iter"


def log_uniform_probabilities(n_items: int) -> torch.Tensor:
    """Zipfian P(k) = log((k + 2) / (k + 1)) / log(n + 1) of row k (rows by descending count)."""
    k = torch.arange(n_items, dtype=torch.float64)
    return (torch.log1p(1.0 / (k + 1.0)) / math.log(n_items + 1.0)).float()


def draw_negatives(
    probs: torch.Tensor, n: int, unique: bool, generator: torch.Generator
) -> tuple[torch.Tensor, int]:
    """``n`` rows drawn from ``probs`` and the number of draws that took.

    With ``unique`` the draws go on, with replacement, until ``n`` of them differ,
    and the first occurrences are kept (TensorFlow's candidate samplers do the
    same one draw at a time). The number of tries enters the expected counts.
    Drawn in growing chunks so that a step costs a few vector operations.
    """
    if not unique:
        return torch.multinomial(probs, n, replacement=True, generator=generator), n
    if not 0 < n <= len(probs):
        raise ValueError(f"cannot draw {n} distinct rows of {len(probs)}")
    draws = np.empty(0, dtype=np.int64)
    chunk = 2 * n
    while True:
        more = torch.multinomial(probs, chunk, replacement=True, generator=generator)
        draws = np.concatenate([draws, more.numpy()])
        first = np.unique(draws, return_index=True)[1]
        if len(first) >= n:
            keep = np.sort(first)[:n]
            return torch.from_numpy(draws[keep]), int(keep[-1]) + 1
        chunk *= 2


def log_expected_count(p: torch.Tensor, n: int, tries: int) -> torch.Tensor:
    """log Q: the expected count of each row in a draw of ``n`` that took ``tries``.

    With replacement (``tries == n``) it is ``n p``. For distinct rows it is the
    probability of being among them, approximated as in TensorFlow by taking the
    number of tries as fixed: ``1 - (1 - p)^tries``. Computed in float64,
    returned in ``p``'s dtype.
    """
    q = p.double()
    if tries == n:
        return torch.log(q * n).to(p.dtype)
    return torch.log(-torch.expm1(tries * torch.log1p(-q))).to(p.dtype)


def sampled_softmax_loss(
    user: torch.Tensor,
    target: torch.Tensor,
    items: torch.Tensor,
    n_sampled: int,
    probs: torch.Tensor,
    generator: torch.Generator,
    unique: bool = False,
) -> torch.Tensor:
    """Softmax over the target and ``n_sampled`` shared log-uniform negatives, logits
    corrected by ``- log(expected count)``, a negative equal to the target masked out."""
    # Drawn on the CPU with the seeded generator (the same draws on any device), then moved.
    sampled, tries = draw_negatives(probs, n_sampled, unique, generator)
    sampled = sampled.to(user.device)
    p = probs.to(user.device)  # the rows' log Q only: a step costs O(batch), not O(catalog)
    true_logit = (user * items[target]).sum(-1) - log_expected_count(p[target], n_sampled, tries)
    neg_logits = user @ items[sampled].T - log_expected_count(p[sampled], n_sampled, tries)
    neg_logits = neg_logits.masked_fill(target[:, None] == sampled[None, :], -torch.inf)
    logits = torch.cat([true_logit[:, None], neg_logits], dim=1)
    return F.cross_entropy(logits, torch.zeros(len(user), dtype=torch.long, device=user.device))


def training_loss(
    model: MultiInterestModel,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    cfg: TrainConfig,
    probs: torch.Tensor,
    generator: torch.Generator,
) -> torch.Tensor:
    interests, active = model.forward_window(inputs)
    user = model.readout(interests, active, model.embedding(targets))
    items = model.item_vectors()
    if cfg.loss == "full":
        return F.cross_entropy(user @ items.T, targets)
    # Distinct draws of most of a small catalog would take very many tries (the rarest
    # rows come last): there, half the catalog is drawn.
    cap = len(probs) // 2 if cfg.unique_negatives else 10 * len(probs)
    n_sampled = max(1, min(cfg.negatives * len(inputs), cap))
    return sampled_softmax_loss(
        user, targets, items, n_sampled, probs, generator, cfg.unique_negatives
    )


def train(
    model: MultiInterestModel,
    data: UserSequences,
    cfg: TrainConfig,
    progress: bool = True,
    on_eval: Callable[[dict[str, Any]], None] | None = None,
    device: torch.device | str | None = None,
    world: World | None = None,
) -> TrainResult:
    """Train ``model`` in place on the GPU when there is one (``device`` overrides).

    The model is returned to the CPU with the weights of its best validation
    Recall@50, ready to be written or served. Under ``torchrun`` (or with a
    ``world``) every rank draws its own batches and negatives from its own seed,
    gradients are averaged over the ranks after each backward pass (so the
    effective batch is ranks x ``batch_size``), and every rank evaluates the
    same weights, so all take the same early-stopping decisions.
    """
    world = world if world is not None else world_from_env()
    if world is not None:
        device = world.device
    device = torch.device(device) if device is not None else default_device()
    model.to(device)
    torch.manual_seed(cfg.seed)
    rank = 0
    if world is not None:
        rank = world.rank
        broadcast_parameters(model)
        progress = progress and world.is_main
    seed = cfg.seed + 1000 * rank
    generator = torch.Generator().manual_seed(seed)
    sampler = TrainingSampler(data.sequences, data.split.train, model.config.max_len, seed)
    probs = log_uniform_probabilities(data.n_items)
    params = list(model.parameters())
    optimizer = torch.optim.Adam(params, lr=cfg.lr)
    best_recall, best_state, best_iter, best_valid = -1.0, None, 0, {}
    curve: list[dict[str, float]] = []
    train_seconds, losses, stale, stopped = 0.0, [], 0, "max_iter"
    valid_users = data.split.valid
    if 0 < cfg.valid_users < len(valid_users):  # same subset on every rank and evaluation
        pick = np.random.default_rng(cfg.seed).choice(len(valid_users), cfg.valid_users, False)
        valid_users = valid_users[np.sort(pick)]
    start = time.perf_counter()
    bar = tqdm(range(1, cfg.max_iter + 1), disable=not progress, mininterval=5, unit="it")
    it = 0
    for it in bar:
        model.train()
        inputs, targets = (torch.from_numpy(a).to(device) for a in sampler.batch(cfg.batch_size))
        t0 = time.perf_counter()
        loss = training_loss(model, inputs, targets, cfg, probs, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if world is not None:
            average_gradients(world, params)
        optimizer.step()
        train_seconds += time.perf_counter() - t0
        losses.append(loss.item())
        out_of_time = cfg.time_limit > 0 and time.perf_counter() - start > cfg.time_limit
        if it % cfg.eval_every and it != cfg.max_iter and not out_of_time:
            continue
        valid = evaluate_users(model, data, valid_users)[0]
        point = {"iteration": it, "loss": float(np.mean(losses)), **valid}
        curve.append(point)
        losses = []
        bar.set_postfix(loss=f"{point['loss']:.3f}", recall50=f"{valid['recall@50']:.4f}")
        if on_eval and (world is None or world.is_main):
            on_eval(point)
        if valid["recall@50"] > best_recall:
            best_recall, best_iter, best_valid = valid["recall@50"], it, valid
            best_state, stale = copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
        if out_of_time:
            stopped = "time_limit"
            break
        if stale >= cfg.patience:
            stopped = "early_stopping"
            break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.cpu()
    model.eval()
    samples = it * cfg.batch_size
    return TrainResult(
        best_iteration=best_iter,
        best_valid=best_valid,
        iterations=it,
        train_seconds=train_seconds,
        samples_per_second=samples / max(train_seconds, 1e-9),
        curve=curve,
        stopped=stopped,
    )
