"""What anonymous callers read about a model that cannot be served (``/readyz``, the 503 of
``/v1``) names versions and files of a checkpoint, never a path of the machine."""

from __future__ import annotations

from pathlib import Path

import httpx

from app.redact import without_paths
from app.settings import Settings
from tests.app.support import LiveServer, write_tiny_checkpoint
from training.checkpoint import WEIGHTS, set_current


def assert_no_path(text: str, tmp_path: Path) -> None:
    assert str(tmp_path) not in text and str(tmp_path.resolve()) not in text, text
    assert "/tmp" not in text and "/models" not in text, text


def test_readyz_and_the_503_name_no_path(tmp_path: Path) -> None:
    model_dir = tmp_path / "models"
    with LiveServer(Settings(model_dir=model_dir)) as srv, httpx.Client(base_url=srv.url) as c:
        ready = c.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["model_error"] == (
            "no active checkpoint in the model directory (no CURRENT file)"
        )
        down = c.get("/v1/sessions/s/recommendations")
        assert down.status_code == 503 and "no CURRENT" in down.json()["detail"]
        assert_no_path(down.text, tmp_path)

        good = write_tiny_checkpoint(model_dir)
        broken = write_tiny_checkpoint(model_dir, seed=1, activate=False)
        (model_dir / broken / WEIGHTS).unlink()  # missing: an OS error naming the file
        set_current(model_dir, broken)
        srv.registry.load_current()  # falls back to the good one, and says why
        ready = c.get("/readyz").json()
        assert ready["model"] == good and broken in ready["model_error"]
        assert WEIGHTS in ready["model_error"]
        assert_no_path(ready["model_error"], tmp_path)


def test_without_paths_keeps_the_checkpoint_part(tmp_path: Path) -> None:
    model_dir = tmp_path / "models"
    text = (
        f"checkpoint v1: {model_dir}/v1: weights.safetensors does not match its checksum; "
        f"[Errno 2] No such file or directory: '{model_dir.resolve()}/v2/items.parquet'; "
        f"no checkpoint in {model_dir}; read /etc/secret/file.txt; redis://h:6379/0 is down"
    )
    assert without_paths(text, model_dir) == (
        "checkpoint v1: v1: weights.safetensors does not match its checksum; "
        "[Errno 2] No such file or directory: 'v2/items.parquet'; "
        "no checkpoint in the model directory; read file.txt; redis://h:6379/0 is down"
    )
    assert without_paths(None, model_dir) is None
