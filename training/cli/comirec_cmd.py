"""``nextitem train <kind>`` for every multi-interest kind of the table of model kinds
(ComiRec-SA, ComiRec-DR, MIND), and their ``nextitem evaluate`` runner."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import typer
from rich.console import Console
from rich.table import Table

from models.comirec import MultiInterestModel
from models.registry import build_model, kind_names, model_kind
from training.checkpoint import CheckpointError, current_version, list_versions, load_checkpoint
from training.cli import train_app
from training.cli.evaluate_cmd import EvaluateArgs
from training.comirec.data import UserSequences, prepare
from training.comirec.evaluate import evaluate_users
from training.comirec.export import as_trained, build, loop_config, split_params
from training.comirec.plots import tradeoff
from training.comirec.train import train
from training.data import load_dataset
from training.distributed import is_main_process
from training.params import ParamError, check_known, read_params
from training.publish import publish
from training.report import record, write_json

console = Console()
#: the multi-interest kinds of the table: each gets ``nextitem train <kind>``
MODELS = kind_names("multi-interest")


def metrics_table(title: str, rows: list[tuple[str, dict[str, float]]]) -> None:
    names = [k for k in rows[0][1] if not k.startswith("ndcg_comirec")]
    table = Table(title=title)
    table.add_column("")
    for n in names:
        table.add_column(n, justify="right")
    for label, m in rows:
        table.add_row(label, *(f"{m[n]:.4f}" for n in names))
    console.print(table)


def run_training(
    kind: str,
    dataset: str,
    split_file: Path | None,
    seed: int,
    params: str,
    out: Path,
    activate: bool,
    json_out: Path | None,
    threads: int,
    min_count: int = 5,
) -> None:
    if threads:
        torch.set_num_threads(threads)
    model_params, loop_params, _ = split_params(read_params(params), kind)
    cfg = loop_config(loop_params, kind, seed)
    t0 = time.perf_counter()
    ds = load_dataset(dataset)
    data = prepare(ds, split_file, seed, min_count=min_count)
    model = build(kind, data.n_items, model_params, seed)
    console.print(f"{kind} on {ds.name}: {data.summary}")

    def on_eval(point: dict[str, Any]) -> None:
        console.print(
            f"iteration {point['iteration']:,}: loss {point['loss']:.4f}, "
            f"valid recall@50 {point['recall@50']:.4f}, hitrate@50 {point['hitrate@50']:.4f}"
        )

    t1 = time.perf_counter()
    result = train(model, data, cfg, on_eval=on_eval)
    if not is_main_process():
        return  # torchrun: rank 0 alone evaluates and writes the checkpoint
    t2 = time.perf_counter()
    test = evaluate_users(model, data, data.split.test)[0]
    t3 = time.perf_counter()
    metrics_table(
        f"{kind} on {ds.name} ({data.summary['split']}), best iteration {result.best_iteration:,}"
        f" of {result.iterations:,}",
        [("valid", result.best_valid), ("test", test)],
    )
    trained = as_trained(kind, model, result, data, cfg, f"{kind} on {ds.name}")
    path = publish(
        trained,
        out,
        activate=activate,
        metrics=test,
        data={"name": ds.name, "sha256": ds.sha256, **data.summary},
        extra={"valid_metrics": result.best_valid},
    )
    console.print(f"checkpoint {path}{' (active)' if activate else ''}")
    if json_out:
        rec = record(
            model=kind,
            dataset=ds,
            protocol="multi-interest",
            params={**model.hyperparameters(), **vars(cfg)},
            metrics=test,
            seconds={"load": t1 - t0, "train": t2 - t1, "evaluate": t3 - t2},
            split=data.summary,
            valid_metrics=result.best_valid,
            training=trained.training,
            checkpoint=str(path),
        )
        write_json(json_out, rec)
        console.print(f"wrote {json_out}")


def _register_train(kind: str) -> None:
    def command(
        dataset: str = typer.Option(..., help="registered name, e.g. ml-1m"),
        split_file: Path | None = typer.Option(None, help="user split TSV (user_id, part)"),
        seed: int = typer.Option(0, help="split seed (without --split-file) and training seed"),
        params: str = typer.Option(
            "", help="k=v,..., a TOML file or a bundled name (model and loop keys)"
        ),
        out: Path = typer.Option(..., help="model directory for the checkpoint"),
        activate: bool = typer.Option(False, help="make the new checkpoint CURRENT"),
        json_out: Path | None = typer.Option(None, "--json", help="write the result record"),
        threads: int = typer.Option(0, help="torch threads (0 = torch default)"),
        min_count: int = typer.Option(
            5,
            min=1,
            help="keep items with this many events and sequences this long (the paper: 5; "
            "1 keeps a shop's whole catalog servable)",
        ),
    ) -> None:
        run_training(
            kind, dataset, split_file, seed, params, out, activate, json_out, threads, min_count
        )

    command.__doc__ = (
        f"Train {kind} with the ComiRec protocol and write a checkpoint. "
        f"{model_kind(kind).description}."
    )
    train_app.command(kind)(command)


for _kind in MODELS:
    _register_train(_kind)


def checkpoint_dir(path: Path) -> Path:
    """A version directory, or a model directory's CURRENT (else newest) version."""
    version = current_version(path) or (list_versions(path) or [None])[-1]
    return path / version if version and not (path / "manifest.json").is_file() else path


def load_model(args: EvaluateArgs) -> tuple[MultiInterestModel, Any]:
    if args.checkpoint is None:
        raise ParamError(f"evaluating {args.model} needs --checkpoint")
    try:
        ck = load_checkpoint(checkpoint_dir(args.checkpoint))
    except CheckpointError as exc:
        raise ParamError(str(exc)) from None
    if ck.kind != args.model:
        raise ParamError(f"{args.checkpoint} holds a {ck.kind} model, not {args.model}")
    try:
        model = build_model(ck.kind, ck.hyperparameters, ck.weights)
    except (TypeError, ValueError, RuntimeError) as exc:  # e.g. an earlier form of the model
        raise ParamError(f"{args.checkpoint}: {exc}") from None
    return model, ck  # type: ignore[return-value]


def same_items(data: UserSequences, ck: Any) -> None:
    ids = ck.items["item_id"].to_numpy()
    if len(ids) != data.n_items or not np.array_equal(ids, data.item_ids):
        raise ParamError("the checkpoint's items do not match this dataset's preprocessing")


def run_evaluation(args: EvaluateArgs) -> dict[str, Any]:
    check_known(args.params, {"plot", "per_interest", "users"}, args.model)
    users_part = str(args.params.get("users", "test"))
    if users_part not in ("test", "valid"):
        raise ParamError("users must be test or valid (pick lambda on valid, report test)")
    t0 = time.perf_counter()
    model, ck = load_model(args)
    ds = load_dataset(args.dataset)
    data = prepare(ds, args.split_file, args.seed)
    same_items(data, ck)
    lambdas = args.lambdas if args.aggregator == "greedy" else (0.0,)
    if args.aggregator == "greedy" and data.categories is None:
        raise ParamError(f"{ds.name} has no item categories: diversity-greedy needs them")
    t1 = time.perf_counter()
    per_interest = int(args.params.get("per_interest", 50))
    users = data.split.test if users_part == "test" else data.split.valid
    results = evaluate_users(model, data, users, lambdas, per_interest=per_interest)
    t2 = time.perf_counter()
    title = f"{args.model} on {ds.name} ({data.summary['split']}), {users_part} users"
    metrics_table(title, [(f"λ={lam:g}", m) for lam, m in zip(lambdas, results, strict=True)])
    sweep = [{"lambda": lam, **m} for lam, m in zip(lambdas, results, strict=True)]
    extra: dict[str, Any] = {
        "checkpoint": str(ck.path),
        "aggregator": args.aggregator,
        "users": users_part,
    }
    if len(sweep) > 1:
        default = f"{args.model}-{ds.name}-lambda-tradeoff.png"
        if args.json_out is not None:  # beside the record, not wherever the command ran
            default = str(args.json_out.with_suffix(".png"))
        plot = Path(args.params.get("plot", default))
        plot.parent.mkdir(parents=True, exist_ok=True)
        tradeoff(sweep, f"{args.model} on {ds.name}: diversity-greedy", plot)
        console.print(f"wrote {plot}")
        extra.update(sweep=sweep, plot=str(plot))
    return record(
        model=args.model,
        dataset=ds,
        protocol="multi-interest",
        params={**ck.hyperparameters, "aggregator": args.aggregator, "lambdas": list(lambdas)},
        metrics=results[0],
        seconds={"load": t1 - t0, "evaluate": t2 - t1},
        split=data.summary,
        **extra,
    )
