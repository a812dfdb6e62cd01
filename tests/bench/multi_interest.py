"""Speed of the multi-interest models by number of interests K (ComiRec-SA, ComiRec-DR, MIND).

Run as ``python -m tests.bench.multi_interest [--model comirec-sa] [--dataset ml-1m]
[options]`` on an otherwise idle machine (see ``tests/bench/README.md``). For each K:
training samples/s over timed iterations (after 5 warm-up steps), and the median
time to serve one test user the way the service does (incremental state, its K
query vectors against every item, top 50, then max-score or diversity-greedy).
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import typer
from rich.console import Console
from rich.table import Table

from models.aggregators import diversity_greedy, max_score
from models.comirec import MultiInterestConfig, MultiInterestModel
from models.registry import kind_names, model_kind
from tests.bench.program import program, run
from training.comirec.data import TrainingSampler, UserSequences, prepare
from training.comirec.evaluate import holdout_prefixes
from training.comirec.train import TrainConfig, log_uniform_probabilities, training_loss
from training.data import load_dataset
from training.params import ParamError
from training.report import record, write_json

console = Console()
app = program()
MODELS = kind_names("multi-interest")


def build(kind: str, n_items: int, n_interests: int, max_len: int, seed: int) -> MultiInterestModel:
    """An untrained model of ``kind`` with K interests over windows of ``max_len`` clicks."""
    try:
        config = MultiInterestConfig(
            n_items=n_items, seed=seed, n_interests=n_interests, max_len=max_len
        )
    except (TypeError, ValueError) as exc:
        raise ParamError(f"{kind}: {exc}") from None
    return model_kind(kind).model_class()(config)


@app.command()
def bench_multi_interest(
    model: str = typer.Option("comirec-sa", help=", ".join(MODELS)),
    dataset: str = typer.Option("ml-1m"),
    split_file: Path | None = typer.Option(None),
    seed: int = typer.Option(0),
    interests: str = typer.Option("1,4,8", help="values of K to compare"),
    max_len: int = typer.Option(50),
    batch_size: int = typer.Option(128),
    loss: str = typer.Option("full", help="sampled | full"),
    iterations: int = typer.Option(100, help="timed training iterations per K"),
    users: int = typer.Option(300, help="test users timed one at a time"),
    lam: float = typer.Option(0.1, "--lambda", help="diversity-greedy weight"),
    threads: int = typer.Option(1),
    json_out: Path | None = typer.Option(None, "--json"),
) -> None:
    """Training samples/s and one user's retrieve + aggregate time (median µs) for several K."""
    torch.set_num_threads(threads)
    if model not in MODELS:
        raise ParamError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    ds = load_dataset(dataset)
    data = prepare(ds, split_file, seed)
    cats = data.categories if data.categories is not None else np.full(data.n_items, -1)
    ks = [int(k) for k in interests.split(",")]
    cfg = TrainConfig(batch_size=batch_size, loss=loss, seed=seed)  # type: ignore[arg-type]
    load = os.getloadavg()
    console.print(
        f"setup: {model} on {ds.name} ({data.n_items:,} items), L={max_len}, batch {batch_size},"
        f" {loss} softmax, torch {torch.__version__}, {threads} thread(s), load {load[0]:.2f}"
    )
    rows = []
    for k in ks:
        m = build(model, data.n_items, k, max_len, seed)
        rows.append({"K": k, **_bench_one(m, data, cfg, cats, iterations, users, lam)})
    table = Table(title=f"{model} on {ds.name}: speed by number of interests")
    for col in rows[0]:
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(*(f"{v:,.1f}" if isinstance(v, float) else str(v) for v in r.values()))
    console.print(table)
    if json_out:
        rec = record(
            model=model,
            dataset=ds,
            protocol="benchmark",
            params={"max_len": max_len, "batch_size": batch_size, "loss": loss, "lambda": lam},
            metrics={},
            seconds={},
            split=data.summary,
            bench=rows,
            load_average=list(load),
        )
        write_json(json_out, rec)
        console.print(f"wrote {json_out}")


def _bench_one(
    model: MultiInterestModel,
    data: UserSequences,
    cfg: TrainConfig,
    cats: np.ndarray,
    iterations: int,
    users: int,
    lam: float,
) -> dict[str, float]:
    sampler = TrainingSampler(data.sequences, data.split.train, model.config.max_len, cfg.seed)
    probs = log_uniform_probabilities(data.n_items)
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    model.train()
    spent = 0.0
    for it in range(iterations + 5):  # 5 warm-up steps
        inputs, targets = (torch.from_numpy(a) for a in sampler.batch(cfg.batch_size))
        t0 = time.perf_counter()
        loss = training_loss(model, inputs, targets, cfg, probs, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if it >= 5:
            spent += time.perf_counter() - t0
    model.eval()
    prefix, _ = holdout_prefixes(data, data.split.test, model.config.max_len)
    items = model.item_vectors().detach()
    t_max, t_greedy = [], []
    with torch.no_grad():
        for row in prefix[:users]:
            state = model.init_state()
            for item in row[row >= 0]:
                state = model.step(state, int(item))
            for times, aggregate in ((t_max, False), (t_greedy, True)):
                t0 = time.perf_counter()
                scores = model.interests(state) @ items.T
                top = torch.topk(scores, 50, dim=1)
                s, i = top.values.numpy(), top.indices.numpy()
                if aggregate:
                    diversity_greedy(s, i, 50, cats, lam)
                else:
                    max_score(s, i, 50)
                times.append(time.perf_counter() - t0)
    return {
        "train samples/s": iterations * cfg.batch_size / spent,
        "retrieve+max-score µs (median)": statistics.median(t_max) * 1e6,
        f"retrieve+greedy λ={lam:g} µs (median)": statistics.median(t_greedy) * 1e6,
    }


if __name__ == "__main__":
    run(app)
