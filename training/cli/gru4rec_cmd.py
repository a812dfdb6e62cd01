"""``nextitem train gru4rec`` and ``nextitem tune gru4rec``."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch
import typer
from rich.console import Console
from rich.table import Table

from training.cli import train_app, tune_app
from training.data import load_dataset
from training.evaluation import TIE_MODES
from training.gru4rec.params import GRU4RecParams, load_params
from training.gru4rec.train import EpochStats
from training.params import ParamError, bundled_names, read_params
from training.report import record, write_json

console = Console()
PARAMS_HELP = (
    "parameter file (.toml), bundled name (" + ", ".join(bundled_names()) + ") or k=v,k=v; "
    "repeat to override left to right"
)


def parse_ks(values: list[str]) -> tuple[int, ...]:
    try:
        ks = {int(piece) for v in values for piece in v.split(",")}
    except ValueError:
        raise ParamError(f"--k takes whole numbers, got {values!r}") from None
    if not ks or min(ks) < 1:
        raise ParamError("--k must be at least 1")
    return tuple(sorted(ks))


def _threads(threads: int) -> None:
    if threads > 0:
        torch.set_num_threads(threads)


def setup_table(title: str, ds_name: str, n_items: int, params: GRU4RecParams) -> Table:
    """The setup a training rate is printed beside (shapes, threads, versions, machine load)."""
    table = Table(title=title)
    table.add_column("setting")
    table.add_column("value", justify="right")
    for name, value in [
        ("dataset", ds_name),
        ("items", f"{n_items:,}"),
        ("loss", params.loss),
        ("layers", str(list(params.layers))),
        ("batch_size", str(params.batch_size)),
        ("n_sample", str(params.n_sample)),
        (
            "embedding",
            "shared" if params.constrained_embedding else str(params.embedding or "one-hot"),
        ),
        ("threads", str(torch.get_num_threads())),
        ("torch", torch.__version__),
        ("python", platform.python_version()),
        ("cpu", platform.processor() or platform.machine()),
        ("cores", str(os.cpu_count())),
        ("load avg (1 min)", f"{os.getloadavg()[0]:.2f}"),
    ]:
        table.add_row(name, value)
    return table


def _epoch_line(stats: EpochStats) -> None:
    console.print(
        f"epoch {stats.epoch}: loss {stats.loss:.6f}  {stats.seconds:.1f}s  "
        f"[bold]{stats.events_per_second:,.0f} events/s[/] "
        f"({stats.events_per_cpu_second:,.0f} per CPU-second)  load {os.getloadavg()[0]:.2f}"
    )


@train_app.command("gru4rec")
def train_gru4rec(
    dataset: str = typer.Option(..., help="registered name or FORMAT:PATH"),
    params: list[str] = typer.Option([], help=PARAMS_HELP),
    out: Path = typer.Option(..., help="model directory; the checkpoint goes to OUT/<version>/"),
    activate: bool = typer.Option(False, help="make the new checkpoint the CURRENT one"),
    json_out: Path | None = typer.Option(None, "--json", help="write the result record here"),
    seed: int | None = typer.Option(None, help="overrides the parameters' seed"),
    train_part: str = typer.Option("train"),
    test_part: str = typer.Option("test", help="part to evaluate on ('' to skip)"),
    k: list[str] = typer.Option(["20"], help="cut-offs, e.g. --k 5,10,20"),
    ties: str = typer.Option("standard", help=f"tie handling: {', '.join(TIE_MODES)}"),
    threads: int = typer.Option(0, help="torch threads (0: torch's default)"),
    progress: bool = typer.Option(True, help="progress bars"),
    compile_loss: bool = typer.Option(
        True, "--compile/--no-compile", help="compile the loss (about 20 s once; a faster step)"
    ),
    by_repeat: bool = typer.Option(
        False,
        "--by-repeat",
        help="also report the metrics over re-clicked targets (_repeat) and new ones (_new)",
    ),
) -> None:
    """Train GRU4Rec, evaluate it (next-item, all items) and write a servable checkpoint."""
    from training.distributed import world_from_env
    from training.gru4rec.export import export_model
    from training.gru4rec.train import train

    if ties not in TIE_MODES:
        raise ParamError(f"unknown tie mode {ties!r}; choose one of {', '.join(TIE_MODES)}")
    ks = parse_ks(k)
    _threads(threads)
    p = load_params(*params)
    if seed is not None:
        p = p.replace(seed=seed)
    ds = load_dataset(dataset)
    world = world_from_env()
    if world is not None and not world.is_main:
        # torchrun rank > 0: train its shard beside rank 0, which evaluates and writes
        train(
            ds.part(train_part),
            ds.n_items,
            p,
            progress=False,
            world=world,
            compile_loss=compile_loss,
        )
        return
    console.print(setup_table("train gru4rec", ds.name, ds.n_items, p))
    exported = export_model(
        ds,
        out,
        p,
        train_part=train_part,
        test_part=test_part or None,
        activate=activate,
        ks=ks,
        ties=ties,  # type: ignore[arg-type]
        progress=progress,
        on_epoch=_epoch_line,
        compile_loss=compile_loss,
        by_repeat=by_repeat,
    )
    result = exported.result
    events = sum(e.events for e in result.epochs)
    seconds = sum(e.seconds for e in result.epochs)
    rate = events / seconds if seconds else float("nan")
    table = Table(title=f"GRU4Rec on {ds.name} (ties {ties})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in exported.metrics.items():
        table.add_row(name, f"{value:.4f}")
    table.add_row("training events/s", f"{rate:,.0f}")
    console.print(table)
    console.print(f"checkpoint {exported.path}" + (" (CURRENT)" if activate else ""))
    if json_out:
        rec = record(
            model="gru4rec",
            dataset=ds,
            protocol="next-item",
            params={**p.to_dict(), "ties": ties, "k": list(ks)},
            metrics=exported.metrics,
            seconds=exported.seconds,
            split={"train": train_part, "test": test_part or None},
            training={
                "events_per_second": rate,
                "epochs": [e.summary() for e in result.epochs],
                "load_avg": os.getloadavg()[0],
            },
            checkpoint=str(exported.path),
        )
        write_json(json_out, rec)
        console.print(f"wrote {json_out}")


@tune_app.command("gru4rec")
def tune_gru4rec(
    dataset: str = typer.Option(..., help="registered name or FORMAT:PATH"),
    space: str = typer.Option("gru4rec_bprmax", help="space file or bundled name"),
    fixed: list[str] = typer.Option([], help=PARAMS_HELP + " (fixed during the search)"),
    trials: int = typer.Option(50, min=1, help="trials in all, queued ones included"),
    enqueue: list[str] = typer.Option(
        [],
        help="k=v,... a point of the space to try first (e.g. the published best); repeat",
    ),
    metric: str = typer.Option("recall@20", help="recall@20 or mrr@20"),
    prune_after: int = typer.Option(
        0,
        min=0,
        help="from this epoch on, stop a trial whose best so far is below the median of "
        "completed trials at that epoch (0: never)",
    ),
    storage: str | None = typer.Option(
        None, help="Optuna storage URL (sqlite:///tune.db): saves every epoch, resumes by name"
    ),
    study_name: str | None = typer.Option(None, help="study to create or resume in --storage"),
    seed: int = typer.Option(42, help="sampler and training seed"),
    valid_fraction: float = typer.Option(0.1, help="tail of train held out when no valid part"),
    threads: int = typer.Option(0, help="torch threads (0: torch's default)"),
    json_out: Path | None = typer.Option(None, "--json", help="write the result record here"),
    compile_loss: bool = typer.Option(
        True, "--compile/--no-compile", help="compile the loss (about 20 s once; a faster step)"
    ),
) -> None:
    """Optuna search on a validation split carved from the training data (never the test set)."""
    import optuna

    from training.gru4rec.tune import (
        check_enqueued,
        load_space,
        make_study,
        plot_validation_curves,
        tune,
    )

    if metric not in ("recall@20", "mrr@20"):
        raise ParamError("--metric must be recall@20 or mrr@20")
    _threads(threads)
    dims = load_space(space)
    fixed_params: dict = {}
    for spec in fixed:
        fixed_params.update(read_params(spec) if "=" in spec else load_params(spec).to_dict())
    fixed_params.setdefault("seed", seed)
    for d in dims:
        fixed_params.pop(d.name, None)
    points = [read_params(spec) for spec in enqueue]
    check_enqueued(dims, points)  # before the dataset loads: a typo fails at once
    ds = load_dataset(dataset)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def epoch_line(number: int, stats: EpochStats) -> None:
        console.print(
            f"  trial {number} epoch {stats.epoch}: loss {stats.loss:.4f}  "
            f"{stats.events_per_second:,.0f} events/s  valid recall@20 "
            f"{stats.metrics['recall@20']:.4f} mrr@20 {stats.metrics['mrr@20']:.4f}"
        )

    def show(number: int, values: dict, metrics: dict) -> None:
        shown = ", ".join(f"{k}={v}" for k, v in values.items())
        console.print(
            f"trial {number}: recall@20 {metrics['recall@20']:.4f} "
            f"mrr@20 {metrics['mrr@20']:.4f}  ({shown})"
        )

    t0 = time.perf_counter()
    study, how = tune(
        ds,
        dims,
        fixed_params,
        trials,
        metric,
        seed,
        valid_fraction,
        show,
        compile_loss,
        enqueue=points,
        on_epoch=epoch_line,
        study=make_study(seed, prune_after, storage, study_name),
    )
    states = [t.state for t in study.trials]
    pruned = states.count(optuna.trial.TrialState.PRUNED)
    console.print(f"validation: {how}; trials: {len(states)}, pruned {pruned}")
    if optuna.trial.TrialState.COMPLETE not in states:
        raise ParamError("no trial completed, so there is no best one")
    best = {
        **fixed_params,
        **study.best_params,
        "n_epochs": study.best_trial.user_attrs["n_epochs"],
    }
    console.print(
        f"best {metric} {study.best_value:.4f} at epoch {best['n_epochs']}: "
        f"{json.dumps(study.best_params)}"
    )
    if json_out:
        rec = record(
            model="gru4rec",
            dataset=ds,
            protocol="next-item (validation)",
            params=best,
            metrics=study.best_trial.user_attrs["metrics"],
            seconds={"tune": time.perf_counter() - t0},
            split={"validation": how},
            trials=[
                {
                    "number": t.number,
                    "state": t.state.name.lower(),
                    "params": t.params,
                    "n_epochs": t.user_attrs.get("n_epochs"),
                    "metrics": t.user_attrs.get("metrics"),
                    "curve": t.user_attrs.get("curve"),
                }
                for t in study.trials
            ],
        )
        write_json(json_out, rec)
        plot = plot_validation_curves(
            study, json_out.with_suffix(".png"), f"nextitem tune gru4rec, {ds.name}"
        )
        console.print(f"wrote {json_out} and {plot}")
