"""``nextitem train <kind>`` for every attention kind of the table of model kinds (SASRec, ...).

User-sequence data (the Amazon sets, or any ``amazon-seq:PATH``) is split
leave-one-out and ranked without each user's earlier items, as the papers do;
session data (e.g. diginetica) trains on its training sessions and ranks the
published test prefixes against all items. Both rankings are reported either
way; the record's ``metrics`` are the protocol's own.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
import typer
from rich.console import Console
from rich.table import Table

from models.registry import kind_names, model_kind
from training.attention.data import prepare
from training.attention.evaluate import evaluate
from training.attention.export import as_trained, build, loop_config, split_params
from training.attention.train import train
from training.cli import train_app
from training.data import load_dataset
from training.params import read_params
from training.publish import publish
from training.report import record, write_json

console = Console()
#: the attention kinds of the table: each gets ``nextitem train <kind>``
MODELS = kind_names("attention")
SHOWN = ("hitrate@5", "hitrate@10", "hitrate@20", "ndcg@5", "ndcg@10", "ndcg@20", "mrr@20")


def metrics_table(title: str, rows: list[tuple[str, dict[str, float]]]) -> None:
    table = Table(title=title)
    table.add_column("")
    for n in SHOWN:
        table.add_column(n, justify="right")
    for label, m in rows:
        table.add_row(label, *(f"{m[n]:.4f}" for n in SHOWN))
    console.print(table)


def run_training(
    kind: str,
    dataset: str,
    seed: int,
    params: str,
    out: Path,
    activate: bool,
    json_out: Path | None,
    threads: int,
) -> None:
    if threads:
        torch.set_num_threads(threads)
    model_params, loop_params, _ = split_params(read_params(model_kind(kind).params, params), kind)
    cfg = loop_config(loop_params, kind, seed)
    t0 = time.perf_counter()
    ds = load_dataset(dataset)
    data = prepare(ds, seed)
    model = build(kind, data.n_items, model_params, seed)
    console.print(f"{kind} on {ds.name}: {data.summary}, loss {cfg.loss}")

    def on_eval(point: dict[str, Any]) -> None:
        console.print(
            f"epoch {point['epoch']}: loss {point['loss']:.4f}, valid "
            f"hitrate@10 {point['hitrate@10']:.4f} ndcg@10 {point['ndcg@10']:.4f} "
            f"({point['seconds']:.0f} s)"
        )

    t1 = time.perf_counter()
    result = train(model, data, cfg, on_eval=on_eval)
    t2 = time.perf_counter()
    all_items, unseen = evaluate(model, data.test)  # the test set, read once
    t3 = time.perf_counter()
    if not data.remove_seen:  # the next-item protocol's names (Recall@k = HitRate@k here)
        all_items.update({f"recall@{k}": all_items[f"hitrate@{k}"] for k in (5, 10, 20)})
    test = unseen if data.remove_seen else all_items
    ranking = "seen items removed" if data.remove_seen else "all items"
    metrics_table(
        f"{kind} on {ds.name} ({data.protocol}), best epoch {result.best_epoch} of "
        f"{result.epochs}; valid: {ranking}",
        [
            ("valid", result.best_valid),
            ("test, all items", all_items),
            ("test, seen removed", unseen),
        ],
    )
    trained = as_trained(kind, model, result, data, cfg, f"{kind} on {ds.name}")
    path = publish(
        trained,
        out,
        activate=activate,
        metrics=test,
        data={"name": ds.name, "sha256": ds.sha256, **data.summary},
        extra={"valid_metrics": result.best_valid, "ranking": ranking},
    )
    console.print(f"checkpoint {path}{' (active)' if activate else ''}")
    if json_out:
        rec = record(
            model=kind,
            dataset=ds,
            protocol=data.protocol,
            params={**model.hyperparameters(), **vars(cfg)},
            metrics=test,
            seconds={"load": t1 - t0, "train": t2 - t1, "evaluate": t3 - t2},
            split=data.summary,
            ranking=ranking,
            metrics_all_items=all_items,
            metrics_seen_removed=unseen,
            valid_metrics=result.best_valid,
            training=trained.training,
            checkpoint=str(path),
        )
        write_json(json_out, rec)
        console.print(f"wrote {json_out}")


def _register_train(kind: str) -> None:
    def command(
        dataset: str = typer.Option(
            ..., help="registered name (amazon-beauty, diginetica, ...) or amazon-seq:PATH"
        ),
        seed: int = typer.Option(42, help="training seed (and the session validation sample)"),
        params: str = typer.Option(
            "", help="k=v,..., a TOML file or a bundled name, over the kind's defaults"
        ),
        out: Path = typer.Option(..., help="model directory for the checkpoint"),
        activate: bool = typer.Option(False, help="make the new checkpoint CURRENT"),
        json_out: Path | None = typer.Option(None, "--json", help="write the result record"),
        threads: int = typer.Option(0, help="torch threads (0 = torch default)"),
    ) -> None:
        run_training(kind, dataset, seed, params, out, activate, json_out, threads)

    command.__doc__ = (
        f"Train {kind} (leave-one-out on user sequences, next-item on sessions) and write a "
        f"checkpoint. {model_kind(kind).description}."
    )
    train_app.command(kind)(command)


for _kind in MODELS:
    _register_train(_kind)
