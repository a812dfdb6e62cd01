"""GRU4Rec training speed and reproduction runs on the shared datasets (``-m bench`` / ``-m slow``).

The benchmark times our train step against a baseline measured in the same
run: the same algorithm written the straightforward way the official PyTorch
port does it (``nn.Embedding(sparse=True)`` tables, sparse gradients coalesced
by the optimizer, per-step index tensors built from numpy). The reproduction
runs check accuracy parity with the official figures (same parameters).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn

from models.gru4rec import GRU4Rec
from models.gru4rec_loss import sampled_loss
from tests.conftest import needs_shared_data
from training.data import load_dataset
from training.evaluation import NextItemTask
from training.gru4rec.batching import Schedule, build_schedule
from training.gru4rec.evaluate import evaluate_sessions
from training.gru4rec.params import GRU4RecParams, load_params
from training.gru4rec.sampling import SampleStore
from training.gru4rec.train import TrainStep, item_support, train


class _SparseBaseline(nn.Module):
    """Shared-embedding GRU4Rec with sparse embedding gradients (the official layout)."""

    def __init__(self, n_items: int, hidden: int) -> None:
        super().__init__()
        self.Wy = nn.Embedding(n_items, hidden, sparse=True)
        self.By = nn.Embedding(n_items, 1, sparse=True)
        nn.init.zeros_(self.By.weight)
        self.cell = nn.GRUCell(hidden, hidden)


Step = Callable[[np.ndarray, torch.Tensor, torch.Tensor], torch.Tensor]


def _baseline_step(n_items: int, p: GRU4RecParams) -> Step:
    model = _SparseBaseline(n_items, p.layers[0])
    state = {q: (torch.zeros_like(q), torch.zeros_like(q)) for q in model.parameters()}

    def step(x_np: np.ndarray, y: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        x = torch.tensor(x_np)
        model.zero_grad()
        e = model.Wy(torch.cat([x, y]))
        h = model.cell(nn.functional.dropout(e[: len(x)], p.dropout_p_embed), hidden)
        hidden = nn.functional.dropout(h, p.dropout_p_hidden)
        scores = hidden @ e[len(x) :].T + model.By(y).T
        loss = sampled_loss(p.loss, scores, final_act=p.activation, bpreg=p.bpreg) / p.batch_size
        loss.backward()
        with torch.no_grad():
            for q in model.parameters():
                acc, mom = state[q]
                g = q.grad
                if g.is_sparse:
                    g = g.coalesce()
                    idx, val = g._indices()[0], g._values()
                    a = acc[idx] + val * val
                    acc.index_copy_(0, idx, a)
                    m = mom[idx] * p.momentum - p.learning_rate * val / (a + 1e-6).sqrt()
                    mom.index_copy_(0, idx, m)
                    q.index_add_(0, idx, m)
                else:
                    acc.add_(g * g)
                    mom.mul_(p.momentum).addcdiv_(g, (acc + 1e-6).sqrt(), value=-p.learning_rate)
                    q.add_(mom)
        return hidden.detach()

    return step


def _ours_step(n_items: int, p: GRU4RecParams, support: np.ndarray) -> Step:
    model = GRU4Rec(n_items, p.layers, p.embedding, p.constrained_embedding).train()
    inner = TrainStep(model, p, support)

    def step(x_np: np.ndarray, y: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        return inner(torch.from_numpy(x_np), y, [hidden])[1][0]

    return step


def _events_per_second(
    step: Step, sched: Schedule, store: SampleStore, p: GRU4RecParams, steps: int
) -> float:
    """Time the same full-batch steps of the schedule (the first 10 are warm-up)."""
    inputs, targets = sched.inputs.numpy(), sched.targets
    hidden = torch.zeros(p.batch_size, p.layers[0])
    start = time.perf_counter()
    for t in range(steps + 10):
        if t == 10:
            start = time.perf_counter()
        y = torch.cat([targets[t], store.next()])
        hidden = step(inputs[t], y, hidden * sched.keep[t])
    return steps * p.batch_size / (time.perf_counter() - start)


@needs_shared_data
@pytest.mark.bench
@pytest.mark.parametrize(
    "dataset,params",
    [
        ("diginetica", "diginetica_bprmax_shared_best,layers=[100]"),
        ("yoochoose-100k", "yoochoose_xe_shared_best"),
        ("diginetica", "diginetica_bprmax_shared_best"),
    ],
)
def test_bench_train_step_against_sparse_baseline(dataset: str, params: str) -> None:
    file, _, override = params.partition(",")
    p = load_params(file, override)
    ds = load_dataset(dataset)
    sessions = ds.part("train")
    sched = build_schedule(sessions, p.batch_size)
    support = item_support(sessions, ds.n_items)
    steps = 200
    rates = {}
    for name, make in [
        ("baseline", lambda: _baseline_step(ds.n_items, p)),
        ("ours", lambda: _ours_step(ds.n_items, p, support)),
    ]:
        torch.manual_seed(0)
        store = SampleStore(support, p.n_sample, p.sample_alpha, (steps + 10) * p.n_sample)
        rates[name] = _events_per_second(make(), sched, store, p, steps)
    print(
        f"\n{dataset} layers={list(p.layers)} batch={p.batch_size} n_sample={p.n_sample} "
        f"threads={torch.get_num_threads()} torch={torch.__version__} "
        f"load={os.getloadavg()[0]:.1f}: ours {rates['ours']:,.0f} ev/s, sparse baseline "
        f"{rates['baseline']:,.0f} ev/s, ratio {rates['ours'] / rates['baseline']:.2f}x"
    )
    assert rates["ours"] > rates["baseline"]


OFFICIAL = {  # Recall@20, MRR@20 of the official PyTorch code on these files (issue 3)
    "yoochoose": (0.6217, 0.3017),
    "diginetica-100": (0.4740, 0.1467),
    "diginetica-512": (0.5409, 0.1823),
}


def _parity(dataset: str, params: GRU4RecParams, official: tuple[float, float]) -> None:
    ds = load_dataset(dataset)
    result = train(ds.part("train"), ds.n_items, params, progress=False)
    metrics, _ = evaluate_sessions(result.model, NextItemTask.from_dataset(ds), progress=False)
    print(f"\n{dataset}: {metrics} (official {official})")
    assert metrics["recall@20"] >= 0.98 * official[0]
    assert metrics["mrr@20"] >= 0.98 * official[1]


@needs_shared_data
@pytest.mark.slow
def test_parity_yoochoose_xe_shared_best() -> None:
    _parity("yoochoose-100k", load_params("yoochoose_xe_shared_best"), OFFICIAL["yoochoose"])


@needs_shared_data
@pytest.mark.slow
def test_parity_diginetica_bprmax_100_units_3_epochs() -> None:
    p = load_params("diginetica_bprmax_shared_best", "layers=[100],n_epochs=3")
    _parity("diginetica", p, OFFICIAL["diginetica-100"])


@needs_shared_data
@pytest.mark.slow
def test_parity_diginetica_bprmax_shared_best() -> None:
    p = load_params("diginetica_bprmax_shared_best")
    _parity("diginetica", p, OFFICIAL["diginetica-512"])
