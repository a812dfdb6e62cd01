"""The worker's side of a job: the trainer runs as a child process; its failures are reported."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from app.events.snapshot import EventSnapshot
from app.jobs.worker import TrainerFailed, _follow, run_trainer, trainer_config
from app.schemas import RetrainRequest
from app.settings import Settings


def test_progress_lines_are_passed_on_and_other_output_is_not() -> None:
    seen: list[tuple[float, str]] = []
    for line in ['{"progress": 0.25, "stage": "train: epoch 1/4"}\n', "a warning\n", "{}\n"]:
        _follow(line, lambda f, s: seen.append((f, s)))
    assert seen == [(0.25, "train: epoch 1/4")]


def test_trainer_config_takes_the_request_over_the_settings(tmp_path: Path) -> None:
    settings = Settings(model_dir=tmp_path, gate_ratio=0.9, holdout_fraction=0.2)
    plain = trainer_config(RetrainRequest(), settings, {"job_id": "j"})
    assert (plain["kind"], plain["gate_ratio"], plain["holdout_fraction"]) == ("gru4rec", 0.9, 0.2)
    asked = trainer_config(RetrainRequest(gate_ratio=0.5, params={"n_epochs": 2}), settings, {})
    assert asked["gate_ratio"] == 0.5 and asked["params"] == {"n_epochs": 2}
    assert plain["data"] == {"job_id": "j"}


def test_a_trainer_that_cannot_train_fails_the_job_with_its_reason(tmp_path: Path) -> None:
    """A real child process: ``nextitem retrain`` on three clicks has nothing to train on."""
    events = pd.DataFrame(
        {"session_id": ["a", "a", "b"], "item_id": ["1", "2", "1"], "ts": [1.0, 2.0, 3.0]}
    )
    config = trainer_config(RetrainRequest(), Settings(model_dir=tmp_path), {})
    with pytest.raises(TrainerFailed, match="exited with code 2: NothingToTrain"):
        run_trainer(EventSnapshot(events, "3"), config, tmp_path, None, lambda f, s: None)
    assert not any(tmp_path.iterdir())  # no checkpoint, no CURRENT
