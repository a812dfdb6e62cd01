"""``nextitem evaluate``: score a model with the protocol that fits it.

The command gathers every option into ``EvaluateArgs`` and hands it to the
runner of ``--model``: a baseline's (fitted here: POP, S-POP, Item-KNN, and the
session kNN models SKNN, V-SKNN and STAN, which have nothing to train and so no
checkpoint), or the runner of a trained model kind's family (``FAMILY_RUNNERS``,
for every kind of that family in the table of model kinds), so adding a kind to
a family touches nothing here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from models.baselines import ItemKNN, Pop, SessionPop
from models.registry import KINDS, Family
from training.cli import app
from training.data import load_dataset
from training.data.preprocess import holdout_tail
from training.data.sessions import Dataset, Sessions
from training.evaluation import TIE_MODES, NextItemTask, PrefixScorer, evaluate_next_item
from training.params import ParamError, check_known, read_params
from training.report import record, write_json
from training.session_knn import KNN_MODELS, knn_setup

console = Console()


@dataclass(frozen=True)
class EvaluateArgs:
    model: str
    dataset: str
    ks: tuple[int, ...]
    ties: str
    params: dict[str, Any]
    train_part: str
    test_part: str
    batch_size: int
    checkpoint: Path | None = None
    aggregator: str = "max"
    lambdas: tuple[float, ...] = (0.0,)
    split_file: Path | None = None
    seed: int = 0
    json_out: Path | None = None  # where the record goes; runners put their plots beside it
    by_repeat: bool = False
    valid_fraction: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


Runner = Callable[[EvaluateArgs], dict[str, Any]]


def print_metrics(title: str, metrics: dict[str, float]) -> None:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        table.add_row(name, f"{value:.4f}")
    console.print(table)


BASELINES = {
    "pop": (Pop, set()),
    "spop": (SessionPop, set()),
    "itemknn": (ItemKNN, {"alpha", "lmbd", "n_neighbors", "self_similarity"}),
}


Fitter = Callable[[Sessions, int], PrefixScorer]


def baseline_fitter(args: EvaluateArgs) -> tuple[Fitter, dict[str, Any]]:
    """The fit of ``--model`` and the parameters that run, checked before any data loads."""
    if args.model in KNN_MODELS:
        setup = knn_setup(args.model, args.params)
        return setup.fit, setup.params()
    cls, known = BASELINES[args.model]
    check_known(args.params, known, args.model)
    return lambda train, n_items: cls(**args.params).fit(train.items, train.offsets, n_items), dict(
        args.params
    )


def next_item_parts(ds: Dataset, args: EvaluateArgs) -> tuple[Sessions, NextItemTask, dict]:
    """(training sessions, task, split description): the test part, or a validation split.

    With ``valid_fraction`` the task is the last sessions of the training part
    (or the dataset's own ``train_tr``/``valid``, as ``nextitem tune`` does) and
    the test part is not read: what tuning a baseline may look at.
    """
    if not args.valid_fraction:
        task = NextItemTask.from_dataset(ds, args.test_part)
        split = {"train": args.train_part, "test": args.test_part}
        return ds.part(args.train_part), task, split
    if "train_tr" in ds.parts and "valid" in ds.parts:
        train, valid = ds.part("train_tr"), ds.part("valid")
        how = "dataset parts train_tr -> valid"
    else:
        train, valid = holdout_tail(ds.part(args.train_part), args.valid_fraction)
        how = f"{args.train_part} minus its last {args.valid_fraction:.0%} of sessions -> those"
    return train, NextItemTask.from_sessions(valid), {"validation": how}


def run_baseline(args: EvaluateArgs) -> dict[str, Any]:
    fit, params = baseline_fitter(args)
    t0 = time.perf_counter()
    ds = load_dataset(args.dataset)
    if ds.kind != "session":
        raise ParamError(f"{args.dataset} is {ds.kind} data; the next-item protocol needs sessions")
    t1 = time.perf_counter()
    train, task, split = next_item_parts(ds, args)
    scorer = fit(train, ds.n_items)
    t2 = time.perf_counter()
    metrics, eval_seconds = evaluate_next_item(
        scorer,
        task,
        ks=args.ks,
        ties=args.ties,
        batch_size=args.batch_size,
        by_repeat=args.by_repeat,
    )
    part = "validation" if args.valid_fraction else args.test_part
    print_metrics(
        f"{args.model} on {ds.name} ({part}): {len(task):,} predictions, "
        f"{ds.n_items:,} items, ties {args.ties}",
        metrics,
    )
    return record(
        model=args.model,
        dataset=ds,
        protocol="next-item" + (" (validation)" if args.valid_fraction else ""),
        # The cut-offs go under "k" as in every record, but under "cutoffs" for a model
        # whose own "k" is its number of neighbours.
        params={**params, "ties": args.ties, ("cutoffs" if "k" in params else "k"): list(args.ks)},
        metrics=metrics,
        seconds={"load": t1 - t0, "fit": t2 - t1, "evaluate": eval_seconds},
        split={**split, "predictions": len(task)},
    )


def run_multi_interest(args: EvaluateArgs) -> dict[str, Any]:
    from training.cli.comirec_cmd import run_evaluation

    return run_evaluation(args)


#: the families whose checkpoints ``evaluate`` scores, each with its protocol's runner
FAMILY_RUNNERS: dict[Family, Runner] = {"multi-interest": run_multi_interest}
#: ``--model`` -> runner (each returns the JSON record)
RUNNERS: dict[str, Runner] = {
    **{name: run_baseline for name in (*BASELINES, *KNN_MODELS)},
    **{k.name: FAMILY_RUNNERS[k.family] for k in KINDS if k.family in FAMILY_RUNNERS},
}


def parse_numbers(values: list[str], kind: type, option: str) -> tuple:
    out = []
    for v in values:
        for piece in v.split(","):
            try:
                out.append(kind(piece))
            except ValueError:
                raise ParamError(f"{option} takes {kind.__name__} values, got {piece!r}") from None
    return tuple(out)


def parse_ks(values: list[str]) -> tuple[int, ...]:
    """``["5,10", "20"]`` -> (5, 10, 20): sorted, de-duplicated, each at least 1."""
    ks = tuple(sorted(set(parse_numbers(values, int, "--k"))))
    if any(x < 1 for x in ks):
        raise ParamError("--k must be at least 1")
    return ks


@app.command()
def evaluate(
    model: str = typer.Option(..., help=", ".join(RUNNERS)),
    dataset: str = typer.Option(..., help="registered name or FORMAT:PATH"),
    k: list[str] = typer.Option(["20"], help="cut-offs, e.g. --k 5,10,20"),
    ties: str = typer.Option("standard", help=f"tie handling: {', '.join(TIE_MODES)}"),
    params: list[str] = typer.Option(
        [],
        help="model parameters: k=v,k=v, a TOML file or a bundled name; repeat to override "
        "left to right",
    ),
    train_part: str = typer.Option("train", help="part to fit on"),
    test_part: str = typer.Option("test", help="part to evaluate on"),
    batch_size: int = typer.Option(64, min=1),
    checkpoint: Path | None = typer.Option(None, help="a checkpoint directory to evaluate"),
    aggregator: str = typer.Option("max", help="multi-interest aggregation: max | greedy"),
    lam: list[str] = typer.Option(["0"], "--lambda", help="greedy weights, e.g. 0,0.05,0.1"),
    split_file: Path | None = typer.Option(None, help="user split TSV (multi-interest)"),
    seed: int = typer.Option(0, help="seed for splits and sampling"),
    json_out: Path | None = typer.Option(None, "--json", help="write the result record here"),
    by_repeat: bool = typer.Option(
        False,
        "--by-repeat",
        help="next-item: also report the metrics over re-clicked targets (_repeat) and new "
        "ones (_new)",
    ),
    valid_fraction: float = typer.Option(
        0.0,
        min=0.0,
        max=0.5,
        help="next-item baselines: fit on the training part minus its last FRACTION of "
        "sessions and evaluate on those (for tuning; the test part is not read)",
    ),
) -> None:
    """Evaluate a model on a dataset with the protocol that fits it (all items ranked)."""
    if model not in RUNNERS:
        raise ParamError(f"unknown model {model!r}; choose one of {', '.join(sorted(RUNNERS))}")
    if ties not in TIE_MODES:
        raise ParamError(f"unknown tie mode {ties!r}; choose one of {', '.join(TIE_MODES)}")
    if aggregator not in ("max", "greedy"):
        raise ParamError(f"unknown aggregator {aggregator!r}; choose max or greedy")
    ks = parse_ks(k)
    if (by_repeat or valid_fraction) and RUNNERS[model] is not run_baseline:
        raise ParamError("--by-repeat and --valid-fraction are for the next-item baselines")
    args = EvaluateArgs(
        model=model,
        dataset=dataset,
        ks=ks,
        ties=ties,
        params=read_params(*params),
        train_part=train_part,
        test_part=test_part,
        batch_size=batch_size,
        checkpoint=checkpoint,
        aggregator=aggregator,
        lambdas=parse_numbers(lam, float, "--lambda"),
        split_file=split_file,
        seed=seed,
        json_out=json_out,
        by_repeat=by_repeat,
        valid_fraction=valid_fraction,
    )
    rec = RUNNERS[model](args)
    if json_out:
        write_json(json_out, rec)
        console.print(f"wrote {json_out}")
