"""The command line: data commands, evaluate with its JSON record, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import needs_shared_data, run_cli
from training.cli import app

runner = CliRunner()


@needs_shared_data
def test_data_list_and_info() -> None:
    out = runner.invoke(app, ["data", "list"])
    assert out.exit_code == 0 and "diginetica" in out.stdout and "amazon-toys" in out.stdout
    info = runner.invoke(app, ["data", "info", "yoochoose-100k"])
    assert info.exit_code == 0
    assert "2,933" in info.stdout and "70,278" in info.stdout


@needs_shared_data
def test_evaluate_writes_the_json_record(tmp_path: Path) -> None:
    out_file = tmp_path / "out.json"
    args = ["evaluate", "--model", "spop", "--dataset", "yoochoose-100k", "--k", "5,20"]
    result = runner.invoke(app, [*args, "--ties", "conservative", "--json", str(out_file)])
    assert result.exit_code == 0, result.output
    rec = json.loads(out_file.read_text())
    assert rec["model"] == "spop" and rec["protocol"] == "next-item"
    assert set(rec["metrics"]) == {"recall@5", "mrr@5", "recall@20", "mrr@20"}
    assert all(0.0 < v < 1.0 for v in rec["metrics"].values())
    assert rec["metrics"]["recall@5"] <= rec["metrics"]["recall@20"]
    assert rec["data"]["name"] == "yoochoose-100k" and len(rec["data"]["sha256"]) == 64
    assert rec["params"]["ties"] == "conservative"
    assert {"load", "fit", "evaluate"} <= set(rec["seconds"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["evaluate", "--model", "spop", "--dataset", "nope"], "not found"),
        (["evaluate", "--model", "gru9", "--dataset", "diginetica"], "unknown model"),
        (["evaluate", "--model", "pop", "--dataset", "diginetica", "--ties", "x"], "tie mode"),
        (
            ["evaluate", "--model", "itemknn", "--dataset", "diginetica", "--params", "beta=1"],
            "unknown",
        ),
        (["evaluate", "--model", "pop", "--dataset", "weird:/x"], "unknown data format"),
        (["data", "info", "events:/nonexistent/log.csv"], "not found"),
    ],
)
def test_errors_are_one_line_not_a_traceback(
    args: list[str], message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    assert run_cli(args, monkeypatch) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_malformed_file_names_the_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    log = tmp_path / "log.csv"
    log.write_text("session_id,item_id,timestamp\n1,2,100\n1,3,oops\n")
    assert run_cli(["data", "info", f"events:{log}"], monkeypatch) == 2
    assert "line 3" in capsys.readouterr().err
