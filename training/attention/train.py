"""The training loop of the attention models: epochs of sequence-to-sequence windows.

An epoch visits every training sequence once, in a seeded random order, as
windows of L inputs and their L next items (``TrainingBatches``); every
position with an item and a next item contributes to the loss, one of
``models.sequence_losses``: the paper's BCE with one negative outside the
window, the full softmax, or the sampled softmax with ``negatives`` items drawn
per batch (uniform or by popularity) and the log-Q correction. Adam with the
reference code's betas (0.9, 0.98). After every ``eval_every`` epochs the
validation histories are ranked against all items; the weights with the best
validation ``stop_metric`` are kept, and training stops after ``patience``
evaluations without improvement. The test set is never read here.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from tqdm import tqdm

from models.sequence_losses import (
    Sampling,
    bce_one_negative,
    full_cross_entropy,
    negatives_not_in,
    sampled_cross_entropy,
    sampling_probabilities,
)
from models.windowed import Pairs, WindowedModel
from training.attention.data import SequenceData, TrainingBatches
from training.attention.evaluate import KS, evaluate
from training.distributed import default_device

Loss = Literal["bce", "full", "sampled"]


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    epochs: int = 200
    eval_every: int = 1  # epochs between two validations
    patience: int = 10  # validations without a better stop_metric
    loss: Loss = "sampled"
    negatives: int = 256  # sampled softmax: negatives per position
    sampling: Sampling = "uniform"
    # "position": every position draws its own (eSASRec); "batch": one draw shared by the batch
    negatives_per: Literal["position", "batch"] = "position"
    # Batches of sequences of similar length (ours, for speed: see ``TrainingBatches``):
    # the number of batches pooled and sorted by length; 0 = plain random batches.
    length_groups: int = 0
    stop_metric: str = "ndcg@10"  # of the protocol's ranking (``SequenceData.remove_seen``)
    seed: int = 0
    time_limit: float = 0.0  # seconds of wall time; 0 = none

    def __post_init__(self) -> None:
        if self.loss not in ("bce", "full", "sampled"):
            raise ValueError(f"loss must be 'bce', 'full' or 'sampled', not {self.loss!r}")
        if self.negatives_per not in ("position", "batch"):
            raise ValueError(
                f"negatives_per must be 'position' or 'batch', not {self.negatives_per!r}"
            )
        if self.sampling not in ("uniform", "popularity"):
            raise ValueError(f"sampling must be 'uniform' or 'popularity', not {self.sampling!r}")
        names = {f"{m}@{k}" for m in ("hitrate", "ndcg", "mrr") for k in KS}
        if self.stop_metric not in names:
            raise ValueError(f"stop_metric must be one of {', '.join(sorted(names))}")
        if self.length_groups < 0:
            raise ValueError("length_groups must be 0 (off) or positive")
        for name in ("batch_size", "epochs", "eval_every", "patience", "negatives"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ValueError("lr must be positive and weight_decay not negative")


@dataclass
class TrainResult:
    best_epoch: int
    best_valid: dict[str, float]
    epochs: int
    train_seconds: float  # forward + backward + update only
    sequences_per_second: float
    seconds_to_best: float  # wall time from the start of training to the best validation
    curve: list[dict[str, float]] = field(default_factory=list)
    stopped: str = "epochs"


class StepLoss:
    """The configured loss of one batch of windows, with its sampler's state."""

    def __init__(self, cfg: TrainConfig, popularity: np.ndarray, device: torch.device) -> None:
        self.cfg = cfg
        self.device = device
        self.generator = torch.Generator().manual_seed(cfg.seed + 1)
        probs = sampling_probabilities(torch.from_numpy(popularity), cfg.sampling)
        self.probs = probs
        self.log_q = probs.log().to(device)

    def draw(self, shape: tuple[int, ...]) -> torch.Tensor:
        """Item rows by the sampling distribution, with replacement, drawn on the CPU."""
        n = int(np.prod(shape))
        if self.cfg.sampling == "uniform":
            return torch.randint(len(self.probs), shape, generator=self.generator)
        return torch.multinomial(self.probs, n, replacement=True, generator=self.generator).view(
            shape
        )

    def __call__(
        self, model: WindowedModel, inputs: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The step's loss, and the model's extra terms within it (for the curve)."""
        pairs = model.training_pairs(inputs, targets, self.generator)
        extra = sum(pairs.extra.values(), torch.zeros((), device=self.device))
        return self.next_item_loss(pairs, model.item_vectors()) + extra, pairs.extra

    def next_item_loss(self, pairs: Pairs, items: torch.Tensor) -> torch.Tensor:
        h, t = pairs.hidden, pairs.targets
        if self.cfg.loss == "full":
            return full_cross_entropy(h, t, items)
        if self.cfg.loss == "bce":
            neg = negatives_not_in(pairs.windows, items.shape[0], self.generator)
            return bce_one_negative(h, t, neg.to(self.device), items)
        per_position = self.cfg.negatives_per == "position"
        shape = (len(t), self.cfg.negatives) if per_position else (self.cfg.negatives,)
        negatives = self.draw(shape).to(self.device)
        return sampled_cross_entropy(h, t, items, negatives, self.log_q)


def train(
    model: WindowedModel,
    data: SequenceData,
    cfg: TrainConfig,
    progress: bool = True,
    on_eval: Callable[[dict[str, Any]], None] | None = None,
    device: torch.device | str | None = None,
) -> TrainResult:
    """Train ``model`` in place (on the GPU when there is one; ``device`` overrides).

    The model comes back on the CPU, in eval mode, with the weights of its best
    validation ``stop_metric``.
    """
    device = torch.device(device) if device is not None else default_device()
    model.to(device)
    torch.manual_seed(cfg.seed)
    batches = TrainingBatches(data.train, model.config.max_len, cfg.seed, cfg.length_groups)
    model.set_training_sequences(data.train.items, data.train.offsets)
    step_loss = StepLoss(cfg, data.popularity, device)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=cfg.lr, betas=(0.9, 0.98), weight_decay=cfg.weight_decay
    )
    which = 1 if data.remove_seen else 0
    best, best_state, best_epoch, best_valid, best_at = -1.0, None, 0, {}, 0.0
    curve: list[dict[str, float]] = []
    train_seconds, stale, stopped, epoch = 0.0, 0, "epochs", 0
    start = time.perf_counter()
    bar = tqdm(range(1, cfg.epochs + 1), disable=not progress, unit="epoch")
    for epoch in bar:
        model.train()
        losses: list[float] = []
        terms: dict[str, list[float]] = {}
        t0 = time.perf_counter()
        for inputs, targets in batches.epoch(cfg.batch_size):
            loss, extra = step_loss(
                model, torch.from_numpy(inputs).to(device), torch.from_numpy(targets).to(device)
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            for name, value in extra.items():
                terms.setdefault(name, []).append(value.item())
        train_seconds += time.perf_counter() - t0
        out_of_time = cfg.time_limit > 0 and time.perf_counter() - start > cfg.time_limit
        if epoch % cfg.eval_every and epoch != cfg.epochs and not out_of_time:
            continue
        valid = evaluate(model, data.valid)[which]
        point = {
            "epoch": epoch,
            "loss": float(np.mean(losses)),
            **{f"loss_{name}": float(np.mean(v)) for name, v in terms.items()},
            "seconds": time.perf_counter() - start,
            **valid,
        }
        curve.append(point)
        bar.set_postfix(
            loss=f"{point['loss']:.4f}", **{cfg.stop_metric: f"{valid[cfg.stop_metric]:.4f}"}
        )
        if on_eval:
            on_eval(point)
        if valid[cfg.stop_metric] > best:
            best, best_epoch, best_valid, best_at = (
                valid[cfg.stop_metric],
                epoch,
                valid,
                point["seconds"],
            )
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
    return TrainResult(
        best_epoch=best_epoch,
        best_valid=best_valid,
        epochs=epoch,
        train_seconds=train_seconds,
        sequences_per_second=epoch * len(batches) / max(train_seconds, 1e-9),
        seconds_to_best=best_at,
        curve=curve,
        stopped=stopped,
    )
