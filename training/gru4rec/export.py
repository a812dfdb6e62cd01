"""Train, evaluate and write a GRU4Rec checkpoint: the one function the CLI and the service call."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.registry import model_kind
from training.data import Dataset, load_dataset
from training.data.sessions import ItemTable, Sessions
from training.evaluation import NextItemTask
from training.evaluation.ranking import TieMode
from training.gru4rec.evaluate import evaluate_sessions
from training.gru4rec.params import GRU4RecParams, load_params
from training.gru4rec.train import TrainResult, item_support, train
from training.publish import Trained, publish

KIND = "gru4rec"
#: small and quick: what a retrain starts from, and what the service trains when it
#: starts with an empty model directory (a bundled parameter file's name)
DEFAULT_PARAMS = model_kind(KIND).params


@dataclass
class ExportResult:
    path: Path
    result: TrainResult
    metrics: dict[str, float]
    seconds: dict[str, float]


def plot_losses(result: TrainResult, path: Path, title: str) -> Path:
    """Loss per mini-batch (light) and its per-epoch mean, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    losses = np.asarray(result.step_losses, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    if len(losses):
        ax.plot(np.arange(1, len(losses) + 1), losses, lw=0.4, alpha=0.35, label="mini-batch")
        window = max(1, len(losses) // 200)
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        ax.plot(np.arange(window, len(losses) + 1), smooth, lw=1.2, label=f"mean of {window}")
    steps_per_epoch = len(losses) // max(len(result.epochs), 1)
    for e in result.epochs:
        ax.axvline(e.epoch * steps_per_epoch, color="grey", lw=0.5, ls=":")
    ax.set_xlabel("mini-batch")
    ax.set_ylabel(f"{result.params.loss} loss")
    ax.set_title(title)
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def as_trained(result: TrainResult, sessions: Sessions, items: ItemTable, title: str) -> Trained:
    """A GRU4Rec training result as what its checkpoint records."""
    return Trained(
        kind=KIND,
        model=result.model,
        hyperparameters={**result.params.to_dict(), **result.model.hyperparameters()},
        item_ids=items.ids,
        popularity=item_support(sessions, len(items)),
        categories=items.categories,
        training={
            "epochs": [e.summary() for e in result.epochs],
            "threads": torch.get_num_threads(),
        },
        plot=lambda path: plot_losses(result, path, title),
    )


def export_model(
    dataset: str | Dataset,
    model_dir: Path,
    params: GRU4RecParams | str | dict[str, Any] | None = None,
    *,
    train_part: str = "train",
    test_part: str | None = "test",
    activate: bool = False,
    seed: int | None = None,
    ks: tuple[int, ...] = (20,),
    ties: TieMode = "standard",
    progress: bool = True,
    on_epoch: Any = None,
    compile_loss: bool = False,
    by_repeat: bool = False,
) -> ExportResult:
    """Train on ``train_part``, evaluate on ``test_part`` (None: skip), write a checkpoint.

    ``params`` defaults to a small, quick configuration (``DEFAULT_PARAMS``).
    Returns the checkpoint path with the training result, metrics and timings.
    """
    t0 = time.perf_counter()
    ds = load_dataset(dataset) if isinstance(dataset, str) else dataset
    if ds.kind != "session":
        raise ValueError(f"{ds.name} is {ds.kind} data; GRU4Rec trains on sessions")
    if not isinstance(params, GRU4RecParams):
        params = load_params(DEFAULT_PARAMS if params is None else params)
    if seed is not None:
        params = params.replace(seed=seed)
    sessions = ds.part(train_part)
    t1 = time.perf_counter()
    result = train(
        sessions,
        ds.n_items,
        params,
        progress=progress,
        on_epoch=on_epoch,
        compile_loss=compile_loss,
    )
    t2 = time.perf_counter()
    metrics: dict[str, float] = {}
    seconds = {"load": t1 - t0, "train": t2 - t1}
    if test_part:
        task = NextItemTask.from_dataset(ds, test_part)
        metrics, seconds["evaluate"] = evaluate_sessions(
            result.model, task, ks=ks, ties=ties, progress=progress, by_repeat=by_repeat
        )
    path = publish(
        as_trained(result, sessions, ds.items, f"GRU4Rec on {ds.name}"),
        model_dir,
        activate=activate,
        metrics=metrics,
        data={
            "name": ds.name,
            "sha256": ds.sha256,
            "train": train_part,
            "test": test_part,
            "train_events": int(sessions.n_events),
            "ties": ties,
        },
    )
    return ExportResult(path=path, result=result, metrics=metrics, seconds=seconds)
