"""``nextitem evaluate``: score a model with the next-item protocol."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from models.baselines import ItemKNN, Pop, SessionPop
from training.cli import app
from training.data import load_dataset
from training.evaluation import TIE_MODES, NextItemTask, evaluate_next_item
from training.params import ParamError, check_known, parse_params
from training.report import record, write_json

console = Console()

BASELINES = {
    "pop": (Pop, set()),
    "spop": (SessionPop, set()),
    "itemknn": (ItemKNN, {"alpha", "lmbd", "n_neighbors", "self_similarity"}),
}


def parse_ks(values: list[str]) -> tuple[int, ...]:
    ks = []
    for v in values:
        for piece in v.split(","):
            try:
                ks.append(int(piece))
            except ValueError:
                raise ParamError(f"--k takes whole numbers, got {piece!r}") from None
    if any(k < 1 for k in ks):
        raise ParamError("--k must be at least 1")
    return tuple(sorted(set(ks)))


@app.command()
def evaluate(
    model: str = typer.Option(..., help=f"one of {', '.join(BASELINES)}"),
    dataset: str = typer.Option(..., help="registered name or FORMAT:PATH"),
    k: list[str] = typer.Option(["20"], help="cut-offs, e.g. --k 5,10,20"),
    ties: str = typer.Option("standard", help=f"tie handling: {', '.join(TIE_MODES)}"),
    params: str = typer.Option("", help="model parameters k=v,k=v"),
    train_part: str = typer.Option("train", help="part to fit on"),
    test_part: str = typer.Option("test", help="part to evaluate on"),
    batch_size: int = typer.Option(64, min=1),
    json_out: Path | None = typer.Option(None, "--json", help="write the result record here"),
) -> None:
    """Next-item protocol: every target of the test part ranked against ALL items."""
    if model not in BASELINES:
        raise ParamError(f"unknown model {model!r}; choose one of {', '.join(BASELINES)}")
    if ties not in TIE_MODES:
        raise ParamError(f"unknown tie mode {ties!r}; choose one of {', '.join(TIE_MODES)}")
    ks = parse_ks(k)
    cls, known = BASELINES[model]
    model_params = parse_params(params)
    check_known(model_params, known, model)

    t0 = time.perf_counter()
    ds = load_dataset(dataset)
    if ds.kind != "session":
        raise ParamError(f"{dataset} is {ds.kind} data; the next-item protocol needs session data")
    t1 = time.perf_counter()
    train = ds.part(train_part)
    scorer = cls(**model_params).fit(train.items, train.offsets, ds.n_items)
    t2 = time.perf_counter()
    task = NextItemTask.from_dataset(ds, test_part)
    metrics, eval_seconds = evaluate_next_item(
        scorer, task, ks=ks, ties=ties, batch_size=batch_size
    )

    table = Table(
        title=f"{model} on {ds.name} ({len(task):,} predictions, {ds.n_items:,} items, ties {ties})"
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        table.add_row(name, f"{value:.4f}")
    console.print(table)
    if json_out:
        rec = record(
            model=model,
            dataset=ds,
            protocol="next-item",
            params={**model_params, "ties": ties, "k": list(ks)},
            metrics=metrics,
            seconds={"load": t1 - t0, "fit": t2 - t1, "evaluate": eval_seconds},
            split={"train": train_part, "test": test_part, "predictions": len(task)},
        )
        write_json(json_out, rec)
        console.print(f"wrote {json_out}")
