"""Hyperparameter search for GRU4Rec with Optuna, like the official ``paropt``.

Search spaces are data (``training/params/space_*.toml``, the official
parspaces): one table per parameter with ``type`` int|float|categorical,
``low``/``high``/``step``/``log`` or ``values``. Every trial trains on the
training part of a validation split carved from the TRAINING data (the
dataset's own ``train_tr``/``valid`` when it has them, else the last sessions
of ``train``), never the test set.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from training.data import Dataset
from training.data.preprocess import holdout_tail
from training.data.sessions import Sessions
from training.evaluation import NextItemTask
from training.gru4rec.evaluate import evaluate_sessions
from training.gru4rec.params import PARAMS_DIR, GRU4RecParams, from_dict
from training.gru4rec.train import train
from training.params import ParamError


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
        path = PARAMS_DIR / f"space_{spec.removeprefix('space_').removesuffix('.toml')}.toml"
    if not path.is_file():
        known = sorted(p.stem.removeprefix("space_") for p in PARAMS_DIR.glob("space_*.toml"))
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
) -> tuple[optuna.Study, str]:
    """Maximise ``metric`` on the validation split; returns the study and the split description."""
    train_part, valid, how = validation_split(ds, valid_fraction)
    task = NextItemTask.from_sessions(valid)

    def objective(trial: optuna.Trial) -> float:
        values = {d.name: d.suggest(trial) for d in space}
        params: GRU4RecParams = from_dict({**fixed, **values})
        result = train(train_part, ds.n_items, params, progress=False, compile_loss=compile_loss)
        metrics, _ = evaluate_sessions(result.model, task, ks=(20,), progress=False)
        trial.set_user_attr("metrics", metrics)
        if on_trial:
            on_trial(trial.number, values, metrics)
        return metrics[metric]

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=n_trials)
    return study, how
