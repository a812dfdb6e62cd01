"""``nextitem train comirec-sa|comirec-dr|mind``, their ``evaluate`` runners, and
``nextitem bench multi-interest`` (training throughput and per-user retrieval latency)."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import typer
from rich.console import Console
from rich.table import Table

from models.aggregators import diversity_greedy, max_score
from models.comirec import ComiRecDR, ComiRecSA, MultiInterestConfig, MultiInterestModel
from models.mind import MIND
from models.registry import build_model
from training.checkpoint import (
    CheckpointError,
    current_version,
    list_versions,
    load_checkpoint,
    set_current,
    write_checkpoint,
)
from training.cli import bench_app, train_app
from training.cli.evaluate_cmd import EvaluateArgs, register_runner
from training.comirec.data import UserSequences, prepare
from training.comirec.evaluate import evaluate_users, holdout_prefixes
from training.comirec.plots import tradeoff, training_curve
from training.comirec.train import TrainConfig, log_uniform_probabilities, train, training_loss
from training.data import load_dataset
from training.distributed import is_main_process
from training.params import ParamError, check_known, parse_params
from training.report import record, write_json

console = Console()
MODELS: dict[str, type[MultiInterestModel]] = {
    cls.kind: cls for cls in (ComiRecSA, ComiRecDR, MIND)
}
MODEL_KEYS = MultiInterestConfig.names() - {"n_items", "seed"}
TRAIN_KEYS = TrainConfig.names() - {"seed"}


def split_params(params: dict[str, Any], kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
    check_known(params, MODEL_KEYS | TRAIN_KEYS, kind)
    model = {k: v for k, v in params.items() if k in MODEL_KEYS}
    loop = {k: v for k, v in params.items() if k in TRAIN_KEYS}
    return model, loop


def build(kind: str, n_items: int, model_params: dict[str, Any], seed: int) -> MultiInterestModel:
    try:
        return MODELS[kind](MultiInterestConfig(n_items=n_items, seed=seed, **model_params))
    except (TypeError, ValueError) as exc:
        raise ParamError(f"{kind}: {exc}") from None


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
    model_params, loop_params = split_params(parse_params(params), kind)
    try:
        cfg = TrainConfig(seed=seed, **loop_params)
    except (TypeError, ValueError) as exc:
        raise ParamError(f"{kind}: {exc}") from None
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
    training = {
        "iterations": result.iterations,
        "best_iteration": result.best_iteration,
        "stopped": result.stopped,
        "samples_per_second": result.samples_per_second,
        "config": vars(cfg),
        "curve": result.curve,
    }
    with tempfile.TemporaryDirectory() as tmp:
        png = training_curve(result.curve, f"{kind} on {ds.name}", Path(tmp) / "training_curve.png")
        path = write_checkpoint(
            out,
            kind,
            model.hyperparameters(),
            model.checkpoint_weights(),
            item_ids=data.item_ids,
            popularity=data.popularity,
            categories=data.categories,
            metrics=test,
            data={"name": ds.name, "sha256": ds.sha256, **data.summary},
            extra={"training": training, "valid_metrics": result.best_valid},
            attachments={"training_curve.png": png},
        )
    if activate:
        set_current(out, path.name)
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
            training=training,
            checkpoint=str(path),
        )
        write_json(json_out, rec)
        console.print(f"wrote {json_out}")


def _register_train(kind: str) -> None:
    def command(
        dataset: str = typer.Option(..., help="registered name, e.g. ml-1m"),
        split_file: Path | None = typer.Option(None, help="user split TSV (user_id, part)"),
        seed: int = typer.Option(0, help="split seed (without --split-file) and training seed"),
        params: str = typer.Option("", help="k=v,... or a TOML file (model and loop keys)"),
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

    command.__doc__ = f"Train {kind} with the ComiRec protocol and write a checkpoint."
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


for _kind in MODELS:
    register_runner(_kind, run_evaluation)


@bench_app.command("multi-interest")
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
    import os

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
        m = build(model, data.n_items, {"n_interests": k, "max_len": max_len}, seed)
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
    from training.comirec.data import TrainingSampler

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
