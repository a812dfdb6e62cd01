"""Time variants of the training step side by side, in one process, in alternating chunks.

Part of the GRU4Rec speed benchmark: ``python -m tests.bench.gru4rec_speed
--ab-optimizer N`` runs the optimizer's kernels against PyTorch's ops this way.

Why: on a shared machine a whole-epoch rate drifts by 10 to 20% from one run to
the next, more than most changes to a step gain. Running the variants in turn,
a few dozen steps each, on the same full mini-batches, puts the drift on all of
them alike, so their ratio holds where their separate runs would not. Each
variant trains its own model from the same initial weights, on the CPU (the
kernels it compares are CPU code); the order within a round alternates, so no
variant always runs first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from models.gru4rec import GRU4Rec
from training.data.sessions import Sessions
from training.gru4rec.batching import build_schedule
from training.gru4rec.params import GRU4RecParams
from training.gru4rec.sampling import SampleStore
from training.gru4rec.train import TrainStep, full_step, item_support, sample_store

# A variant adjusts a freshly built step (e.g. switches its optimizer to PyTorch's ops).
Variant = Callable[[TrainStep], None]


@dataclass(frozen=True)
class VariantRate:
    name: str
    steps: int
    seconds: float
    batch_size: int

    @property
    def events_per_second(self) -> float:
        return self.steps * self.batch_size / self.seconds


@dataclass
class _Run:
    """One variant's own model, step, sample store and carried state."""

    name: str
    step: TrainStep
    store: SampleStore | None
    hidden: list[torch.Tensor]
    t: int = 0


def optimizer_variants() -> dict[str, Variant]:
    """The optimizer's one-pass kernels against PyTorch's ops (the GPU path)."""

    def torch_ops(step: TrainStep) -> None:
        step.opt.fused = False

    return {"kernels": lambda step: None, "torch-ops": torch_ops}


def interleaved_rates(
    sessions: Sessions,
    n_items: int,
    params: GRU4RecParams,
    variants: dict[str, Variant],
    *,
    steps: int = 600,
    chunk: int = 50,
    warmup: int = 20,
    compile_loss: bool = True,
) -> list[VariantRate]:
    """Events/s of each variant over ``steps`` full mini-batches, in chunks of ``chunk``."""
    if steps < 1 or chunk < 1:
        raise ValueError("steps and chunk must be at least 1")
    schedule = build_schedule(sessions, params.batch_size, params.time_sort, min_active=1)
    if schedule.n_full < warmup + steps:
        raise ValueError(
            f"{schedule.n_full} full mini-batches, {warmup + steps} needed "
            "(fewer steps, or more sessions)"
        )
    support = item_support(sessions, n_items)
    runs: list[_Run] = []
    for name, adjust in variants.items():
        torch.manual_seed(params.seed)
        model = GRU4Rec(n_items, params.layers, params.embedding, params.constrained_embedding)
        model.train()
        step = TrainStep(model, params, support, compile_loss=compile_loss)
        adjust(step)
        store = sample_store(support, params, torch.Generator().manual_seed(params.seed))
        hidden = [torch.zeros(params.batch_size, h) for h in model.layers]
        runs.append(_Run(name, step, store, hidden))

    def advance(run: _Run, n: int) -> None:
        for _ in range(n):
            _, run.hidden = full_step(run.step, schedule, run.t, run.store, run.hidden)
            run.t += 1

    for run in runs:
        advance(run, warmup)
    seconds = dict.fromkeys(variants, 0.0)
    done = 0
    while done < steps:
        n = min(chunk, steps - done)
        order = runs if (done // chunk) % 2 == 0 else runs[::-1]
        for run in order:
            t0 = time.perf_counter()
            advance(run, n)
            seconds[run.name] += time.perf_counter() - t0
        done += n
    return [VariantRate(name, steps, seconds[name], params.batch_size) for name in variants]
