"""Hyperparameter search for GRU4Rec with Optuna, like the official ``paropt``.

Search spaces are data (``training/model_params/space_*.toml``, the official
parspaces): one table per parameter with ``type`` int|float|categorical,
``low``/``high``/``step``/``log`` or ``values``. Every trial trains on the
training part of a validation split carved from the TRAINING data (the
dataset's own ``train_tr``/``valid`` when it has them, else the last sessions
of ``train``), never the test set. Each trial is scored on the validation
split after every epoch and keeps its best epoch, so ``n_epochs`` is chosen by
early stopping rather than by one trial per value. Known good points (the
published best parameters, say) can be queued as the first trials.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from models.gru4rec import GRU4Rec
from training.data import Dataset
from training.data.preprocess import holdout_tail
from training.data.sessions import Sessions
from training.evaluation import NextItemTask
from training.gru4rec.evaluate import evaluate_sessions
from training.gru4rec.params import GRU4RecParams, load_params
from training.gru4rec.train import EpochStats, train
from training.params import MODEL_PARAMS_DIR, ParamError


@dataclass(frozen=True)
class Dimension:
    name: str
    type: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    values: tuple[Any, ...] = ()

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.type == "int":
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        if self.type == "float":
            return trial.suggest_float(
                self.name, float(self.low), float(self.high), step=self.step, log=self.log
            )
        return trial.suggest_categorical(self.name, list(self.values))


def load_space(spec: str) -> list[Dimension]:
    """A space file path, or a bundled name such as ``gru4rec_bprmax``."""
    path = Path(spec)
    if not path.is_file():
        path = MODEL_PARAMS_DIR / f"space_{spec.removeprefix('space_').removesuffix('.toml')}.toml"
    if not path.is_file():
        known = sorted(p.stem.removeprefix("space_") for p in MODEL_PARAMS_DIR.glob("space_*.toml"))
        raise ParamError(f"no search space {spec!r} (bundled: {', '.join(known)})")
    dims = []
    for name, d in tomllib.loads(path.read_text()).items():
        kind = d.get("type")
        if kind not in ("int", "float", "categorical"):
            raise ParamError(f"{path.name}: {name} has unknown type {kind!r}")
        dims.append(
            Dimension(
                name=name,
                type=kind,
                low=d.get("low"),
                high=d.get("high"),
                step=d.get("step"),
                log=bool(d.get("log", False)),
                values=tuple(d.get("values", ())),
            )
        )
    return dims


def validation_split(ds: Dataset, fraction: float = 0.1) -> tuple[Sessions, Sessions, str]:
    """(train, valid, description) from the training data only."""
    if "train_tr" in ds.parts and "valid" in ds.parts:
        return ds.part("train_tr"), ds.part("valid"), "dataset parts train_tr -> valid"
    train_part, valid = holdout_tail(ds.part("train"), fraction)
    return train_part, valid, f"train minus its last {fraction:.0%} of sessions -> those sessions"


def check_enqueued(space: list[Dimension], points: Sequence[dict[str, Any]]) -> None:
    """A queued point must name only the space's dimensions (others belong in ``fixed``)."""
    names = {d.name for d in space}
    for point in points:
        unknown = sorted(set(point) - names)
        if unknown:
            raise ParamError(
                f"queued trial sets {', '.join(unknown)}, which the space does not search "
                f"(it searches {', '.join(sorted(names))}); fix those with --fixed instead"
            )


def best_epoch(curve: Sequence[dict[str, float]], metric: str) -> int:
    """1-based epoch with the highest ``metric``; the earliest one on ties."""
    values = [m[metric] for m in curve]
    return values.index(max(values)) + 1


def make_study(
    seed: int, prune_after: int = 0, storage: str | None = None, name: str | None = None
) -> optuna.Study:
    """A maximising TPE study; with ``storage`` it persists every epoch and resumes by name.

    ``prune_after`` > 0 stops a trial from that epoch on once its best validation
    value so far is below the median of the completed trials at the same epoch
    (one completed trial is enough to compare with: trials here cost minutes to hours).
    """
    pruner: optuna.pruners.BasePruner = (
        optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=prune_after)
        if prune_after > 0
        else optuna.pruners.NopPruner()
    )
    return optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=pruner,
        storage=storage,
        study_name=name,
        load_if_exists=storage is not None,
    )


def tune(
    ds: Dataset,
    space: list[Dimension],
    fixed: dict[str, Any],
    n_trials: int,
    metric: str = "recall@20",
    seed: int = 42,
    valid_fraction: float = 0.1,
    on_trial: Callable[[int, dict[str, Any], dict[str, float]], None] | None = None,
    compile_loss: bool = False,
    *,
    enqueue: Sequence[dict[str, Any]] = (),
    on_epoch: Callable[[int, EpochStats], None] | None = None,
    study: optuna.Study | None = None,
) -> tuple[optuna.Study, str]:
    """Maximise ``metric`` on the validation split; returns the study and the split description.

    A trial's value is its best epoch's ``metric``; its user attributes hold that
    epoch (``n_epochs``), its metrics and the validation curve, which is saved
    after every epoch so that a pruned or interrupted trial keeps what it ran.
    ``study`` (from ``make_study``) brings its own sampler, pruner and storage;
    without one, a fresh in-memory study is seeded with ``seed``.
    """
    check_enqueued(space, enqueue)
    train_part, valid, how = validation_split(ds, valid_fraction)
    task = NextItemTask.from_sessions(valid)

    def validate(model: GRU4Rec) -> dict[str, float]:
        on_cpu = next(model.parameters()).device.type == "cpu"
        scored = model if on_cpu else copy.deepcopy(model).to("cpu")
        metrics, _ = evaluate_sessions(scored, task, ks=(20,), progress=False)
        return metrics

    def objective(trial: optuna.Trial) -> float:
        values = {d.name: d.suggest(trial) for d in space}
        params: GRU4RecParams = load_params({**fixed, **values})
        curve: list[dict[str, float]] = []

        def after_epoch(stats: EpochStats) -> None:
            curve.append(stats.metrics)
            trial.set_user_attr("curve", curve)
            trial.report(stats.metrics[metric], stats.epoch)
            if on_epoch:
                on_epoch(trial.number, stats)
            if trial.should_prune():
                raise optuna.TrialPruned(
                    f"epoch {stats.epoch}: {metric} below the median of completed trials"
                )

        train(
            train_part,
            ds.n_items,
            params,
            progress=False,
            on_epoch=after_epoch,
            validate=validate,
            compile_loss=compile_loss,
        )
        epoch = best_epoch(curve, metric)
        trial.set_user_attr("metrics", curve[epoch - 1])
        trial.set_user_attr("n_epochs", epoch)
        if on_trial:
            on_trial(trial.number, {**values, "n_epochs": epoch}, curve[epoch - 1])
        return curve[epoch - 1][metric]

    study = study or make_study(seed)
    for point in enqueue:
        study.enqueue_trial(point, skip_if_exists=True)
    study.optimize(objective, n_trials=n_trials)
    return study, how


def plot_validation_curves(study: optuna.Study, path: Path, title: str) -> Path:
    """Validation Recall@20 and MRR@20 per epoch, one line per trial, the chosen epoch marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), dpi=100)
    for trial in study.trials:
        curve = trial.user_attrs.get("curve")
        if not curve:
            continue
        epochs = range(1, len(curve) + 1)
        chosen = trial.user_attrs.get("n_epochs")  # none: pruned or interrupted
        label = f"trial {trial.number}" + ("" if chosen else f" ({trial.state.name.lower()})")
        for ax, name in zip(axes, ("recall@20", "mrr@20"), strict=True):
            values = [m[name] for m in curve]
            style = "-" if chosen else "--"
            (line,) = ax.plot(epochs, values, style, marker=".", lw=1, label=label)
            if chosen:
                mark = [values[chosen - 1]]
                ax.plot([chosen], mark, "o", ms=9, mfc="none", color=line.get_color())
    for ax, name in zip(axes, ("Recall@20", "MRR@20"), strict=True):
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"validation {name}")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower right", fontsize="small")
    fig.suptitle(f"{title} (circle: the epoch each trial keeps)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
