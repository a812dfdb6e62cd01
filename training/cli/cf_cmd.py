"""``nextitem train svd|svdpp|timesvdpp|rbm|itemknn|userknn|baseline|blend``: CF on rating folds.

Every command fits on each requested fold's base part, reports RMSE / MAE on its
test part (per fold and the mean), can print a top-N list for a user and the
items most similar to an item, and with ``--out`` exports the model fitted on
the first fold as a servable checkpoint.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
import typer
from rich.console import Console
from rich.table import Table

from training.cf.folds import FAMILIES, FoldResult, evaluate_fold, make_config
from training.cli import train_app
from training.data import load_dataset
from training.data.sessions import Dataset
from training.params import ParamError, as_dict, read_params
from training.report import record, write_json

console = Console()


def parse_folds(spec: str, ds: Dataset) -> list[str]:
    """``u1``, ``u1,u3`` or a range ``u1..u5`` -> fold names of ``ds`` (checked)."""
    folds: list[str] = []
    for piece in filter(None, (p.strip() for p in spec.split(","))):
        m = re.fullmatch(r"([A-Za-z]+)(\d+)\.\.\1?(\d+)", piece)
        if m:
            prefix, lo, hi = m.group(1), int(m.group(2)), int(m.group(3))
            folds += [f"{prefix}{k}" for k in range(lo, hi + 1)]
        else:
            folds.append(piece)
    unknown = [f for f in folds if f not in ds.folds]
    if unknown or not folds:
        raise ParamError(f"unknown fold(s) {unknown or spec!r} of {ds.name}; folds: {ds.folds}")
    return folds


def _print_lists(result: FoldResult, ds: Dataset, user: int | None, item: int | None, n: int):
    from models.cf.recommend import recommend, similar_items

    base, _ = ds.fold(result.fold)
    if user is not None:
        if not 0 <= user < base.n_sessions:
            raise ParamError(f"user row {user} out of range (0..{base.n_sessions - 1})")
        top = recommend(result.model, user, n, seen=base.session(user))
        console.print(f"top-{n} for user row {user} (id {ds.users[user]}):")
        console.print(", ".join(str(ds.items.ids[i]) for i in top))
    if item is not None:
        if not 0 <= item < ds.n_items:
            raise ParamError(f"item row {item} out of range (0..{ds.n_items - 1})")
        top = similar_items(result.model, item, n)
        console.print(f"items similar to item row {item} (id {ds.items.ids[item]}):")
        console.print(", ".join(str(ds.items.ids[i]) for i in top))


def _command(name: str):
    def command(
        dataset: str = typer.Option("ml-100k", help="rating dataset (ml-100k, ml-1m)"),
        fold: str = typer.Option("", help="fold(s): u1, u1,u2 or u1..u5"),
        folds: str = typer.Option("", help="alias of --fold"),
        params: str = typer.Option(
            "", help="k=v,k=v, a .toml file or a bundled name (cf_svdpp_ml-100k)"
        ),
        seed: int = typer.Option(0),
        threads: int = typer.Option(1, min=1, help="torch threads (the SGD kernels use one)"),
        json_out: Path | None = typer.Option(None, "--json", help="write the result record here"),
        out: Path | None = typer.Option(None, help="export the first fold's model to MODEL_DIR"),
        recommend_user: int | None = typer.Option(None, "--recommend", help="user row: top-N"),
        similar_item: int | None = typer.Option(None, "--similar", help="item row: similar"),
        n: int = typer.Option(10, min=1, help="length of the printed lists"),
    ) -> None:
        torch.set_num_threads(threads)
        model_params = read_params(params)
        config = make_config(name, model_params)
        ds = load_dataset(dataset)
        if ds.kind != "rating":
            raise ParamError(f"{dataset} is {ds.kind} data; CF models need rating data")
        fold_names = parse_folds(fold or folds or ds.folds[0], ds)
        results: list[FoldResult] = []
        for f in fold_names:
            r = evaluate_fold(name, ds, f, model_params, seed=seed)
            results.append(r)
            console.print(
                f"{name} {ds.name} {f}: RMSE {r.metrics['rmse']:.4f}  MAE {r.metrics['mae']:.4f}"
                f"  fit {r.fit_seconds:.2f}s  predict {r.predict_seconds:.2f}s"
            )
        mean = {k: float(np.mean([r.metrics[k] for r in results])) for k in ("rmse", "mae")}
        table = Table(title=f"{name} on {ds.name}, folds {', '.join(fold_names)}, seed {seed}")
        for col in ("fold", "RMSE", "MAE", "fit s", "predict s"):
            table.add_column(col, justify="right")
        for r in results:
            table.add_row(r.fold, f"{r.metrics['rmse']:.4f}", f"{r.metrics['mae']:.4f}",
                          f"{r.fit_seconds:.2f}", f"{r.predict_seconds:.2f}")  # fmt: skip
        table.add_row("mean", f"{mean['rmse']:.4f}", f"{mean['mae']:.4f}",
                      f"{np.mean([r.fit_seconds for r in results]):.2f}",
                      f"{np.mean([r.predict_seconds for r in results]):.2f}")  # fmt: skip
        console.print(table)
        _print_lists(results[0], ds, recommend_user, similar_item, n)
        hyper = as_dict(config)
        if out is not None:
            from training.cf.export import export_checkpoint

            base, _ = ds.fold(results[0].fold)
            path = export_checkpoint(
                out, name, results[0].model, ds, base.items, hyper, results[0].metrics,
                {"name": ds.name, "sha256": ds.sha256, "fold": results[0].fold, "seed": seed},
            )  # fmt: skip
            console.print(f"wrote checkpoint {path}")
        if json_out:
            rec = record(
                model=name,
                dataset=ds,
                protocol="rating",
                params={**hyper, "seed": seed},
                metrics=mean,
                seconds={
                    "fit": float(np.mean([r.fit_seconds for r in results])),
                    "predict": float(np.mean([r.predict_seconds for r in results])),
                },
                split={"folds": fold_names, "seed": seed},
                folds={
                    r.fold: {
                        **r.metrics,
                        "fit_seconds": round(r.fit_seconds, 3),
                        "predict_seconds": round(r.predict_seconds, 3),
                        "n_train": r.n_train,
                        "n_test": r.n_test,
                    }
                    for r in results
                },
            )
            write_json(json_out, rec)
            console.print(f"wrote {json_out}")

    command.__name__ = name
    command.__doc__ = f"Fit {name} on rating folds; RMSE / MAE per fold and their mean."
    return command


for _name in FAMILIES:
    train_app.command(_name)(_command(_name))
