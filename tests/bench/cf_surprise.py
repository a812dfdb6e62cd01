"""Our CF models beside scikit-surprise on the same fold, with Surprise's own settings.

Run as ``python -m tests.bench.cf_surprise [--dataset ml-100k] [--folds u1..u5] [options]``
(``make bench-cf``) on an otherwise idle machine, with the ``bench`` extra installed
(``pip install -e '.[bench]'``); see ``tests/bench/README.md``.

Both sides get the same training ratings and are scored on the same test
ratings; our configs are the dataclass defaults, which are Surprise's defaults
(factors, epochs, learning rates, regularisation, k, shrinkage). Fit seconds
exclude our one-off JIT compilation (loaded from the on-disk cache, see
``sgd_kernels.warm_up``); Surprise is Cython and single-threaded, and so are
our kernels (torch is set to one thread by the command).
"""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import typer
from rich.console import Console
from rich.table import Table

from tests.bench.program import program, run
from training.cf.folds import evaluate_fold, ratings_of
from training.cli.cf_cmd import parse_folds
from training.data import load_dataset
from training.data.sessions import Dataset
from training.evaluation import rating_metrics
from training.report import write_json

console = Console()
app = program()

SURPRISE_ALGOS = ("baseline", "svd", "svdpp", "itemknn", "userknn")


def surprise_algorithm(name: str, seed: int) -> Any:
    import surprise

    if name == "baseline":
        return surprise.BaselineOnly(verbose=False)
    if name == "svd":
        return surprise.SVD(random_state=seed)
    if name == "svdpp":
        return surprise.SVDpp(random_state=seed)
    if name in ("itemknn", "userknn"):
        sim = {"name": "pearson_baseline", "user_based": name == "userknn"}
        return surprise.KNNBaseline(sim_options=sim, verbose=False)
    raise KeyError(f"no Surprise counterpart for {name!r}; choose from {SURPRISE_ALGOS}")


def run_surprise(name: str, ds: Dataset, fold: str, seed: int) -> dict[str, float]:
    import pandas as pd
    import surprise

    base, test_part = ds.fold(fold)
    train = ratings_of(base, ds.n_items)
    test = ratings_of(test_part, ds.n_items)
    frame = pd.DataFrame({"u": train.users, "i": train.items, "r": train.values})
    reader = surprise.Reader(rating_scale=(1, 5))
    trainset = surprise.Dataset.load_from_df(frame, reader).build_full_trainset()
    testset = list(zip(test.users.tolist(), test.items.tolist(), test.values.tolist(), strict=True))
    algo = surprise_algorithm(name, seed)
    t0 = time.perf_counter()
    algo.fit(trainset)
    t1 = time.perf_counter()
    pred = np.array([p.est for p in algo.test(testset)])
    t2 = time.perf_counter()
    return {**rating_metrics(pred, test.values), "fit": t1 - t0, "predict": t2 - t1}


def run_bench(ds: Dataset, folds: list[str], models: list[str], seed: int) -> list[dict]:
    """One row per (model, fold): both RMSEs, both fit / predict seconds, fit-time ratio."""
    try:
        import surprise  # noqa: F401
    except ImportError:
        raise KeyError("scikit-surprise is not installed: pip install -e '.[bench]'") from None
    rows = []
    for name in models:
        surprise_algorithm(name, seed)  # unknown names fail before any fitting
        for fold in folds:
            ours = evaluate_fold(name, ds, fold, {}, seed=seed)
            theirs = run_surprise(name, ds, fold, seed)
            rows.append(
                {
                    "model": name,
                    "fold": fold,
                    "rmse": ours.metrics["rmse"],
                    "fit": ours.fit_seconds,
                    "predict": ours.predict_seconds,
                    "surprise_rmse": theirs["rmse"],
                    "surprise_fit": theirs["fit"],
                    "surprise_predict": theirs["predict"],
                    "fit_ratio": ours.fit_seconds / max(theirs["fit"], 1e-9),
                }
            )
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """Mean over folds per model (ratio of the mean fit times)."""
    out = []
    for name in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == name]
        mean = {
            k: float(np.mean([r[k] for r in mine])) for k in mine[0] if k not in ("model", "fold")
        }
        mean["fit_ratio"] = mean["fit"] / max(mean["surprise_fit"], 1e-9)
        out.append({"model": name, "folds": len(mine), **mean})
    return out


def print_bench(rows: list[dict], ds: Dataset, console: Console) -> None:
    import os

    import surprise

    console.print(
        f"{ds.name} (sha256 {ds.sha256[:12]}), folds {sorted({r['fold'] for r in rows})}; "
        f"python {platform.python_version()}, surprise {surprise.__version__}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} thread), "
        f"load {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    table = Table(title="ours vs scikit-surprise (Surprise's default settings), mean over folds")
    for col in ("model", "RMSE ours", "RMSE Surprise", "fit s ours", "fit s Surprise",
                "fit ratio", "predict s ours", "predict s Surprise"):  # fmt: skip
        table.add_column(col, justify="right")
    for s in summarise(rows):
        table.add_row(
            s["model"], f"{s['rmse']:.4f}", f"{s['surprise_rmse']:.4f}", f"{s['fit']:.3f}",
            f"{s['surprise_fit']:.3f}", f"{s['fit_ratio']:.3f}x", f"{s['predict']:.3f}",
            f"{s['surprise_predict']:.3f}",
        )  # fmt: skip
    console.print(table)


def plot_bench(rows: list[dict], path: Path, title: str) -> None:
    """Two panels: RMSE and fit seconds (log scale), ours beside Surprise, per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarise(rows)
    names = [s["model"] for s in summary]
    x = np.arange(len(names))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in ((axes[0], "rmse", "RMSE"), (axes[1], "fit", "fit seconds")):
        ax.bar(x - 0.2, [s[key] for s in summary], 0.4, label="nextitem")
        ax.bar(x + 0.2, [s[f"surprise_{key}"] for s in summary], 0.4, label="Surprise 1.1.5")
        ax.set_xticks(x, names)
        ax.set_ylabel(label)
    axes[0].set_ylim(0.85, max(s["surprise_rmse"] for s in summary) + 0.02)
    axes[1].set_yscale("log")
    axes[0].legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@app.command()
def cf_bench(
    dataset: str = typer.Option("ml-100k"),
    folds: str = typer.Option("u1", help="fold(s): u1 or u1..u5"),
    models: str = typer.Option("baseline,svd,svdpp,itemknn", help="comma-separated"),
    seed: int = typer.Option(0),
    json_out: Path | None = typer.Option(None, "--json"),
    plot: Path | None = typer.Option(None, help="write a PNG of RMSE and fit seconds"),
) -> None:
    """Our models beside scikit-surprise (same settings, same folds): RMSE, fit seconds, ratios."""
    torch.set_num_threads(1)
    ds = load_dataset(dataset)
    rows = run_bench(ds, parse_folds(folds, ds), [m.strip() for m in models.split(",")], seed)
    print_bench(rows, ds, console)
    if plot:
        plot_bench(rows, plot, f"{ds.name}, folds {folds}: nextitem vs Surprise (its defaults)")
        console.print(f"wrote {plot}")
    if json_out:
        write_json(json_out, {"dataset": ds.name, "sha256": ds.sha256, "time": time.time(),
                              "rows": rows})  # fmt: skip


if __name__ == "__main__":
    run(app)
