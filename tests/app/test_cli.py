"""``nextitem-server serve``: first-model bootstrap through the trainer's command, and refusals."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import uvicorn
from typer.testing import CliRunner

from app.cli import cli
from app.settings import Settings
from tests.app.support import write_tiny_checkpoint


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.setenv("NEXTITEM_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.delenv("NEXTITEM_REDIS_URL", raising=False)
    return CliRunner()


def test_serve_bootstraps_a_first_model_through_the_trainer_then_runs_uvicorn(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: dict = {}
    children: list[list[str]] = []

    def fake_bootstrap(cmd: list[str]) -> int:
        children.append(cmd)
        write_tiny_checkpoint(Path(cmd[cmd.index("--model-dir") + 1]))
        return 0

    monkeypatch.setattr(subprocess, "call", fake_bootstrap)
    monkeypatch.setattr(uvicorn, "run", lambda target, **kw: calls.update(target=target, **kw))
    result = runner.invoke(cli, ["serve", "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert children[0][1:4] == ["-m", "training.cli", "bootstrap"]  # a child process, not an import
    assert calls["target"] == "app.main:create_app" and calls["factory"] is True
    assert (calls["host"], calls["port"], calls["workers"]) == ("127.0.0.1", 8123, 1)
    assert calls["limit_concurrency"] == Settings().limit_concurrency  # uvicorn's own 503 above
    assert (tmp_path / "models" / "CURRENT").is_file()


def test_serve_hands_the_concurrency_limit_to_uvicorn(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write_tiny_checkpoint(tmp_path / "models")
    calls: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda target, **kw: calls.update(kw))
    monkeypatch.setenv("NEXTITEM_LIMIT_CONCURRENCY", "50")
    assert runner.invoke(cli, ["serve"]).exit_code == 0
    assert calls["limit_concurrency"] == 50


def test_serve_stops_when_the_bootstrap_fails(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(subprocess, "call", lambda cmd: 1)
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: pytest.fail("served without a model"))
    result = runner.invoke(cli, ["serve"])
    assert result.exit_code == 1
    assert "no first model" in result.output


def test_serve_with_a_model_does_not_train(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write_tiny_checkpoint(tmp_path / "models")
    monkeypatch.setattr(subprocess, "call", lambda cmd: pytest.fail("trained again"))
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: None)
    assert runner.invoke(cli, ["serve"]).exit_code == 0


def test_embedded_serve_refuses_several_workers(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["serve", "--workers", "2"])
    assert result.exit_code == 2
    assert "NEXTITEM_REDIS_URL" in result.output
