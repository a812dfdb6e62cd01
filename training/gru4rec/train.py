"""The GRU4Rec train loop: session-parallel mini-batches, sampled output, Adagrad + momentum.

One step, as in the official code: the B current clicks go in, the B next
clicks plus ``n_sample`` shared extra negatives come out as a [B, B + n_sample]
score matrix; the loss (summed over rows, divided by the batch size) is
back-propagated one step only (the hidden state is carried forward detached).

Where the speed comes from: the schedule is precomputed index arrays, the
negative samples come from one big tensor, and the item tables are never
touched as a whole: the rows a step needs are gathered once (unique ids),
differentiated as a small dense leaf, and written back row-wise by the
optimizer, instead of building and coalescing sparse gradient tensors.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from models.gru4rec import GRU4Rec
from models.gru4rec_loss import sampled_loss
from training.data.sessions import Sessions
from training.gru4rec.batching import Schedule, build_schedule
from training.gru4rec.optimizer import AdagradMomentum
from training.gru4rec.params import GRU4RecParams
from training.gru4rec.sampling import SampleStore


class TrainingDiverged(RuntimeError):
    """The loss became NaN (the official code stops at that point too)."""


@dataclass
class EpochStats:
    epoch: int
    loss: float  # mean loss per mini-batch, weighted by the active rows (official report)
    seconds: float
    events: int
    cpu_seconds: float = float("nan")  # process CPU time: a load-robust view of the cost

    def summary(self) -> dict[str, float]:
        """The per-epoch figures reported in checkpoints and JSON records."""
        return {
            "epoch": self.epoch,
            "loss": self.loss,
            "seconds": self.seconds,
            "events_per_second": self.events_per_second,
            "events_per_cpu_second": self.events_per_cpu_second,
        }

    @property
    def events_per_cpu_second(self) -> float:
        return self.events / self.cpu_seconds if self.cpu_seconds > 0 else float("nan")

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("nan")


@dataclass
class TrainResult:
    model: GRU4Rec
    params: GRU4RecParams
    epochs: list[EpochStats] = field(default_factory=list)
    step_losses: list[float] = field(default_factory=list)  # one value per mini-batch
    setup_seconds: float = 0.0


class _Step:
    """One training step on gathered rows; holds what stays fixed across steps."""

    def __init__(self, model: GRU4Rec, params: GRU4RecParams, support: np.ndarray) -> None:
        self.model, self.p = model, params
        self.tables = [model.Wy, model.By]
        if not model.constrained_embedding:
            self.tables.append(model.input_table)
        table_ids = {id(t) for t in self.tables}
        self.dense = [q for q in model.parameters() if id(q) not in table_ids]
        self.opt = AdagradMomentum(
            dense=self.dense,
            tables=self.tables,
            lr=params.learning_rate,
            momentum=params.momentum,
        )
        self.log_support = None
        if params.loss == "cross-entropy" and params.logq > 0:
            with np.errstate(divide="ignore"):
                self.log_support = torch.from_numpy(np.log(support).astype(np.float32))

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, hidden: list[torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        m, p = self.model, self.p
        n_batch = x.shape[0]
        # Score each distinct output item once ([B, U] matmul), then expand to the
        # [B, B + n_sample] matrix the loss needs (duplicates count, as in the official).
        out_rows, out_inv = torch.unique(y, return_inverse=True)
        n_out = len(out_rows)
        bias = m.By.detach().index_select(0, out_rows).requires_grad_()
        if m.constrained_embedding:
            # One leaf for every Wy row the step touches: outputs first (so the score
            # matmul reads a view), then the inputs that are not also outputs.
            pos = torch.searchsorted(out_rows, x).clamp_(max=n_out - 1)
            shared = out_rows[pos] == x
            extra_rows, extra_inv = torch.unique(x[~shared], return_inverse=True)
            rows = torch.cat([out_rows, extra_rows])
            pos[~shared] = n_out + extra_inv
            w = m.Wy.detach().index_select(0, rows).requires_grad_()
            x_rows, o_rows = w[pos], w[:n_out]
            leaves = [(m.Wy, rows, w)]
        else:
            in_rows, in_inv = torch.unique(x, return_inverse=True)
            table = m.input_table
            e = table.detach().index_select(0, in_rows).requires_grad_()
            w = m.Wy.detach().index_select(0, out_rows).requires_grad_()
            x_rows, o_rows = e[in_inv], w
            leaves = [(table, in_rows, e), (m.Wy, out_rows, w)]
        leaves.append((m.By, out_rows, bias))
        for q in self.dense:
            q.grad = None
        top, hidden = m.hidden_step(x_rows, hidden, p.dropout_p_embed, p.dropout_p_hidden)
        scores = torch.addmm(bias, top, o_rows.T).index_select(1, out_inv)
        log_q = None
        if self.log_support is not None:
            ls = self.log_support[y]
            log_q = p.logq * torch.cat([ls[:n_batch], p.sample_alpha * ls[n_batch:]])
        loss = (
            sampled_loss(
                p.loss,
                scores,
                final_act=p.activation,
                bpreg=p.bpreg,
                log_q=log_q,
                smoothing=p.smoothing,
            )
            / p.batch_size
        )
        loss.backward()
        self.opt.step_dense()
        for table, rows, leaf in leaves:
            self.opt.step_rows(table, rows, leaf.grad)
        return loss.detach(), [h.detach() for h in hidden]


def item_support(sessions: Sessions, n_items: int) -> np.ndarray:
    return np.bincount(sessions.items, minlength=n_items).astype(np.float64)


def train(
    sessions: Sessions,
    n_items: int,
    params: GRU4RecParams,
    progress: bool = True,
    on_epoch: Callable[[EpochStats], None] | None = None,
) -> TrainResult:
    """Train GRU4Rec on ``sessions`` (item rows < ``n_items``); a fixed seed repeats the run."""
    t0 = time.perf_counter()
    torch.manual_seed(params.seed)
    generator = torch.Generator().manual_seed(params.seed)
    schedule = build_schedule(
        sessions, params.batch_size, params.time_sort, min_active=1 if params.n_sample else 2
    )
    support = item_support(sessions, n_items)
    model = GRU4Rec(n_items, params.layers, params.embedding, params.constrained_embedding)
    model.train()
    step = _Step(model, params, support)
    store = (
        SampleStore(support, params.n_sample, params.sample_alpha, params.sample_store, generator)
        if params.n_sample
        else None
    )
    result = TrainResult(model=model, params=params, setup_seconds=time.perf_counter() - t0)
    for epoch in range(1, params.n_epochs + 1):
        stats = _run_epoch(step, schedule, store, epoch, params, progress, result.step_losses)
        result.epochs.append(stats)
        if on_epoch:
            on_epoch(stats)
    model.eval()
    return result


def _run_epoch(
    step: _Step,
    sched: Schedule,
    store: SampleStore | None,
    epoch: int,
    params: GRU4RecParams,
    progress: bool,
    step_losses: list[float],
) -> EpochStats:
    model = step.model
    hidden = [torch.zeros(params.batch_size, h) for h in model.layers]
    losses = torch.zeros(sched.n_steps)
    counts = sched.active.sum(dim=1)
    t0, c0 = time.perf_counter(), time.process_time()
    report_every = 200

    def with_samples(targets: torch.Tensor) -> torch.Tensor:
        return targets if store is None else torch.cat([targets, store.next()])

    with tqdm(
        total=sched.n_events,
        desc=f"epoch {epoch}/{params.n_epochs}",
        unit="ev",
        disable=not progress,
        leave=False,
        mininterval=1.0,
    ) as bar:
        done = 0
        for t in range(sched.n_steps):
            hidden = [h * sched.keep[t] for h in hidden]  # reset the slots of new sessions
            if t < sched.n_full:
                loss, hidden = step(sched.inputs[t], with_samples(sched.targets[t]), hidden)
            else:  # the tail: slots without a session left sit out, the batch shrinks
                rows = sched.active[t].nonzero().view(-1)
                x, y = sched.inputs[t, rows], with_samples(sched.targets[t, rows])
                loss, new = step(x, y, [h[rows] for h in hidden])
                for h, n in zip(hidden, new, strict=True):
                    h[rows] = n
            losses[t] = loss
            if (t + 1) % report_every == 0 or t + 1 == sched.n_steps:
                k = int(counts[done : t + 1].sum())
                done = t + 1
                elapsed = time.perf_counter() - t0
                bar.update(k)
                bar.set_postfix(
                    loss=f"{float(losses[max(0, t - report_every + 1) : t + 1].mean()):.4f}",
                    evps=f"{bar.n / elapsed:,.0f}",
                )
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    values = losses.numpy()
    weights = counts.numpy().astype(np.float64)
    mean = float((values * weights).sum() / max(weights.sum(), 1))
    if math.isnan(mean):
        raise TrainingDiverged(f"epoch {epoch}: the loss is NaN")
    step_losses.extend(values.tolist())
    return EpochStats(
        epoch=epoch, loss=mean, seconds=seconds, events=sched.n_events, cpu_seconds=cpu_seconds
    )
