"""Our SASRec beside RecBole's on the same data, sizes and loss, in one run.

Run as ``python -m tests.bench.sasrec_recbole --recbole-python PATH [options]`` on an
otherwise idle machine (see ``tests/bench/README.md``). RecBole is not a dependency of
nextitem: install ``recbole==1.2.1`` in an environment of its own (it needs numpy < 2)
and name its interpreter.

Both train SASRec on the leave-one-out split of the same user-sequence file
(RecBole's ``LS: valid_and_test`` over the order of the file is the same split),
with the same network sizes (blocks, heads, d, ReLU feed-forward of width d,
dropout, the last L clicks), the softmax over all items, Adam at the same rate,
the same batch size, validation NDCG@10 after every epoch (all items ranked, the
user's earlier items removed, as RecBole's full sort does) and early stopping
after ``patience`` epochs without a better one. One epoch visits every (history,
next item) pair of the training part once in both: RecBole as one sample per
prefix, ours as one window per user with a target at every position. So the
throughput compared is training pairs per second, and the time to the best
validation epoch is wall time including the validations. Both then rank the
test targets once.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import typer
from rich.console import Console
from rich.table import Table

from models.registry import model_kind
from tests.bench.program import program, run
from training.attention.data import leave_one_out
from training.attention.evaluate import evaluate
from training.attention.export import build, loop_config, split_params
from training.attention.train import train
from training.data import load_dataset
from training.data.sessions import Dataset
from training.params import read_params
from training.report import environment, write_json

console = Console()
app = program()

#: RecBole's program, run by the other interpreter: its config as JSON on argv[1], the
#: result as one JSON line on stdout (its own log goes to stderr and is parsed for times).
RECBOLE_RUNNER = textwrap.dedent(
    """
    import json, sys, time
    import torch
    from recbole.quick_start import run_recbole
    config = json.loads(sys.argv[1])
    torch.set_num_threads(config.pop("threads"))
    t0 = time.perf_counter()
    out = run_recbole(model="SASRec", dataset=config.pop("dataset"), config_dict=config)
    out["wall_seconds"] = time.perf_counter() - t0
    print("RESULT " + json.dumps(out, default=float), flush=True)
    """
)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
EPOCH_LINE = re.compile(r"epoch (\d+) training \[time: ([\d.]+)s")
EVAL_LINE = re.compile(r"epoch (\d+) evaluating \[time: ([\d.]+)s, valid_score: ([\d.]+)\]")


def write_atomic(ds: Dataset, folder: Path) -> int:
    """The dataset as RecBole's atomic ``.inter`` file: one row per click, the click's
    position in its user's sequence as the timestamp that orders it. Returns the number
    of training pairs of the leave-one-out split (what one epoch visits)."""
    seqs = ds.part("all")
    folder.mkdir(parents=True, exist_ok=True)
    users = np.repeat(np.arange(seqs.n_sessions), seqs.lengths)
    position = np.arange(seqs.n_events) - np.repeat(seqs.offsets[:-1], seqs.lengths)
    items = ds.items.ids[seqs.items]
    with open(folder / f"{folder.name}.inter", "w") as f:
        f.write("user_id:token\titem_id:token\ttimestamp:float\n")
        np.savetxt(f, np.c_[users, items.astype(np.int64), position], fmt="%d", delimiter="\t")
    return int(np.maximum(seqs.lengths - 3, 0).sum())


def parse_log(log: str) -> tuple[list[float], list[tuple[float, float]]]:
    """RecBole's per-epoch training seconds, and (evaluation seconds, valid score) pairs."""
    log = ANSI.sub("", log)
    train_s = [float(m.group(2)) for m in EPOCH_LINE.finditer(log)]
    evals = [(float(m.group(2)), float(m.group(3))) for m in EVAL_LINE.finditer(log)]
    return train_s, evals


def time_to_reach(curve: list[dict[str, float]], ndcg: float) -> float | None:
    """Seconds from the start to the first validation at or above ``ndcg`` (NDCG@10)."""
    return next((p["seconds"] for p in curve if p["ndcg@10"] >= ndcg), None)


def run_recbole(
    python: str, ds: Dataset, work: Path, sizes: dict[str, Any], seed: int, threads: int
) -> dict[str, Any]:
    pairs = write_atomic(ds, work / "data" / "bench")
    config = {
        "dataset": "bench",
        "data_path": str(work / "data"),
        "checkpoint_dir": str(work / "saved"),
        "threads": threads,
        "seed": seed,
        "reproducibility": True,
        "use_gpu": False,
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "MAX_ITEM_LIST_LENGTH": sizes["max_len"],
        "n_layers": sizes["n_blocks"],
        "n_heads": sizes["n_heads"],
        "hidden_size": sizes["dim"],
        "inner_size": sizes["dim"],
        "hidden_act": "relu",
        "hidden_dropout_prob": sizes["dropout"],
        "attn_dropout_prob": sizes["dropout"],
        "loss_type": "CE",
        "train_neg_sample_args": None,
        "epochs": sizes["epochs"],
        "train_batch_size": sizes["batch_size"],
        "eval_batch_size": 512,
        "learning_rate": sizes["lr"],
        "stopping_step": sizes["patience"],
        "eval_step": 1,
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full"},
        "metrics": ["Hit", "NDCG"],
        "topk": [5, 10, 20],
        "valid_metric": "NDCG@10",
        "show_progress": False,
    }
    runner = work / "run_recbole.py"
    runner.write_text(RECBOLE_RUNNER)
    # RecBole reloads the checkpoint it has just written with a bare torch.load, which torch
    # now refuses for its pickled config; the file is its own, so the old default is safe.
    env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
    proc = subprocess.run(
        [python, str(runner), json.dumps(config)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    log = proc.stdout + proc.stderr
    (work / "recbole.log").write_text(log)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"RecBole failed (exit {proc.returncode}); log: {work / 'recbole.log'}")
    out = json.loads(lines[-1][len("RESULT ") :])
    train_s, evals = parse_log(log)
    scores = [s for _, s in evals]
    best = int(np.argmax(scores)) if scores else 0
    elapsed = np.cumsum([t + e for t, (e, _) in zip(train_s, evals, strict=False)])
    curve = [{"seconds": float(t), "ndcg@10": s} for t, s in zip(elapsed, scores, strict=False)]
    test = {k.lower().replace("hit@", "hitrate@"): float(v) for k, v in out["test_result"].items()}
    return {
        "epochs": len(train_s),
        "best_epoch": best + 1,
        "train_seconds": float(sum(train_s)),
        "pairs_per_second": pairs * len(train_s) / max(sum(train_s), 1e-9),
        "seconds_to_best": float(elapsed[best]) if len(elapsed) else 0.0,
        "best_valid_ndcg@10": float(out["best_valid_score"]),
        "test": test,
        "wall_seconds": float(out["wall_seconds"]),
        "curve": curve,
    }


def run_ours(
    ds: Dataset,
    model_params: dict[str, Any],
    loop_params: dict[str, Any],
    seed: int,
    threads: int,
) -> dict[str, Any]:
    torch.set_num_threads(threads)
    cfg = loop_config(loop_params, "sasrec", seed)
    data = leave_one_out(ds)
    model = build("sasrec", data.n_items, model_params, seed)
    t0 = time.perf_counter()
    result = train(model, data, cfg, progress=False)
    wall = time.perf_counter() - t0
    _, unseen = evaluate(model, data.test)
    # the pairs an epoch trains: a window keeps a sequence's last max_len + 1 items
    kept = np.minimum(data.train.lengths, model.config.max_len + 1)
    pairs = int(np.maximum(kept - 1, 0).sum())
    return {
        "epochs": result.epochs,
        "best_epoch": result.best_epoch,
        "train_seconds": result.train_seconds,
        "pairs_per_second": pairs * result.epochs / max(result.train_seconds, 1e-9),
        "seconds_to_best": result.seconds_to_best,
        "best_valid_ndcg@10": result.best_valid["ndcg@10"],
        "test": unseen,
        "wall_seconds": wall,
        "curve": [{"seconds": p["seconds"], "ndcg@10": p["ndcg@10"]} for p in result.curve],
    }


@app.command()
def bench_sasrec_recbole(
    recbole_python: str = typer.Option(..., help="the interpreter of an environment with recbole"),
    dataset: str = typer.Option("amazon-beauty"),
    params: str = typer.Option(
        "loss=full",
        help="over our SASRec defaults; the sizes RecBole gets are read from the result",
    ),
    seed: int = typer.Option(42),
    threads: int = typer.Option(2),
    epochs: int = typer.Option(200, help="our epochs at most (early stopping decides)"),
    patience: int = typer.Option(10),
    recbole_epochs: int = typer.Option(
        200, help="RecBole's epochs at most: on a CPU one takes minutes, so a budget may cap it"
    ),
    work: Path = typer.Option(Path("runs/bench-sasrec-recbole"), help="RecBole's files and log"),
    json_out: Path | None = typer.Option(None, "--json"),
) -> None:
    """Train our SASRec and RecBole's on the same split, sizes and loss; compare speed."""
    ds = load_dataset(dataset)
    params = ",".join(p for p in (params, f"epochs={epochs},patience={patience}") if p)
    model_params, loop_params, _ = split_params(
        read_params(model_kind("sasrec").params, params), "sasrec"
    )
    sizes = {**model_params, **loop_params}
    if sizes.get("layer_norm", "pre") != "post":
        console.print("note: RecBole's blocks are post-norm; ours run as configured")
    console.print(f"SASRec on {ds.name}, sizes {sizes}, {threads} threads")
    rows: dict[str, dict[str, Any]] = {}
    rows["nextitem"] = run_ours(ds, model_params, loop_params, seed, threads)
    console.print(f"nextitem: {rows['nextitem']}")
    rows["recbole"] = run_recbole(
        recbole_python, ds, work.resolve(), {**sizes, "epochs": recbole_epochs}, seed, threads
    )
    console.print(f"recbole: {rows['recbole']}")
    table = Table(title=f"SASRec on {ds.name} ({ds.sha256[:12]}), seed {seed}")
    for col in (
        "",
        "pairs/s",
        "epochs",
        "best",
        "s to best",
        "valid NDCG@10",
        "test HR@10",
        "test NDCG@10",
    ):
        table.add_column(col, justify="right")
    for name, r in rows.items():
        table.add_row(
            name,
            f"{r['pairs_per_second']:,.0f}",
            str(r["epochs"]),
            str(r["best_epoch"]),
            f"{r['seconds_to_best']:.0f}",
            f"{r['best_valid_ndcg@10']:.4f}",
            f"{r['test']['hitrate@10']:.4f}",
            f"{r['test']['ndcg@10']:.4f}",
        )
    console.print(table)
    # Time to quality: RecBole's time to its best validation NDCG@10 against ours to reach
    # the same figure (with RecBole capped, its best within the cap).
    target = rows["recbole"]["best_valid_ndcg@10"]
    ours_to_target = time_to_reach(rows["nextitem"]["curve"], target)
    ratios = {
        "throughput": rows["nextitem"]["pairs_per_second"] / rows["recbole"]["pairs_per_second"],
        "time_to_recbole_best": (
            rows["recbole"]["seconds_to_best"] / ours_to_target if ours_to_target else None
        ),
        "time_to_own_best": rows["recbole"]["seconds_to_best"]
        / max(rows["nextitem"]["seconds_to_best"], 1e-9),
    }
    console.print(
        f"RecBole's best validation NDCG@10 {target:.4f} after "
        f"{rows['recbole']['seconds_to_best']:.0f} s; ours reached it after "
        f"{ours_to_target if ours_to_target is None else round(ours_to_target)} s"
    )
    console.print(f"ratios (nextitem over RecBole): {ratios}")
    if json_out:
        write_json(
            json_out,
            {
                "dataset": ds.name,
                "sha256": ds.sha256,
                "seed": seed,
                "sizes": sizes,
                "rows": rows,
                "ratios": ratios,
                "env": environment(),
                "python": sys.version,
            },
        )


if __name__ == "__main__":
    run(app)
