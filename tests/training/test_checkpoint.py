"""Checkpoint directories: round trip, checksums, atomic CURRENT, write-once."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from training.checkpoint import (
    CheckpointError,
    current_version,
    list_versions,
    load_checkpoint,
    set_current,
    write_checkpoint,
)
from training.evaluation import rating_metrics


def write(model_dir: Path, version: str = "v1") -> Path:
    return write_checkpoint(
        model_dir,
        kind="test",
        hyperparameters={"layers": [4]},
        weights={"w": torch.arange(6, dtype=torch.float32).reshape(3, 2)},
        item_ids=np.array(["a", "b", "c"], dtype=object),
        popularity=np.array([3, 1, 2]),
        categories=np.array([0, 1, 0]),
        metrics={"recall@20": 0.5},
        version=version,
    )


def test_round_trip(tmp_path: Path) -> None:
    path = write(tmp_path)
    ckpt = load_checkpoint(path)
    assert ckpt.version == "v1" and ckpt.kind == "test"
    assert ckpt.hyperparameters == {"layers": [4]}
    assert torch.equal(ckpt.weights["w"], torch.arange(6, dtype=torch.float32).reshape(3, 2))
    assert ckpt.items["item_id"].tolist() == ["a", "b", "c"]
    assert ckpt.items["category"].tolist() == [0, 1, 0]
    assert ckpt.manifest["metrics"] == {"recall@20": 0.5}


def test_checkpoints_are_written_once(tmp_path: Path) -> None:
    write(tmp_path)
    with pytest.raises(CheckpointError, match="already exists"):
        write(tmp_path)


@pytest.mark.parametrize("victim", ["weights.safetensors", "items.parquet"])
def test_tampered_file_is_rejected(tmp_path: Path, victim: str) -> None:
    path = write(tmp_path)
    with (path / victim).open("ab") as f:
        f.write(b"\0")
    with pytest.raises(CheckpointError, match="checksum"):
        load_checkpoint(path)


def test_missing_and_unknown_format(tmp_path: Path) -> None:
    path = write(tmp_path)
    (path / "items.parquet").unlink()
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(path)
    path2 = write(tmp_path, "v2")
    manifest = json.loads((path2 / "manifest.json").read_text())
    manifest["format_version"] = 99
    (path2 / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="unknown checkpoint format"):
        load_checkpoint(path2)
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        load_checkpoint(tmp_path / "nothing")


def test_current_is_replaced_atomically(tmp_path: Path) -> None:
    assert current_version(tmp_path) is None
    write(tmp_path, "v1")
    write(tmp_path, "v2")
    set_current(tmp_path, "v1")
    set_current(tmp_path, "v2")
    assert current_version(tmp_path) == "v2"
    assert list_versions(tmp_path) == ["v1", "v2"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
    with pytest.raises(CheckpointError):
        set_current(tmp_path, "v3")


def test_rating_metrics_by_hand() -> None:
    m = rating_metrics(np.array([3.0, 4.0, 5.0]), np.array([4.0, 4.0, 3.0]))
    assert m["rmse"] == pytest.approx(np.sqrt((1 + 0 + 4) / 3))
    assert m["mae"] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        rating_metrics(np.array([1.0]), np.array([1.0, 2.0]))
