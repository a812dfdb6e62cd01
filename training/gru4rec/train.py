"""The GRU4Rec train loop: session-parallel mini-batches, sampled output, Adagrad + momentum.

One step, as in the official code: the B current clicks go in, the B next
clicks plus ``n_sample`` shared extra negatives come out as a [B, B + n_sample]
score matrix; the loss (summed over rows, divided by the batch size) is
back-propagated one step only (the hidden state is carried forward detached).

Where the speed comes from: the schedule is precomputed index arrays, the
negative samples come from one big tensor, and the item tables are never
touched as a whole: the rows a step needs are gathered once (unique ids),
differentiated as small dense leaves, and written back row-wise by the
optimizer (one compiled pass over the rows on the CPU), instead of building
and coalescing sparse gradient tensors.

The loop runs on the GPU when there is one (the returned model is on the CPU,
where evaluation, export and serving expect it). Launched by ``torchrun`` with
several processes (or given a ``World``), it trains data-parallel: each rank
runs its own session-parallel schedule over every N-th session, the ranks
average each step's gradients (``training.distributed.StepSync``) and all run
the same number of steps (a rank whose shard ran out idles through the rest).
"""

from __future__ import annotations

import dataclasses
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
from training.distributed import (
    StepSync,
    World,
    broadcast_parameters,
    default_device,
    max_over_ranks,
    sum_over_ranks,
    world_from_env,
)
from training.gru4rec.batching import Schedule, build_schedule, session_order
from training.gru4rec.compiled_loss import CompiledLoss
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
    metrics: dict[str, float] = field(default_factory=dict)  # validation after this epoch

    def summary(self) -> dict[str, float]:
        """The per-epoch figures reported in checkpoints and JSON records."""
        return {
            "epoch": self.epoch,
            "loss": self.loss,
            "seconds": self.seconds,
            "events_per_second": self.events_per_second,
            "events_per_cpu_second": self.events_per_cpu_second,
            **self.metrics,
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


class TrainStep:
    """One training step on gathered rows; holds what stays fixed across steps."""

    def __init__(
        self,
        model: GRU4Rec,
        params: GRU4RecParams,
        support: np.ndarray,
        world: World | None = None,
        compile_loss: bool = False,
    ) -> None:
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
        self.sync = StepSync(world, self.dense, self.tables) if world is not None else None
        self.log_support = None
        if params.loss == "cross-entropy" and params.logq > 0:
            with np.errstate(divide="ignore"):
                log_support = torch.from_numpy(np.log(support).astype(np.float32))
            self.log_support = log_support.to(model.Wy.device)
        self.loss: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor] = self._eager_loss
        if compile_loss:
            n_out = params.batch_size + params.n_sample
            self.loss = CompiledLoss(
                self._eager_loss,
                (params.batch_size, n_out),
                model.Wy.device,
                with_log_q=self.log_support is not None,
            )

    def _eager_loss(self, scores: torch.Tensor, log_q: torch.Tensor | None) -> torch.Tensor:
        p = self.p
        return sampled_loss(
            p.loss,
            scores,
            final_act=p.activation,
            bpreg=p.bpreg,
            log_q=log_q,
            smoothing=p.smoothing,
        )

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, hidden: list[torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        m, p = self.model, self.p
        n_batch = x.shape[0]
        # Score each distinct output item once ([B, U] matmul), then expand to the
        # [B, B + n_sample] matrix the loss needs (duplicates count, as in the official).
        out_rows, out_inv = torch.unique(y, return_inverse=True)
        bias = m.By.detach().index_select(0, out_rows).requires_grad_()
        # Inputs and outputs get leaves of their own (also when the embedding is shared):
        # the scores' gradient lands in the output leaf as is, and the few input rows'
        # gradients are merged into it by ``_merge_rows``, instead of autograd summing
        # two full-size copies of the gathered table.
        in_rows, in_inv = torch.unique(x, return_inverse=True)
        table = m.Wy if m.constrained_embedding else m.input_table
        e = table.detach().index_select(0, in_rows).requires_grad_()
        w = m.Wy.detach().index_select(0, out_rows).requires_grad_()
        x_rows, o_rows = e[in_inv], w
        leaves = [(m.Wy, out_rows, w), (table, in_rows, e), (m.By, out_rows, bias)]
        for q in self.dense:
            q.grad = None
        top, hidden = m.hidden_step(x_rows, hidden, p.dropout_p_embed, p.dropout_p_hidden)
        scores = torch.addmm(bias, top, o_rows.T).index_select(1, out_inv)
        log_q = None
        if self.log_support is not None:
            ls = self.log_support[y]
            log_q = p.logq * torch.cat([ls[:n_batch], p.sample_alpha * ls[n_batch:]])
        loss = self.loss(scores, log_q) / p.batch_size
        loss.backward()
        self._update(_merge_rows([(table, rows, leaf.grad) for table, rows, leaf in leaves]))
        return loss.detach(), [h.detach() for h in hidden]

    def idle(self) -> None:
        """A step without examples on this rank: it still joins the ranks' gradient average."""
        for q in self.dense:
            q.grad = None
        self._update([])

    def _update(self, grads: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> None:
        """Apply (table, distinct rows, their gradient) and the dense gradients.

        A table may come more than once, with disjoint rows (``_merge_rows``).
        """
        if self.sync is not None:
            mine: dict[int, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
            for table, rows, grad in grads:
                mine.setdefault(id(table), ([], []))
                mine[id(table)][0].append(rows)
                mine[id(table)][1].append(grad)
            rows_in, grads_in = [], []
            for table in self.tables:
                rows, grad = mine.get(id(table), ([], []))
                rows_in.append(torch.cat(rows) if rows else table.new_zeros(0, dtype=torch.int64))
                grads_in.append(torch.cat(grad) if grad else table.new_zeros((0, *table.shape[1:])))
            rows_out, grads_out = self.sync.reduce(rows_in, grads_in)
            grads = list(zip(self.tables, rows_out, grads_out, strict=True))
        self.opt.step_dense()
        for table, rows, grad in grads:
            self.opt.step_rows(table, rows, grad)


def _merge_rows(
    grads: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Make the rows of each table disjoint across entries, gradients summed.

    Entries are (table, sorted distinct rows, gradient). An entry whose table
    came earlier adds its gradient of the rows the earlier entry holds into
    that entry's gradient (in place) and keeps only its other rows: Adagrad
    must see a row's whole gradient in one update. Entries are never empty
    once merged, so ``seen_rows`` has a last row to clamp to.
    """
    merged: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    for table, rows, grad in grads:
        for seen_table, seen_rows, seen_grad in merged:
            if seen_table is not table or not len(rows):
                continue
            pos = torch.searchsorted(seen_rows, rows).clamp_(max=len(seen_rows) - 1)
            both = seen_rows[pos] == rows
            seen_grad.index_add_(0, pos[both], grad[both])
            rows, grad = rows[~both], grad[~both]
        if len(rows):
            merged.append((table, rows, grad))
    return merged


def item_support(sessions: Sessions, n_items: int) -> np.ndarray:
    return np.bincount(sessions.items, minlength=n_items).astype(np.float64)


def shard_sessions(sessions: Sessions, time_sort: bool, rank: int, size: int) -> np.ndarray:
    """The session rows rank ``rank`` of ``size`` trains on.

    Every ``size``-th trainable session (two events or more) in schedule order:
    each shard spans the whole time range and the shards differ by at most one
    session, so the ranks' step counts stay close (the shorter ones idle at the end).
    """
    order = session_order(sessions, time_sort)
    order = order[sessions.lengths[order] >= 2]
    return order[rank::size]


def _schedule_on(sched: Schedule, device: torch.device) -> Schedule:
    return dataclasses.replace(
        sched,
        inputs=sched.inputs.to(device),
        targets=sched.targets.to(device),
        keep=sched.keep.to(device),
        active=sched.active.to(device),
    )


def train(
    sessions: Sessions,
    n_items: int,
    params: GRU4RecParams,
    progress: bool = True,
    on_epoch: Callable[[EpochStats], None] | None = None,
    *,
    validate: Callable[[GRU4Rec], dict[str, float]] | None = None,
    world: World | None = None,
    device: str | torch.device | None = None,
    compile_loss: bool = False,
) -> TrainResult:
    """Train GRU4Rec on ``sessions`` (item rows < ``n_items``); a fixed seed repeats the run.

    ``device`` defaults to the GPU when there is one. ``world`` (default: the
    ``torchrun`` launch, if any) trains data-parallel; ``batch_size`` is then per
    rank and only rank 0 shows progress and calls ``on_epoch``. The epoch figures
    cover all ranks; every rank returns the same model, on the CPU.
    ``compile_loss`` compiles the loss for full mini-batches (once, counted in
    ``setup_seconds``; same values, a faster step: worth it for real runs, not
    for tiny ones).
    ``validate`` scores the model after every epoch (rank 0, outside the epoch's
    timing) into ``EpochStats.metrics``: the epoch curve that lets a search pick
    ``n_epochs`` from one run instead of one run per value.
    """
    t0 = time.perf_counter()
    if world is None:
        world = world_from_env()
    if device is None:
        device = world.device if world is not None else default_device()
    device = torch.device(device)
    rank = world.rank if world is not None else 0
    torch.manual_seed(params.seed)
    generator = torch.Generator().manual_seed(params.seed + rank)
    part = sessions
    if world is not None:
        part = sessions.select(shard_sessions(sessions, params.time_sort, rank, world.size))
    schedule = build_schedule(
        part, params.batch_size, params.time_sort, min_active=1 if params.n_sample else 2
    )
    schedule = _schedule_on(schedule, device)
    support = item_support(sessions, n_items)
    model = GRU4Rec(n_items, params.layers, params.embedding, params.constrained_embedding)
    model.to(device)
    n_steps = schedule.n_steps
    if world is not None:
        broadcast_parameters(model)
        n_steps = max_over_ranks(world, n_steps)
        if rank:  # same initial weights, but each rank its own dropout masks
            torch.manual_seed(params.seed + rank)
    model.train()
    step = TrainStep(model, params, support, world, compile_loss)
    store = sample_store(support, params, generator)
    main = world is None or world.is_main
    result = TrainResult(model=model, params=params, setup_seconds=time.perf_counter() - t0)
    for epoch in range(1, params.n_epochs + 1):
        stats = _run_epoch(
            step, schedule, n_steps, store, epoch, params, progress and main, result.step_losses
        )
        result.epochs.append(stats)
        if validate and main:
            stats.metrics = validate(model)
            model.train()
        if on_epoch and main:
            on_epoch(stats)
    model.eval()
    model.to("cpu")
    return result


def sample_store(
    support: np.ndarray, params: GRU4RecParams, generator: torch.Generator
) -> SampleStore | None:
    """The negative-sample store of ``params`` (None when ``n_sample`` is 0)."""
    if not params.n_sample:
        return None
    return SampleStore(
        support, params.n_sample, params.sample_alpha, params.sample_store, generator
    )


def full_step(
    step: TrainStep,
    sched: Schedule,
    t: int,
    store: SampleStore | None,
    hidden: list[torch.Tensor],
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Step ``t`` of the schedule, a full mini-batch: (loss, new hidden state).

    Resets the slots where a new session starts and appends the shared negatives.
    """
    hidden = [h * sched.keep[t] for h in hidden]
    y = sched.targets[t]
    if store is not None:
        y = torch.cat([y, store.next().to(y.device)])
    return step(sched.inputs[t], y, hidden)


def _run_epoch(
    step: TrainStep,
    sched: Schedule,
    n_steps: int,
    store: SampleStore | None,
    epoch: int,
    params: GRU4RecParams,
    progress: bool,
    step_losses: list[float],
) -> EpochStats:
    """One pass over the schedule; ``n_steps`` beyond its length are idle steps (other ranks)."""
    model = step.model
    device = sched.inputs.device
    hidden = [torch.zeros(params.batch_size, h, device=device) for h in model.layers]
    losses = torch.zeros(n_steps, device=device)
    counts = sched.active.sum(dim=1)
    if n_steps > sched.n_steps:
        counts = torch.cat([counts, counts.new_zeros(n_steps - sched.n_steps)])
    t0, c0 = time.perf_counter(), time.process_time()
    report_every = 200

    def with_samples(targets: torch.Tensor) -> torch.Tensor:
        return targets if store is None else torch.cat([targets, store.next().to(device)])

    with tqdm(
        total=sched.n_events,
        desc=f"epoch {epoch}/{params.n_epochs}",
        unit="ev",
        disable=not progress,
        leave=False,
        mininterval=1.0,
    ) as bar:
        done = 0
        for t in range(n_steps):
            if t >= sched.n_steps:  # this rank's shard is done; the other ranks' steps go on
                step.idle()
            elif t < sched.n_full:
                losses[t], hidden = full_step(step, sched, t, store, hidden)
            else:  # the tail: slots without a session left sit out, the batch shrinks
                hidden = [h * sched.keep[t] for h in hidden]  # reset the slots of new sessions
                rows = sched.active[t].nonzero().view(-1)
                x, y = sched.inputs[t, rows], with_samples(sched.targets[t, rows])
                losses[t], new = step(x, y, [h[rows] for h in hidden])
                for h, n in zip(hidden, new, strict=True):
                    h[rows] = n
            if (t + 1) % report_every == 0 or t + 1 == n_steps:
                k = int(counts[done : t + 1].sum())
                done = t + 1
                elapsed = time.perf_counter() - t0
                bar.update(k)
                bar.set_postfix(
                    loss=f"{float(losses[max(0, t - report_every + 1) : t + 1].mean()):.4f}",
                    evps=f"{bar.n / elapsed:,.0f}",
                )
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    values = losses.cpu().numpy()
    weights = counts.cpu().numpy().astype(np.float64)
    events = sched.n_events
    if step.sync is not None:  # the figures of all ranks: per step, the mean over their rows
        stacked = torch.from_numpy(np.stack([values * weights, weights]))
        weighted, weights = sum_over_ranks(step.sync.world, stacked).numpy()
        values = np.divide(weighted, weights, out=np.zeros_like(weighted), where=weights > 0)
        events = int(weights.sum())
    mean = float((values * weights).sum() / max(weights.sum(), 1))
    if math.isnan(mean):
        raise TrainingDiverged(f"epoch {epoch}: the loss is NaN")
    step_losses.extend(values.tolist())
    return EpochStats(
        epoch=epoch, loss=mean, seconds=seconds, events=events, cpu_seconds=cpu_seconds
    )
