"""``nextitem retrain``: the trainer's file contract with the service's worker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.training.test_retrain import demo_log
from training.checkpoint import current_version, list_versions, read_manifest
from training.cli import app


def _files(tmp_path: Path, config: dict, n_sessions: int = 600) -> list[str]:
    demo_log(n_sessions).to_parquet(tmp_path / "events.parquet", index=False)
    (tmp_path / "config.json").write_text(json.dumps(config))
    return [
        "retrain",
        "--events", str(tmp_path / "events.parquet"),
        "--config", str(tmp_path / "config.json"),
        "--model-dir", str(tmp_path / "models"),
        "--outcome", str(tmp_path / "outcome.json"),
    ]  # fmt: skip


def test_retrain_writes_a_checkpoint_progress_lines_and_an_outcome(
    tmp_path: Path, one_torch_thread
) -> None:
    config = {
        "kind": "gru4rec",
        "params": {"n_epochs": 1},
        "min_item_support": 1,
        "data": {"job_id": "j1", "consumed_up_to": "42"},
    }
    result = CliRunner().invoke(app, _files(tmp_path, config))
    assert result.exit_code == 0, result.output
    points = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    fractions = [p["progress"] for p in points]
    assert fractions == sorted(fractions) and fractions[0] > 0 and fractions[-1] < 1
    assert any(p["stage"].startswith("train") for p in points)
    outcome = json.loads((tmp_path / "outcome.json").read_text())
    assert list_versions(tmp_path / "models") == [outcome["version"]]
    assert outcome["passed"] is True  # no active model: any hit passes
    assert current_version(tmp_path / "models") is None  # activating is the caller's decision
    manifest = read_manifest(tmp_path / "models", outcome["version"])
    assert manifest["data"]["job_id"] == "j1" and manifest["data"]["consumed_up_to"] == "42"
    assert outcome["metrics"]["gate"] == manifest["gate"]


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ({"kind": "gru4rec", "epochs": 3}, "unknown retrain config key"),
        ({"kind": "no-such-model"}, "no-such-model"),
        ({"params": {"n_epochs": 1}, "min_item_support": 10_000}, "NothingToTrain"),
    ],
)
def test_a_job_that_cannot_train_says_why_in_its_outcome(
    tmp_path: Path, config: dict, says: str
) -> None:
    result = CliRunner().invoke(app, _files(tmp_path, config, n_sessions=200))
    assert result.exit_code == 2, result.output
    outcome = json.loads((tmp_path / "outcome.json").read_text())
    assert set(outcome) == {"error"} and says in outcome["error"]
    assert list_versions(tmp_path / "models") == []
