"""``nextitem serve`` refuses, with a clear message, what it cannot do."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from training.cli import app


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.setenv("NEXTITEM_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.delenv("NEXTITEM_REDIS_URL", raising=False)
    return CliRunner()


def test_serve_without_a_model_or_trainer_says_what_is_missing(runner: CliRunner) -> None:
    result = runner.invoke(app, ["serve", "--port", "0"])
    assert result.exit_code == 1
    assert "no active checkpoint" in result.output


def test_embedded_serve_refuses_several_workers(runner: CliRunner) -> None:
    result = runner.invoke(app, ["serve", "--workers", "2"])
    assert result.exit_code == 2
    assert "NEXTITEM_REDIS_URL" in result.output
