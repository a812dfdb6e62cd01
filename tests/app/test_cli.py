"""``nextitem serve``: first-model bootstrap, the generated demo catalog, and its refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import uvicorn
from tests.app.support import write_tiny_checkpoint
from typer.testing import CliRunner

import training.cli.serve_cmd as serve_cmd
from training.cli import app


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.setenv("NEXTITEM_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.delenv("NEXTITEM_REDIS_URL", raising=False)
    return CliRunner()


def test_serve_trains_a_first_model_then_runs_uvicorn(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: dict = {}
    monkeypatch.setattr(serve_cmd, "bootstrap_model", write_tiny_checkpoint)
    monkeypatch.setattr(uvicorn, "run", lambda target, **kw: calls.update(target=target, **kw))
    result = runner.invoke(app, ["serve", "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert "trained and activated" in result.output
    assert calls["target"] == "app.main:create_app" and calls["factory"] is True
    assert (calls["host"], calls["port"], calls["workers"]) == ("127.0.0.1", 8123, 1)
    assert (tmp_path / "models" / "CURRENT").is_file()


def test_embedded_serve_refuses_several_workers(runner: CliRunner) -> None:
    result = runner.invoke(app, ["serve", "--workers", "2"])
    assert result.exit_code == 2
    assert "NEXTITEM_REDIS_URL" in result.output


def test_demo_catalog_is_a_valid_session_dataset() -> None:
    ds = serve_cmd.demo_dataset()
    train, test = ds.parts["train"], ds.parts["test"]
    assert ds.n_items == 1000 and (train.n_sessions, test.n_sessions) == (5400, 600)
    assert train.lengths.min() >= 2 and train.items.max() < 1000
    # a visit mostly walks 1-3 items forward within its category of 50
    first = train.session(0)
    assert np.array_equal(first, serve_cmd.demo_dataset().parts["train"].session(0))
    same_category = ds.items.categories[train.items[1:]] == ds.items.categories[train.items[:-1]]
    assert same_category.mean() > 0.7
